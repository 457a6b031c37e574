"""What every command shares: consoles, settings loading, and errors that exit with code 2."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error on stderr and exit (2: usage or configuration error)."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def settings_or_exit():  # type: ignore[no-untyped-def]
    """The project's settings, or exit 2 naming the file and key that are wrong."""
    from agentsprint.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))
