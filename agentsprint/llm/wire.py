"""The wire protocols external agents speak: Anthropic Messages, OpenAI Chat Completions, OpenAI Responses, Gemini.

For each: the request as chat messages (for the input estimate, counted exactly like the gateway's
own calls), the output cap asked for and how to lower it, the usage of a reply (plain or streamed)
and the protocol's own error shape. Used by the metering proxy and the scripted model server.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

Messages = list[dict[str, Any]]
MIN_THINKING_TOKENS = 1024
"""The smallest extended-thinking budget Anthropic's API accepts."""


@dataclass(frozen=True)
class Usage:
    """Tokens a provider reported for one reply (input includes the cached part)."""

    input_tokens: int
    cached_input_tokens: int
    output_tokens: int


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) else 0


def _text_of(content: Any) -> Any:
    """Content parts reduced to their text where they have one (input_text, output_text, text)."""
    if not isinstance(content, list):
        return content
    texts = [str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part]
    rest = [part for part in content if not (isinstance(part, dict) and "text" in part)]
    return "".join(texts) + (json.dumps(rest, sort_keys=True) if rest else "")


class Wire:
    """OpenAI Chat Completions (the base: the others differ where they override)."""

    name = "openai-chat"
    route = "chat/completions"
    cap_fields: tuple[str, ...] = ("max_completion_tokens", "max_tokens")

    def messages(self, body: dict[str, Any]) -> tuple[Messages, list[dict[str, Any]] | None]:
        """The request as chat messages and tool schemas (what the input estimate counts)."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("field 'messages' must be a list of objects")
        return messages, body.get("tools") or None

    def requested(self, body: dict[str, Any]) -> int | None:
        """The output cap the client asked for (None: not given)."""
        for field in self.cap_fields:
            value = body.get(field)
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                    raise ValueError(f"field '{field}' must be a positive integer")
                return value
        return None

    def capped(self, body: dict[str, Any], granted: int) -> dict[str, Any]:
        """`body` with its output cap set to `granted` (the field the client used, else the first)."""
        field = next((f for f in self.cap_fields if body.get(f) is not None), self.cap_fields[-1])
        capped = {**body, field: granted}
        if capped.get("stream"):
            capped["stream_options"] = {**(capped.get("stream_options") or {}), "include_usage": True}
        return capped

    def usage(self, reply: dict[str, Any]) -> Usage | None:
        """The usage of a whole reply, or None when it carries none."""
        usage = reply.get("usage")
        if not isinstance(usage, dict):
            return None
        cached = _int((usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
        return Usage(_int(usage.get("prompt_tokens")), cached, _int(usage.get("completion_tokens")))

    def stream_usage(self, event: dict[str, Any], seen: Usage | None) -> Usage | None:
        """The usage known after a stream event (`seen`: known before it)."""
        return self.usage(event) or seen

    def error(self, status: int, kind: str, message: str) -> dict[str, Any]:
        """The protocol's error body."""
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    def model_of(self, body: dict[str, Any]) -> str:
        """The model the request names (in the body; Gemini names it in the path)."""
        return str(body.get("model", ""))

    def streamed(self, body: dict[str, Any]) -> bool:
        """Whether the reply is to be streamed (server-sent events)."""
        return bool(body.get("stream"))

    def outgoing(self, body: dict[str, Any], model: str, granted: int) -> dict[str, Any]:
        """The request sent upstream: `model` and the output cap `granted`."""
        return self.capped({**body, "model": model}, granted)

    def upstream_path(self, model: str) -> str:
        """The path after the upstream's base URL."""
        return self.route


