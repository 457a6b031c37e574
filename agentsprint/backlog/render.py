"""Item -> the Markdown text of its file, in DESIGN's key order; rewriting only the status line."""

from __future__ import annotations

import math
from pathlib import Path

from agentsprint.backlog import frontmatter
from agentsprint.backlog.errors import BacklogError
from agentsprint.domain import FILE_STATUSES, Budget, Item, Status

_WIDE = 1 << 30  # never fold a long scalar over several lines
_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")


def render_item(item: Item) -> str:
    """The full file text: front matter between --- lines, then the body unchanged."""
    return "---\n" + render_front(item) + "---\n" + item.body


def render_front(item: Item) -> str:
    """The front matter lines; optional keys that are empty are left out."""
    lines = [
        f"id: {scalar(item.id)}",
        f"title: {scalar(item.title)}",
        f"type: {item.type.value}",
        f"priority: {item.priority.value}",
        f"value: {item.value}",
        f"status: {item.status.value}",
    ]
    if item.epic is not None:
        lines.append(f"epic: {scalar(item.epic)}")
    if item.source is not None:
        lines.append(f"source: {scalar(item.source)}")
    for key, values, quoted in (("labels", item.labels, False), ("depends_on", item.depends_on, False),
                                ("scope", item.scope, True)):
        if values:
            lines.append(f"{key}: {flow_list(values, quoted)}")
    lines += _budget_lines(item.budget)
    lines += _dod_lines(item)
    return "\n".join(lines) + "\n"


def _budget_lines(budget: Budget) -> list[str]:
    parts = [
        ("tokens", None if budget.tokens is None else str(budget.tokens)),
        ("usd", None if budget.usd is None else number(budget.usd)),
        ("time", None if budget.time is None else scalar(budget.time)),
        ("rounds", None if budget.rounds is None else str(budget.rounds)),
    ]
    written = [f"  {key}: {text}" for key, text in parts if text is not None]
    return ["budget:", *written] if written else ["budget: {}"]


def _dod_lines(item: Item) -> list[str]:
    if not item.dod:
        return ["dod: []"]
    lines = ["dod:"]
    for gate in item.dod:
        entry = gate.to_entry()
        if isinstance(entry, str):
            lines.append(f"  - {scalar(entry)}")
        else:
            (name, value), = entry.items()
            lines.append(f"  - {scalar(name)}: {scalar(value)}")
    return lines


def scalar(text: str) -> str:
    """`text` as a one-line YAML scalar: plain when YAML reads it back as the same string."""
    dumped = _dump(text, None)
    if any(mark in dumped for mark in _BREAKS):
        dumped = _dump(text, '"')
    return dumped


def flow_list(values: list[str], quoted: bool = False) -> str:
    """A one-line YAML flow sequence such as [api] or ["src/**"]."""
    import yaml

    dumped = yaml.safe_dump(values, default_flow_style=True, default_style='"' if quoted else None,
                            allow_unicode=True, width=_WIDE).rstrip("\n")
    if not quoted and any(mark in dumped for mark in _BREAKS):
        return flow_list(values, quoted=True)
    return dumped


def _dump(text: str, style: str | None) -> str:
    import yaml

    dumped = yaml.safe_dump(text, default_style=style, allow_unicode=True, width=_WIDE)
    return dumped.removesuffix("\n...\n").removesuffix("\n")


def number(value: float) -> str:
    """A float as YAML 1.1 reads it back exactly; cents keep two decimals (2.50)."""
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if math.isnan(value):
        return ".nan"
    if abs(value) < 1e15 and round(value, 2) == value:
        return f"{value:.2f}"
    text = repr(value)
    if "e" in text and "." not in text:  # YAML 1.1 needs a dot in a float ("1e+20" is a string)
        mantissa, _, exponent = text.partition("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def with_status(text: str, status: Status | str, path: Path | None = None) -> str:
    """`text` with only the value of its top-level status key changed (added if absent)."""
    target = Status(status)
    if target not in FILE_STATUSES:
        raise BacklogError(f"{path or 'item'}: a file status is todo, done or dropped, not {target.value}")
    import yaml

    parts = frontmatter.split(text)
    root = yaml.compose(parts.front, Loader=yaml.SafeLoader)  # pure-Python marks count characters
    for key_node, value_node in root.value if isinstance(root, yaml.MappingNode) else []:
        if key_node.value == "status":
            start = parts.front_start + value_node.start_mark.index
            end = parts.front_start + value_node.end_mark.index
            return text[:start] + target.value + text[end:]
    newline = "\r\n" if parts.front.endswith("\r\n") else "\n"
    insert_at = parts.front_start + len(parts.front)
    return text[:insert_at] + f"status: {target.value}{newline}" + text[insert_at:]
