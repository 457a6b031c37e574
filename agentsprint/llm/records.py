"""What the gateway stores about a call: redacted request/response JSON and OpenTelemetry GenAI attributes.

Redaction is `agentsprint.redaction.redact_value` (each string through a cache, so a growing prompt is
scanned only for its new messages).
"""

from __future__ import annotations

import json
from typing import Any

from agentsprint.redaction import mark_redacted, redact_value, secret_texts


def dumps(value: Any, needles: tuple[str, ...] | None = None) -> str:
    """Redacted (against `needles`, default: the secrets of the environment), compact JSON text of `value`."""
    needles = secret_texts() if needles is None else needles
    text = json.dumps(redact_value(value, needles), ensure_ascii=False, separators=(",", ":"), default=str)
    return mark_redacted(text, needles) if len(text) > 4096 else text  # small texts: a rescan is cheap


def request_json(
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    max_tokens: int,
    temperature: float,
    needles: tuple[str, ...] | None = None,
) -> str:
    """The request as stored (redacted): what the caller asked for, before any shrink."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    if tools:
        body["tools"] = tools
    return dumps(body, needles)


def system_of(model: str) -> str:
    """gen_ai.system: litellm's provider prefix ("openai/gpt-4.1" -> "openai")."""
    return model.split("/", 1)[0] if "/" in model else "openai"


def attributes(
    model: str,
    granted: int,
    temperature: float,
    *,
    response_model: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    finish_reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """OpenTelemetry GenAI semantic-convention attributes of one call, as JSON."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": system_of(model),
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": granted,
        "gen_ai.request.temperature": temperature,
    }
    if response_model is not None:
        attrs["gen_ai.response.model"] = response_model
    if input_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = output_tokens
    if finish_reason is not None:
        attrs["gen_ai.response.finish_reasons"] = [finish_reason]
    attrs.update(extra or {})
    return json.dumps(attrs, separators=(",", ":"))
