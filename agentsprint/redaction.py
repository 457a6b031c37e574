"""Redaction of secrets: values of secret-named env vars and well-known key shapes become [REDACTED].

Applied before anything is stored or sent to a model (DESIGN section 10). The same key shapes feed
the secret-scan DoD gate, so what is redacted in a transcript is also refused in a diff.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

REDACTED = "[REDACTED]"

SECRET_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL")
"""An env var whose upper-cased name contains one of these holds a secret."""

MIN_SECRET_LENGTH = 6
"""Shorter values are not redacted: replacing "1" or "true" everywhere would destroy the text."""

# (name, pattern): shapes of keys that are secret wherever they appear.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "private key block",
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"
            r"(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|[A-Za-z0-9+/=\s:,-]*)"
        ),
    ),
    ("Anthropic key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("OpenAI-style key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")),
    ("GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}")),
    ("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}")),
    ("GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("Stripe key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("bearer token", re.compile(r"(?<=Bearer )[A-Za-z0-9._~+/=-]{16,}")),
)


def is_secret_name(name: str) -> bool:
    """True when an environment variable's name says it holds a secret."""
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named variables worth redacting, longest first."""
    env = os.environ if environ is None else environ
    values = {
        value for name, value in env.items() if is_secret_name(name) and len(value) >= MIN_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def find_secrets(text: str) -> list[str]:
    """Names of the key shapes found in `text` (never the matched secret itself)."""
    return [name for name, pattern in SECRET_PATTERNS if pattern.search(text)]


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with secret env values and well-known key shapes replaced by [REDACTED]."""
    for value in secret_values(environ):
        text = text.replace(value, REDACTED)
    for _name, pattern in SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text
