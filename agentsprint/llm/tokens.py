"""Token counts with tiktoken: the gateway's input estimate and the scripted server's usage.

Both sides use the same function, so for a model tiktoken knows (and for the scripted server) the
estimate equals the reported usage. Counting uses OpenAI's chat framing (3 tokens per message, 3 to
prime the reply); per-text counts are cached because an agent's prompt grows by appending, so only
the new messages are encoded on each step (measured in benchmarks/gateway.py).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

DEFAULT_ENCODING = "cl100k_base"
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3
NAME_OVERHEAD = 1
TOOL_CALL_OVERHEAD = 3
TOOLS_OVERHEAD = 8
IMAGE_TOKENS = 765


def base_name(model: str) -> str:
    """The model name without its litellm provider prefix ("openai/gpt-4.1" -> "gpt-4.1")."""
    return model.rsplit("/", 1)[-1]


@lru_cache(maxsize=256)
def encoding_name(model: str) -> str:
    """tiktoken's encoding for `model`, or cl100k_base when tiktoken does not know it."""
    import tiktoken.model

    try:
        return tiktoken.model.encoding_name_for_model(base_name(model))
    except KeyError:
        return DEFAULT_ENCODING


@lru_cache(maxsize=256)
def is_tiktoken_model(model: str) -> bool:
    """Whether tiktoken knows this model's tokenizer (then no safety factor is needed)."""
    import tiktoken.model

    try:
        tiktoken.model.encoding_name_for_model(base_name(model))
    except KeyError:
        return False
    return True


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    import tiktoken

    return tiktoken.get_encoding(name)


@lru_cache(maxsize=4096)
def count_text(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Tokens of a plain text (special-token strings are counted as ordinary text)."""
    return len(_encoding(encoding).encode_ordinary(text))


def _content_tokens(content: Any, encoding: str) -> int:
    if isinstance(content, str):
        return count_text(content, encoding)
    total = 0
    for part in content or []:
        if isinstance(part, dict) and part.get("type") == "text":
            total += count_text(str(part.get("text", "")), encoding)
        elif isinstance(part, dict) and part.get("type") == "image_url":
            total += IMAGE_TOKENS
        else:
            total += count_text(json.dumps(part, sort_keys=True), encoding)
    return total


def tool_call_tokens(tool_calls: list[dict[str, Any]], encoding: str) -> int:
    """Tokens of OpenAI-format tool calls (name and raw argument text)."""
    total = 0
    for call in tool_calls:
        function = call.get("function") or {}
        total += TOOL_CALL_OVERHEAD + count_text(str(function.get("name", "")), encoding)
        total += count_text(str(function.get("arguments", "")), encoding)
    return total


def _message_tokens(message: dict[str, Any], encoding: str) -> int:
    total = MESSAGE_OVERHEAD
    for key, value in message.items():
        if value is None:
            continue
        if key == "content":
            total += _content_tokens(value, encoding)
        elif key == "tool_calls":
            total += tool_call_tokens(value, encoding)
        elif key == "name":
            total += NAME_OVERHEAD + count_text(str(value), encoding)
        elif isinstance(value, str):
            total += count_text(value, encoding)
    return total


def tools_tokens(tools: list[dict[str, Any]] | None, encoding: str) -> int:
    """Tokens of the tool schemas offered with a request."""
    if not tools:
        return 0
    return TOOLS_OVERHEAD + count_text(json.dumps(tools, sort_keys=True, separators=(",", ":")), encoding)


def count_prompt_tokens(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> int:
    """Prompt tokens of a chat request: messages with OpenAI's framing, plus the tool schemas."""
    total = REPLY_PRIMING + tools_tokens(tools, encoding)
    for message in messages:
        total += _message_tokens(message, encoding)
    return total


def count_reply_tokens(content: str | None, tool_calls: list[dict[str, Any]], encoding: str) -> int:
    """Completion tokens of a reply: its text plus its tool calls."""
    return (count_text(content, encoding) if content else 0) + tool_call_tokens(tool_calls, encoding)


def estimate_input_tokens(
    model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, safety_factor: float
) -> int:
    """Input tokens to reserve: the tiktoken count, times `safety_factor` unless tiktoken knows the model."""
    count = count_prompt_tokens(messages, tools, encoding_name(model))
    factor = 1.0 if is_tiktoken_model(model) else safety_factor
    return math.ceil(count * factor)


def truncate_text(text: str, limit: int, encoding: str = DEFAULT_ENCODING) -> str:
    """The first `limit` tokens of `text` (what a provider returns when it stops at max_tokens)."""
    enc = _encoding(encoding)
    return str(enc.decode(enc.encode_ordinary(text)[: max(limit, 0)]))
