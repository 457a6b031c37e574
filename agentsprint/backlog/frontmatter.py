"""Split a Markdown file into YAML front matter and body; find the line of any key.

Loading uses libyaml (CSafeLoader) because it is fast; the node walk that finds lines only runs
when something is wrong, so the common path pays for nothing it does not need. PyYAML itself is
imported on first use: a warm `agentsprint list` reads the parse cache and never needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

_OPEN = re.compile(r"(\ufeff)?---[ \t]*\r?\n")
_CLOSE = re.compile(r"^---[ \t]*(?:\r?\n|\Z)", re.MULTILINE)
FIRST_LINE = 2  # the front matter's first line in the file (line 1 is the opening ---)

KeyPath = tuple[str | int, ...]


class FrontMatterError(ValueError):
    """The file has no (closed) front matter, or it is not valid YAML."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Split:
    """The parts of an item file and where the front matter starts in the text."""

    front: str
    body: str
    front_start: int
    close_line: int


def split(text: str) -> Split:
    """Front matter and body of `text`; FrontMatterError when the fences are missing."""
    opening = _OPEN.match(text)
    if opening is None:
        raise FrontMatterError(1, "missing front matter: the file must start with a '---' line")
    closing = _CLOSE.search(text, opening.end())
    if closing is None:
        raise FrontMatterError(1, "front matter is not closed by a '---' line")
    front = text[opening.end() : closing.start()]
    close_line = FIRST_LINE + front.count("\n")
    return Split(front, text[closing.end() :], opening.end(), close_line)


def load(front: str) -> Any:
    """The YAML value of the front matter; FrontMatterError with the file line on a syntax error."""
    return load_yaml(front, FIRST_LINE)


def load_yaml(text: str, first_line: int = 1) -> Any:
    """The value of a YAML document whose first line is file line `first_line`.

    Anchors and aliases are refused (FrontMatterError at their line): nine lines of aliases expand
    to a billion values ("billion laughs"), which hung every backlog command that validated or
    printed them. No backlog file needs them.
    """
    import yaml

    try:
        data = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise FrontMatterError(*_syntax_error(exc, first_line)) from exc
    except yaml.YAMLError as exc:
        raise FrontMatterError(first_line, f"YAML error: {exc}") from exc
    if "&" in text or "*" in text:  # cheap test first: most files have neither
        _refuse_aliases(text, first_line)
    return data


def _refuse_aliases(text: str, first_line: int) -> None:
    import yaml

    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            line = first_line + (event.start_mark.line if event.start_mark else 0)
            raise FrontMatterError(line, "YAML anchors and aliases (&name, *name) are not allowed; "
                                         "write the value out")


def _syntax_error(exc: yaml.MarkedYAMLError, first_line: int) -> tuple[int, str]:
    """Report at the start of what was being parsed (an unclosed [ ...): one line number, the one to fix."""
    problem_line = first_line + exc.problem_mark.line if exc.problem_mark else first_line
    if exc.context_mark is None:
        return problem_line, f"YAML syntax error: {exc.problem}"
    line = first_line + exc.context_mark.line
    construct = str(exc.context).removeprefix("while parsing ").removeprefix("while scanning ").removeprefix("a ")
    return line, f"YAML syntax error in the {construct} that starts on this line: {exc.problem}"


def key_lines(front: str) -> dict[KeyPath, int]:
    """File line of every key and list entry, e.g. {("budget", "tokens"): 14, ("dod", 1): 18}."""
    import yaml

    try:
        root = yaml.compose(front, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[KeyPath, int] = {}
    _walk(root, (), lines)
    return lines


def _walk(node: yaml.Node | None, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, str(key_node.value))
            lines.setdefault(key_path, FIRST_LINE + key_node.start_mark.line)
            _walk(value_node, key_path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, entry in enumerate(node.value):
            lines[(*path, index)] = FIRST_LINE + entry.start_mark.line
            _walk(entry, (*path, index), lines)


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int:
    """The line of the deepest known prefix of `path` (1 when nothing matches)."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1


_TOP_KEY = re.compile(r"^([^\s#:][^:\n]*?)[ \t]*:", re.MULTILINE)


def duplicate_top_keys(front: str) -> list[tuple[str, int]]:
    """Top-level keys written twice (YAML silently keeps the last), each with its later line.

    A cheap textual scan decides whether the exact node walk is needed at all.
    """
    candidates = [match.group(1) for match in _TOP_KEY.finditer(front)]
    if len(candidates) == len(set(candidates)):
        return []
    import yaml

    try:
        root = yaml.compose(front, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return []
    seen: set[str] = set()
    duplicates = []
    for key_node, _ in root.value if isinstance(root, yaml.MappingNode) else []:
        if key_node.value in seen:
            duplicates.append((str(key_node.value), FIRST_LINE + key_node.start_mark.line))
        seen.add(key_node.value)
    return duplicates
