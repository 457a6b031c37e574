"""Problems found in backlog files, and the error that carries them."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentsprint.text import shorten

MAX_QUOTED = 200
"""An error message quotes at most this many characters of a value from a file."""

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 80, 80


def shown(value: Any) -> str:
    """`repr(value)` bounded in depth, entries and length: a hostile file cannot blow up a message."""
    return shorten(_REPR.repr(value), MAX_QUOTED)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one file, at a 1-based line."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    def shown_from(self, base: Path) -> str:
        """`path:line: message` with the path relative to `base` when it lies below it."""
        try:
            shown = self.path.resolve().relative_to(base.resolve())
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}: {self.message}"


class BacklogError(Exception):
    """A backlog file or an item about to be written is invalid (a user error, not a bug)."""

    def __init__(self, message: str, problems: Iterable[Problem] = (), shown: int | None = None) -> None:
        """`shown` caps the problems the message lists (all stay in `problems`)."""
        self.problems = list(problems)
        lines = [message] if message else []
        listed = self.problems[:shown] if shown is not None else self.problems
        hidden = len(self.problems) - len(listed)
        more = [f"... and {hidden} more (`agentsprint validate` lists them all)"] if hidden else []
        super().__init__("\n".join([*lines, *(str(p) for p in listed), *more]))
