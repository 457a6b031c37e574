"""The CLI's stdout and stderr, redacted: nothing the CLI prints carries a secret (DESIGN section 10).

Titles and bodies come from the user's own backlog files, and records from the store; whatever a
command prints goes through here a whole line at a time, so a secret is never split between writes.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


class RedactedStream:
    """A text stream that redacts each complete line before passing it on to `inner`."""

    def __init__(self, inner: TextIO) -> None:
        from agentsprint.redaction import redact  # standard library only; imported by the entry point

        self.inner = inner
        self.pending = ""
        self.redact = redact

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            lines, _, self.pending = self.pending.rpartition("\n")
            self.inner.write(self.redact(lines + "\n"))
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.inner.write(self.redact(self.pending))
            self.pending = ""
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the real stream's
        return getattr(self.inner, name)


def redact_output() -> None:
    """Route this process's stdout and stderr through redaction (the CLI's composition root calls it)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactedStream):
            setattr(sys, name, RedactedStream(stream))
