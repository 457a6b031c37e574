"""`agentsprint edit`: $EDITOR on a temporary copy; the item file changes only when the result is valid."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from agentsprint.cli.context import fail
from agentsprint.cli.views import report

if TYPE_CHECKING:
    from agentsprint.backlog import Backlog


def edit_item(path: Path, backlog: Backlog) -> int:
    """Edit `path` until it is valid (re-editing on a terminal) or abandoned; the exit code."""
    from agentsprint.backlog.files import atomic_write, read_text
    from agentsprint.backlog.service import draft_problems

    original = read_text(path)
    draft: str | None = original
    while True:
        draft = run_editor(draft or "", path.name)
        if draft is None:
            return 1
        if draft == original:
            typer.echo("no changes")
            return 0
        problems = draft_problems(draft, path, backlog)
        if not problems:
            atomic_write(path, draft)
            typer.echo(f"saved {path.name}")
            return 0
        report(problems)
        if not sys.stdin.isatty() or not typer.confirm("Not saved. Edit again?", default=True):
            typer.echo(f"not saved: {path.name} is unchanged", err=True)
            return 1


def run_editor(text: str, name: str) -> str | None:
    """The text after $EDITOR (default vi) edited a temporary copy; None when the editor failed."""
    editor = shlex.split(os.environ.get("EDITOR") or "vi")
    with tempfile.TemporaryDirectory(prefix="agentsprint-edit-") as folder:
        temp = Path(folder) / name
        with open(temp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        try:
            code = subprocess.call([*editor, str(temp)])
        except OSError as exc:
            fail(f"cannot start editor {editor[0]!r}: {exc.strerror} (set $EDITOR)")
        if code != 0:
            typer.echo(f"editor exited with status {code}: nothing saved", err=True)
            return None
        with open(temp, encoding="utf-8", newline="") as handle:
            return handle.read()
