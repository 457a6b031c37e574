"""The litellm boundary: the one module that imports litellm, imported lazily by the gateway.

Everything litellm raises is translated into `ProviderError` here; nothing else sees its types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import litellm

from agentsprint.llm.errors import ProviderError, ProviderErrorKind

litellm.suppress_debug_info = True  # no "Give Feedback" banner on every error
litellm.telemetry = False


_LITELLM_PREFIX = re.compile(r"^litellm\.\w+:\s*(\w+:\s*)?(\w+Exception\s*-\s*)?")
"""litellm's "litellm.RateLimitError: RateLimitError: OpenAIException - " in front of the provider's text."""


@dataclass
class ProviderResult:
    """One successful completion, with the provider's reported usage."""

    content: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    model: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    raw: dict[str, Any] = field(repr=False)
    response: Any = field(repr=False, default=None)
    usage_reported: bool = True
    """False when the provider sent no usage and the gateway charged the reservation instead."""


_KINDS: list[tuple[str, ProviderErrorKind]] = [
    ("Timeout", "timeout"),
    ("RateLimitError", "rate_limit"),
    ("AuthenticationError", "auth"),
    ("PermissionDeniedError", "auth"),
    ("APIConnectionError", "connection"),
    ("InternalServerError", "server"),
    ("ServiceUnavailableError", "server"),
    ("BadGatewayError", "server"),
    ("BadRequestError", "bad_request"),
    ("NotFoundError", "bad_request"),
    ("UnprocessableEntityError", "bad_request"),
]


def _transport_kind(exc: BaseException) -> ProviderErrorKind | None:
    """"timeout" or "connection" when the cause is the transport (litellm reports some as a 500)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        name = type(cause).__name__
        if isinstance(cause, TimeoutError) or name in ("APITimeoutError", "Timeout") or name.endswith("Timeout"):
            return "timeout"
        if isinstance(cause, ConnectionError) or name in ("APIConnectionError", "ConnectError"):
            return "connection"
        cause = cause.__cause__ or cause.__context__
    return None


_NO_CREDENTIALS = re.compile(r"missing credentials|api_key client option must be set|no api key", re.IGNORECASE)
"""What the provider SDKs say when no key was given; litellm reports that as a 500."""


def _auth_kind(exc: BaseException) -> ProviderErrorKind | None:
    """"auth" for a 401/403 or a request refused for want of a key: retrying cannot help."""
    status = getattr(exc, "status_code", None)
    if status in (401, 403) or _NO_CREDENTIALS.search(str(getattr(exc, "message", "") or exc)):
        return "auth"
    return None


def translate(exc: BaseException) -> ProviderError:
    """The ProviderError for anything litellm (or the HTTP stack under it) raised."""
    kind: ProviderErrorKind | None = _auth_kind(exc)
    for name, candidate in _KINDS:
        if kind is None and isinstance(exc, getattr(litellm, name)):
            kind = candidate
            break
    if kind in (None, "server"):
        kind = _transport_kind(exc) or kind
    if kind is None:
        status = getattr(exc, "status_code", None)
        kind = "server" if isinstance(status, int) and status >= 500 else "unknown"
    message = str(getattr(exc, "message", "") or exc) or type(exc).__name__
    return ProviderError(kind, _LITELLM_PREFIX.sub("", " ".join(message.split())))


UNREADABLE = ("[agentsprint: this reply could not be read: its tool-call arguments nest too deeply to parse; "
              "arguments must be a flat JSON object]")


def too_deep(exc: BaseException) -> bool:
    """Whether parsing the reply hit Python's recursion limit (JSON nested thousands of levels deep).

    litellm parses tool-call arguments itself, before agentsprint sees them; what it raises then is
    the model's malformed reply, not a provider failure.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, RecursionError) or "maximum recursion depth exceeded" in str(cause):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def unreadable_reply(model: str) -> ProviderResult:
    """A reply with no tool call that says why: the agent loop answers it as a malformed handoff.

    No usage is known, so the gateway charges the call at its reservation.
    """
    return ProviderResult(content=UNREADABLE, tool_calls=[], finish_reason="error", model=model, input_tokens=0,
                          cached_input_tokens=0, output_tokens=0, raw={}, usage_reported=False)


def _usage(response: Any) -> tuple[int, int, int]:
    usage = getattr(response, "usage", None)
    if usage is None:
        return 0, 0, 0
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    return int(usage.prompt_tokens or 0), cached, int(usage.completion_tokens or 0)


def unicode_text(text: str | None) -> str | None:
    """`text` with lone surrogates replaced by "?": JSON's "\\ud800" escape decodes to a str that
    UTF-8 (the database, the logs) cannot store, and a storing failure failed the item."""
    return None if text is None else text.encode("utf-8", errors="replace").decode("utf-8")


def _tool_calls(message: Any) -> list[dict[str, Any]]:
    calls = []
    for call in getattr(message, "tool_calls", None) or []:
        function = call.function
        calls.append({"id": unicode_text(call.id) or "", "name": unicode_text(function.name) or "",
                      "arguments": unicode_text(function.arguments) or ""})
    return calls


def complete(
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    *,
    max_tokens: int,
    temperature: float,
    api_base: str | None,
    api_key: str | None,
    timeout: float,
) -> ProviderResult:
    """One attempt of one chat completion (litellm's own retries off: the gateway counts each one)."""
    extra: dict[str, Any] = {"tools": tools} if tools else {}
    try:
        response = litellm.completion(
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
            max_retries=0,
            num_retries=0,
            **extra,
        )
    except Exception as exc:  # litellm wraps provider SDK errors; translate every one
        if too_deep(exc):
            return unreadable_reply(model)
        raise translate(exc) from exc
    choice = response.choices[0]
    input_tokens, cached, output_tokens = _usage(response)
    return ProviderResult(
        content=unicode_text(choice.message.content),
        tool_calls=_tool_calls(choice.message),
        finish_reason=choice.finish_reason,
        model=str(response.model or model),
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output_tokens,
        raw=response.model_dump(exclude_none=True),
        response=response,
    )


def completion_cost(result: ProviderResult) -> float | None:
    """litellm's cost of a completion from its price map, or None when it does not know the model."""
    try:
        return float(litellm.completion_cost(completion_response=result.response))
    except Exception:  # unmapped model: the caller falls back to its own price
        return None


def model_info(model: str) -> dict[str, Any] | None:
    """litellm's price-map entry for `model`, or None when the model is not mapped."""
    try:
        return dict(litellm.get_model_info(model))
    except Exception:  # litellm raises several types for an unmapped model
        return None


def missing_keys(model: str) -> list[str]:
    """Environment variables litellm needs for `model` and cannot find."""
    try:
        return list(litellm.validate_environment(model).get("missing_keys") or [])
    except Exception:  # an unknown provider: nothing to say
        return []
