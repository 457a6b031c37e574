"""The wire protocols external agents speak: Anthropic Messages, OpenAI Chat Completions, OpenAI Responses.

For each: the request as chat messages (for the input estimate, counted exactly like the gateway's
own calls), the output cap asked for and how to lower it, the usage of a reply (plain or streamed)
and the protocol's own error shape. Used by the metering proxy and the scripted model server.
"""

from __future__ import annotations

import json
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


CHAT = Wire()
RESPONSES = ResponsesWire()
ANTHROPIC = AnthropicWire()
WIRES: dict[str, Wire] = {wire.route: wire for wire in (CHAT, RESPONSES, ANTHROPIC)}


def _route(path: str) -> str:
    return path.split("?", 1)[0].strip("/").removeprefix("v1/")


def wire_for(path: str) -> Wire | None:
    """The protocol served at a request path ("/v1/messages", "/chat/completions", ...)."""
    return WIRES.get(_route(path))


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
