"""Handoff validation: a reply must be valid calls of offered tools, or it is a malformed handoff.

There is never a silent fallback: prose where a call was due, an unknown tool, arguments that are
not JSON, or arguments that fail the tool's schema all raise `MalformedHandoff`, which carries the
validation error to send back to the model.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from agentsprint.agents import prompts
from agentsprint.agents.schemas import Offered, ToolArgs, describe_errors
from agentsprint.text import shorten

if TYPE_CHECKING:
    from agentsprint.llm.gateway import Reply, ToolCall

Kind = Literal["no_tool_call", "unknown_tool", "bad_json", "schema"]

MAX_ARGUMENT_DEPTH = 32
"""Arguments nested deeper are malformed: no tool needs more than 2 levels, and Python's JSON parser
recurses (3,000 levels raised RecursionError). Checked by a flat scan before anything parses them."""
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[{]|[\]}]')


class MalformedHandoff(Exception):
    """A reply that is not a valid call of an offered tool; `message` is the answer to the model."""

    def __init__(self, kind: Kind, error: str, message: str, tool: str | None = None) -> None:
        self.kind: Kind = kind
        self.error = error  # short text, recorded on the handoff row
        self.message = message  # what the model is told
        self.tool = tool
        super().__init__(error)

    def __reduce__(self) -> tuple[Any, ...]:
        return (MalformedHandoff, (self.kind, self.error, self.message, self.tool))


def _malformed(kind: Kind, error: str, offered: Offered, tool: str | None = None) -> MalformedHandoff:
    message = prompts.render("malformed.j2", kind=kind, error=error, tools=list(offered))
    return MalformedHandoff(kind, error, message, tool)


def _excerpt(text: str, limit: int = 200) -> str:
    return shorten(" ".join(clean(text).split()), limit)


def clean(text: str) -> str:
    """`text` with lone surrogates (not valid Unicode, so not storable as UTF-8) replaced by '?'."""
    return text.encode("utf-8", errors="replace").decode("utf-8")


def _is_unicode(data: Any) -> bool:
    """Whether every string in parsed JSON is valid Unicode (JSON's "\\ud800" escape makes one that is not)."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_call(call: ToolCall, offered: Offered) -> ToolArgs:
    """The validated arguments of one tool call, or MalformedHandoff."""
    model = offered.get(call.name)
    if model is None:
        raise _malformed("unknown_tool", f"unknown tool {call.name!r}", offered, clean(call.name))
    raw = call.arguments if call.arguments.strip() else "{}"  # "" is how some providers say "no arguments"
    depth = nesting_depth(raw, MAX_ARGUMENT_DEPTH)
    if depth > MAX_ARGUMENT_DEPTH:
        error = (f"arguments of {call.name} nest more than {MAX_ARGUMENT_DEPTH} levels deep; "
                 f"send a flat JSON object: {_excerpt(raw)}")
        raise _malformed("bad_json", error, offered, call.name)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        error = f"arguments of {call.name} are not valid JSON ({exc.msg} at char {exc.pos}): {_excerpt(raw)}"
        raise _malformed("bad_json", error, offered, call.name) from exc
    if not isinstance(data, dict):
        error = f"arguments of {call.name} must be a JSON object, got {type(data).__name__}"
        raise _malformed("schema", error, offered, call.name)
    if not _is_unicode(data):
        error = (f"arguments of {call.name} hold a lone surrogate (\\ud800-\\udfff), which is not valid Unicode; "
                 f"send real characters: {_excerpt(raw)}")
        raise _malformed("bad_json", error, offered, call.name)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = f"arguments of {call.name} fail its schema:\n{describe_errors(exc)}"
        raise _malformed("schema", error, offered, call.name) from exc


def nesting_depth(text: str, stop: int) -> int:
    """How deep the brackets of a JSON text nest (strings skipped), counting no further than `stop` + 1.

    A flat scan: nothing recursive touches the text before its depth is known.
    """
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(text):
        first = token.group()[0]
        if first in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop:
                break
        elif first in "]}":
            depth -= 1
    return deepest


def parse_calls(reply: Reply, offered: Offered) -> list[tuple[ToolCall, ToolArgs]]:
    """Every tool call of `reply` with its validated arguments; one bad call makes the reply malformed."""
    if not reply.tool_calls:
        said = f": {_excerpt(reply.content)}" if reply.content else ""
        raise _malformed("no_tool_call", f"the reply called no tool{said}", offered)
    return [(call, parse_call(call, offered)) for call in reply.tool_calls]


def answer(reply: Reply, bad: MalformedHandoff) -> list[dict[str, Any]]:
    """The messages that record a malformed reply and the validation error sent back.

    The reply is kept as plain assistant text (its calls written out) rather than as tool calls:
    providers reject histories holding unknown tools or non-JSON arguments, and unanswered calls.
    """
    parts = [clean(reply.content)] if reply.content else []
    parts += [clean(f"(called {call.name} with arguments {call.arguments})") for call in reply.tool_calls]
    return [
        {"role": "assistant", "content": "\n".join(parts) or "(empty reply)"},
        {"role": "user", "content": bad.message},
    ]
