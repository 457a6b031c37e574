"""Bounded file access for the agents' tools: regular files only, byte caps, a linear-time regex.

A worktree is written by a model, so anything in it may be hostile: a FIFO that blocks whoever opens
it, a file of hundreds of megabytes, a line without end, a pattern built to backtrack for hours.
Every read here stops at a byte cap and never opens what is not a regular file; `search` patterns
run on RE2 (google-re2), whose matching time is linear in the text, whatever the pattern.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

MAX_LINE_BYTES = 64 * 1024
"""A longer line is cut at this many bytes (and marked) by read_file and search."""
READ_SCAN_BYTES = 64 * 1024 * 1024
"""read_file never reads past this many bytes of a file (to reach, show or count lines)."""
_SKIP_CHUNK = 1024 * 1024
CUT_MARK = " [... line cut]"


class NotRegularFile(OSError):
    """The path is a FIFO, socket, device or other non-regular file: it is never opened."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path.name} is a {kind}, not a regular file")
        self.kind = kind


def file_kind(mode: int) -> str:
    """A word for the type of file in a stat mode."""
    for test, word in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return word
    return "special file"


def open_regular(path: Path) -> IO[bytes]:
    """`path` opened for binary reading; NotRegularFile (without opening it) unless it is a regular file.

    The file is opened non-blocking and checked again, so a FIFO swapped in after the first check
    cannot block the open either.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, file_kind(mode))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, file_kind(mode))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def is_regular(path: Path) -> bool:
    """Whether `path` (symlinks followed) is a regular file; never opens it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _skip_line(stream: IO[bytes], budget: int) -> int:
    """Read past the rest of a cut line (at most `budget` bytes); the bytes skipped."""
    skipped = 0
    while skipped < budget:
        chunk = stream.readline(min(_SKIP_CHUNK, budget - skipped))
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            break
    return skipped


def lines(stream: IO[bytes], limit_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """(line, cut) until the end of the file or `limit_bytes` read; a line over MAX_LINE_BYTES is cut.

    Memory stays bounded by MAX_LINE_BYTES, whatever the file holds.
    """
    consumed = 0
    while consumed < limit_bytes:
        line = stream.readline(min(MAX_LINE_BYTES, limit_bytes - consumed))
        if not line:
            return
        consumed += len(line)
        skipped = 0 if line.endswith(b"\n") else _skip_line(stream, limit_bytes - consumed)
        consumed += skipped
        yield line, skipped > 0


def count_lines(stream: IO[bytes], budget: int) -> tuple[int, bool]:
    """Lines from the stream's position (a line start) within `budget` bytes, and whether that reached
    the end of the file. Counted in chunks, not line by line."""
    count, last = 0, b"\n"
    while budget > 0:
        chunk = stream.read(min(_SKIP_CHUNK, budget))
        if not chunk:
            break
        budget -= len(chunk)
        count += chunk.count(b"\n")
        last = chunk[-1:]
    complete = stream.read(1) == b""
    return count + (last != b"\n"), complete


def decode(line: bytes, cut: bool) -> str:
    """A line as text (undecodable bytes replaced), its end kept, a cut line marked."""
    text = line.decode("utf-8", errors="replace")
    if not cut:
        return text
    return text.rstrip("\r\n") + CUT_MARK + "\n"


class Matcher(Protocol):
    def search(self, text: str) -> Any: ...


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message says what to write instead."""


_PYTHON_ONLY = [
    (re.compile(r"\(\?<?[=!]"), "lookaround assertions ((?=, (?!, (?<=, (?<!)"),
    (re.compile(r"\\[1-9]|\(\?P=\w+\)"), "backreferences (\\1, (?P=name))"),
    (re.compile(r"\(\?>"), "atomic groups ((?>...))"),
    (re.compile(r"[*+?}][+]"), "possessive quantifiers (*+, ++, ?+)"),
]


def compile_pattern(pattern: str) -> Matcher:
    """`pattern` compiled by RE2 (linear-time matching); PatternError with advice when it cannot be."""
    import re2

    translated = re.sub(r"(?<!\\)((?:\\\\)*)\\Z", r"\1\\z", pattern)  # Python's \Z is RE2's \z
    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr, under the live display
    try:
        return re2.compile(translated, options)  # type: ignore[no-any-return]
    except re2.error as exc:
        raise PatternError(_advice(pattern, exc)) from None


def _advice(pattern: str, exc: Exception) -> str:
    detail = exc.args[0] if exc.args else str(exc)
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", errors="replace")
    for probe, what in _PYTHON_ONLY:
        if probe.search(pattern):
            return (f"{detail}; search uses RE2 syntax, which has no {what}: match the surrounding "
                    "text instead, or search for a simpler pattern and read the file")
    return str(detail)