class ResponsesWire(Wire):
    """OpenAI Responses: `instructions` + `input` items, `max_output_tokens`, usage in response.completed."""

    name = "openai-responses"
    route = "responses"
    cap_fields = ("max_output_tokens",)

    def messages(self, body: dict[str, Any]) -> tuple[Messages, list[dict[str, Any]] | None]:
        items = body.get("input")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError("field 'input' must be a string or a list of objects")
        system = [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
        return system + [self._message(item) for item in items], body.get("tools") or None

    @staticmethod
    def _message(item: dict[str, Any]) -> dict[str, Any]:
        if "role" in item:
            return {"role": str(item["role"]), "content": _text_of(item.get("content"))}
        return {"role": "tool", "content": json.dumps(item, sort_keys=True)}

    def capped(self, body: dict[str, Any], granted: int) -> dict[str, Any]:
        return {**body, "max_output_tokens": granted}

    def usage(self, reply: dict[str, Any]) -> Usage | None:
        usage = reply.get("usage")
        if not isinstance(usage, dict):
            return None
        cached = _int((usage.get("input_tokens_details") or {}).get("cached_tokens"))
        return Usage(_int(usage.get("input_tokens")), cached, _int(usage.get("output_tokens")))

    def stream_usage(self, event: dict[str, Any], seen: Usage | None) -> Usage | None:
        if event.get("type") in ("response.completed", "response.incomplete"):
            return self.usage(event.get("response") or {}) or seen
        return seen


class AnthropicWire(Wire):
    """Anthropic Messages: `system` + content blocks, `max_tokens`, usage in message_start/message_delta."""

    name = "anthropic-messages"
    route = "messages"
    cap_fields = ("max_tokens",)

    def messages(self, body: dict[str, Any]) -> tuple[Messages, list[dict[str, Any]] | None]:
        messages, tools = super().messages(body)
        system = body.get("system")
        opening = [{"role": "system", "content": _text_of(system)}] if system else []
        return opening + [{**m, "content": _text_of(m.get("content"))} for m in messages], tools

    def capped(self, body: dict[str, Any], granted: int) -> dict[str, Any]:
        """`max_tokens` set to `granted`, and extended thinking kept inside it (the API refuses a thinking
        budget that is not below max_tokens, and one under 1,024 tokens: thinking is then turned off)."""
        capped = {**body, "max_tokens": granted}
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled" and \
                _int(thinking.get("budget_tokens")) >= granted:
            fits = granted - 1 >= MIN_THINKING_TOKENS
            capped["thinking"] = {**thinking, "budget_tokens": granted - 1} if fits else {"type": "disabled"}
        return capped

    def usage(self, reply: dict[str, Any]) -> Usage | None:
        usage = reply.get("usage")
        if not isinstance(usage, dict):
            return None
        cached = _int(usage.get("cache_read_input_tokens"))
        total_input = _int(usage.get("input_tokens")) + cached + _int(usage.get("cache_creation_input_tokens"))
        return Usage(total_input, cached, _int(usage.get("output_tokens")))

    def stream_usage(self, event: dict[str, Any], seen: Usage | None) -> Usage | None:
        if event.get("type") == "message_start":
            return self.usage(event.get("message") or {}) or seen
        if event.get("type") == "message_delta" and isinstance(event.get("usage"), dict):
            before = seen or Usage(0, 0, 0)
            return Usage(before.input_tokens, before.cached_input_tokens, _int(event["usage"].get("output_tokens")))
        return seen

    def error(self, status: int, kind: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": message}}


GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
                 504: "DEADLINE_EXCEEDED"}
GEMINI_PATH = re.compile(r"^(?:v1beta/|v1alpha/|v1/)?models/([^/:]+):(generateContent|streamGenerateContent)$")


class GeminiWire(Wire):
    """Gemini's own API: the model and streaming in the path (`models/M:streamGenerateContent?alt=sse`),
    `systemInstruction` + `contents` of parts, `generationConfig.maxOutputTokens`, usage in `usageMetadata`."""

    name = "gemini"
    route = "models/{model}:generateContent"
    cap_fields = ("maxOutputTokens",)

    def __init__(self, model: str = "", stream: bool = False) -> None:
        self.model, self.stream = model, stream

    @classmethod
    def at(cls, route: str) -> GeminiWire | None:
        """The wire of one Gemini request path, or None when `route` is not one."""
        found = GEMINI_PATH.match(route)
        return cls(found.group(1), found.group(2) == "streamGenerateContent") if found else None

    def messages(self, body: dict[str, Any]) -> tuple[Messages, list[dict[str, Any]] | None]:
        contents = body.get("contents")
        if not isinstance(contents, list) or not all(isinstance(c, dict) for c in contents):
            raise ValueError("field 'contents' must be a list of objects")
        system = body.get("systemInstruction")
        text = _text_of(system.get("parts") if isinstance(system, dict) else system)
        opening = [{"role": "system", "content": text}] if text else []
        return opening + [self._message(c) for c in contents], body.get("tools") or None

    @staticmethod
    def _message(content: dict[str, Any]) -> dict[str, Any]:
        role = "assistant" if content.get("role") == "model" else "user"
        return {"role": role, "content": _text_of(content.get("parts") or [])}

    def requested(self, body: dict[str, Any]) -> int | None:
        config = body.get("generationConfig")
        return super().requested(config) if isinstance(config, dict) else None

    def capped(self, body: dict[str, Any], granted: int) -> dict[str, Any]:
        return {**body, "generationConfig": {**(body.get("generationConfig") or {}), "maxOutputTokens": granted}}

    def usage(self, reply: dict[str, Any]) -> Usage | None:
        usage = reply.get("usageMetadata")
        if not isinstance(usage, dict):
            return None
        output = _int(usage.get("candidatesTokenCount")) + _int(usage.get("thoughtsTokenCount"))
        return Usage(_int(usage.get("promptTokenCount")), _int(usage.get("cachedContentTokenCount")), output)

    def error(self, status: int, kind: str, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message, "status": GOOGLE_STATUS.get(status, "UNKNOWN")}}

    def model_of(self, body: dict[str, Any]) -> str:
        return self.model

    def streamed(self, body: dict[str, Any]) -> bool:
        return self.stream

    def outgoing(self, body: dict[str, Any], model: str, granted: int) -> dict[str, Any]:
        return self.capped(body, granted)

    def upstream_path(self, model: str) -> str:
        return f"models/{model}:streamGenerateContent?alt=sse" if self.stream else f"models/{model}:generateContent"


CHAT = Wire()
RESPONSES = ResponsesWire()
ANTHROPIC = AnthropicWire()
GEMINI = GeminiWire()
WIRES: dict[str, Wire] = {wire.route: wire for wire in (CHAT, RESPONSES, ANTHROPIC)}


def _route(path: str) -> str:
    return path.split("?", 1)[0].strip("/").removeprefix("v1/")


def wire_for(path: str) -> Wire | None:
    """The protocol served at a request path ("/v1/messages", "/chat/completions",
    "/v1beta/models/M:generateContent", ...); a Gemini path gives a wire bound to its model and streaming."""
    return WIRES.get(_route(path)) or GeminiWire.at(path.split("?", 1)[0].strip("/"))


def is_count_tokens(path: str) -> bool:
    """Whether `path` is Anthropic's token counting endpoint (`/v1/messages/count_tokens`)."""
    return _route(path) == "messages/count_tokens"


def sse_events(line: bytes) -> dict[str, Any] | None:
    """The JSON event of one server-sent-events `data:` line (None for other lines and [DONE])."""
    if not line.startswith(b"data:"):
        return None
    data = line[5:].strip()
    if not data or data == b"[DONE]":
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
