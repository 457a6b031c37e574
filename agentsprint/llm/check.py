"""`llm test`: one tiny call per role through the gateway, with a diagnosis a user can act on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

from agentsprint.config import ModelSettings, Settings
from agentsprint.llm.errors import LLMError, ProviderError

PROBE = [{"role": "user", "content": "Reply with the single word: ok"}]
PROBE_MAX_TOKENS = 16


@dataclass
class RoleCheck:
    """The outcome of one role's test call."""

    role: str
    model: str
    ok: bool
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    usd: float | None = None
    diagnosis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def missing_key(settings: ModelSettings) -> str | None:
    """The environment variable a call would need and cannot find, if any."""
    import os

    if settings.api_key_env:
        return None if os.environ.get(settings.api_key_env) else settings.api_key_env
    if settings.api_base and urlparse(settings.api_base).hostname in ("127.0.0.1", "localhost", "::1"):
        return None
    from agentsprint.llm import provider

    missing = provider.missing_keys(settings.model)
    return missing[0] if missing else None


def _explain(error: ProviderError, settings: ModelSettings, timeout: str) -> str:
    where = settings.api_base or f"the {settings.model.split('/', 1)[0]} API"
    if error.kind == "connection":
        return f"cannot reach {where}: {error.message}"
    if error.kind == "timeout":
        return f"no answer from {where} within {timeout} (run.call_timeout)"
    if error.kind == "auth":
        hint = settings.api_key_env or "the provider's key variable"
        return f"the provider refused the key ({hint}): {error.message}"
    if error.kind == "bad_request":
        return f"the provider rejected the request (is model '{settings.model}' right?): {error.message}"
    return f"{error.kind}: {error.message}"


def check_role(settings: Settings, role: str, store: Any) -> RoleCheck:
    """Call `role`'s model once (no budget scope) and report latency, tokens, cost or what is wrong."""
    from agentsprint.llm.context import CallContext
    from agentsprint.llm.gateway import Gateway
    from agentsprint.llm.prices import price_for

    model_settings = settings.model_for(role)
    result = RoleCheck(role=role, model=model_settings.model, ok=False)
    missing = missing_key(model_settings)
    if missing:
        result.diagnosis = f"no API key: set the environment variable {missing}"
        return result
    quick = settings.model_copy(update={"run": settings.run.model_copy(update={"num_retries": 0})})
    try:
        reply = Gateway(quick, store).complete(CallContext(role=role, max_tokens=PROBE_MAX_TOKENS), PROBE)
    except ProviderError as exc:
        result.diagnosis = _explain(exc, model_settings, settings.run.call_timeout)
        return result
    except LLMError as exc:
        result.diagnosis = str(exc)
        return result
    result.latency_ms, result.input_tokens = reply.latency_ms, reply.input_tokens
    result.output_tokens = reply.output_tokens
    if price_for(model_settings) is None:
        result.diagnosis = (f"price unknown for {model_settings.model}: set input_cost_per_token and "
                            f"output_cost_per_token under [models.{role}] (USD budgets need a price)")
        return result
    result.ok, result.usd = True, reply.usd
    return result
