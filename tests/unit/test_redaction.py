"""Redaction of secret env values in their simple disguises, and of key shapes, kept fast."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from agentsprint.redaction import REDACTED, find_secret_values, find_secrets, redact

TOKEN = "shoptok-Zq8Xv2Lm9+Pw/4Rt6Yb3Nc7Hd"
ENV = {"SHOP_API_TOKEN": TOKEN, "PATH": "/usr/bin"}


@pytest.mark.parametrize("shape", [
    TOKEN, TOKEN[::-1], TOKEN.encode().hex(), TOKEN.encode().hex().upper(), quote(TOKEN, safe=""),
    base64.b64encode(TOKEN.encode()).decode(), base64.b64encode(b"x" + TOKEN.encode()).decode(),
    base64.b64encode(b"xy" + TOKEN.encode() + b"tail").decode(),
])
def test_an_env_secret_is_redacted_in_each_disguise(shape: str) -> None:
    out = redact(f"before {shape} after", ENV)
    assert out.startswith("before ") and out.endswith(" after") and REDACTED in out
    assert TOKEN not in out and TOKEN[::-1] not in out and TOKEN.encode().hex() not in out
    assert find_secret_values(f"x{shape}y", ENV), "the gate finds it too"


def test_find_secret_values_names_the_variable_and_the_disguise_never_the_value() -> None:
    labels = find_secret_values(f"a {TOKEN[::-1]} b", ENV)
    assert labels == ["value of $SHOP_API_TOKEN (reversed)"]
    assert find_secret_values("nothing here", ENV) == []


def test_bearer_and_url_passwords_keep_their_context() -> None:
    text = "Authorization: Bearer abcdefghijklmnop1234 and postgresql://app:hunter2pw@db/x"
    assert redact(text, {}) == f"Authorization: Bearer {REDACTED} and postgresql://app:{REDACTED}@db/x"
    assert "password in a URL" in find_secrets(text)


def test_key_shapes_need_a_word_boundary_before_them() -> None:
    key = "sk-" + "A1b2C3d4" * 3
    assert redact(f"x={key}", {}) == f"x={REDACTED}"
    assert redact(f"task-{key[3:]}", {}) == f"task-{key[3:]}"
    assert redact(f"ask-{key[3:]}", {}) == f"ask-{key[3:]}", "'ask-' is not the start of a key"


def test_a_megabyte_with_twenty_secret_values_is_redacted_quickly() -> None:
    env = {f"S{n}_TOKEN": f"value-{n:02d}-Zq8Xv2Lm9Pw4" for n in range(20)}
    text = ("    total = compute(row, index=3)  # a comment\n" * 22_000) + env["S7_TOKEN"][::-1]
    started = time.perf_counter()
    out = redact(text, env)
    assert time.perf_counter() - started < 1.0  # measured about 0.03 s; the bound leaves room for CI
    assert out.endswith(REDACTED)


def test_the_configured_api_key_variable_is_secret_whatever_its_name(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from agentsprint.config import load_settings

    monkeypatch.setenv("ACME_LLM_CREDS", "acme-value-0123456789")
    assert "acme-value-0123456789" in redact("x acme-value-0123456789"), "not secret by its name"
    (tmp_path / "agentsprint.toml").write_text('[models.coder]\nmodel = "openai/m"\napi_key_env = "ACME_LLM_CREDS"\n')
    load_settings(tmp_path, environ={})
    assert redact("x acme-value-0123456789 y") == f"x {REDACTED} y"
    assert redact(f"x {'acme-value-0123456789'[::-1]} y") == f"x {REDACTED} y"
