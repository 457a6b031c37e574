"""`llm test` for a role run by an external agent: the executable, its version, one call through the proxy."""

from __future__ import annotations

import shlex
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentsprint.agents.backends import registry
from agentsprint.config import Settings
from agentsprint.process import run_process
from agentsprint.redaction import scrubbed_env
from agentsprint.store.ledger import CallRecord

VERSION_TIMEOUT_S = 30.0
PROBE_TEXT = "Reply with the single word: ok"
PROBE_MAX_TOKENS = 16


@dataclass
class BackendCheck:
    """What `llm test` found about a role's external agent."""

    backend: str
    executable: str
    found: str | None = None
    version: str | None = None
    proxy_ok: bool = False
    proxy_tokens: int | None = None
    diagnosis: str | None = None

    @property
    def ok(self) -> bool:
        return self.found is not None and self.proxy_ok and self.diagnosis is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def executable_of(settings: Settings, role: str) -> str:
    """The program the role's backend starts: `command` (its first word for backend "command"), else the default."""
    model = settings.model_for(role)
    backend = registry.get(model.backend)
    if model.backend == "command":
        words = shlex.split(model.command or "")
        return words[0] if words else ""
    return model.command or backend.executable


def check_backend(settings: Settings, role: str, store: Any) -> BackendCheck:
    """Find the executable, ask its version, and make one tiny call in its protocol through the proxy."""
    model = settings.model_for(role)
    result = BackendCheck(backend=model.backend, executable=executable_of(settings, role))
    result.found = _find(result.executable, settings.root)
    if result.found is None:
        result.diagnosis = f"the {model.backend} executable {result.executable!r} is not found on PATH"
        return result
    result.version = _version(registry.get(model.backend).version_argv(result.found), settings.root)
    _probe_proxy(settings, role, store, result)
    return result


def _find(executable: str, root: Path) -> str | None:
    if "/" in executable:
        path = root / executable
        return str(path) if path.is_file() else None
    return shutil.which(executable)


def _version(argv: list[str], cwd: Path) -> str | None:
    if not argv:
        return None
    done = run_process(argv, cwd, VERSION_TIMEOUT_S, 2_000, scrubbed_env())
    lines = [line.strip() for line in done.output.splitlines() if line.strip()]
    return (lines[0] if done.exit_code == 0 and lines else f"exit {done.exit_code}: {' '.join(lines)[:200]}")


def probe_request(protocol: str, model: str) -> tuple[str, dict[str, Any]]:
    """(path, body) of a minimal request in `protocol` (OpenAI Chat Completions for any other)."""
    messages = [{"role": "user", "content": PROBE_TEXT}]
    if protocol == "anthropic-messages":
        return "v1/messages", {"model": model, "max_tokens": PROBE_MAX_TOKENS, "messages": messages}
    if protocol == "gemini":
        return f"v1beta/models/{model}:generateContent", {
            "contents": [{"role": "user", "parts": [{"text": PROBE_TEXT}]}],
            "generationConfig": {"maxOutputTokens": PROBE_MAX_TOKENS}}
    if protocol == "openai-responses":
        return "v1/responses", {"model": model, "max_output_tokens": PROBE_MAX_TOKENS, "input": PROBE_TEXT}
    return "v1/chat/completions", {"model": model, "max_tokens": PROBE_MAX_TOKENS, "messages": messages}


def _probe_proxy(settings: Settings, role: str, store: Any, result: BackendCheck) -> None:
    """One call through a metering proxy on `store` (a throwaway ledger), as the agent would make it."""
    import httpx

    from agentsprint.llm.context import CallContext
    from agentsprint.llm.gateway import Gateway
    from agentsprint.llm.proxy import MeteringProxy

    model = settings.model_for(role)
    path, body = probe_request(registry.get(model.backend).protocol, model.model.split("/", 1)[-1])
    with MeteringProxy(Gateway(settings, store)) as proxy:
        grant = proxy.grant(CallContext(role=role))
        url = f"{proxy.base_url.removesuffix('/v1')}/{path}"
        try:
            reply = httpx.post(url, json=body, headers={"Authorization": f"Bearer {grant.token}",
                                                        "x-api-key": grant.token, "x-goog-api-key": grant.token,
                                                        "anthropic-version": "2023-06-01"},
                               timeout=settings.run.call_timeout_seconds)
        except httpx.HTTPError as exc:
            result.diagnosis = f"the call through the metering proxy failed: {exc}"
            return
    if reply.status_code != 200:
        result.diagnosis = f"the call through the metering proxy failed: HTTP {reply.status_code} {reply.text[:300]}"
        return
    result.proxy_ok = True
    result.proxy_tokens = sum(c.input_tokens + c.output_tokens for c in _calls(store))


def _calls(store: Any) -> list[CallRecord]:
    from agentsprint.store.ledger import model_calls

    return [c for c in model_calls(store, None) if c.outcome == "ok"]
