"""What every command shares: consoles, settings loading, and errors that exit with code 2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from agentsprint.config import Settings


class _LazyConsole:
    """A rich Console made on first use: importing rich costs ~25 ms that `--help` and `list` skip."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return getattr(self._console, name)


    def real(self) -> Console:
        """The rich Console itself, for code that needs the real object (rich Live, `with console:`)."""
        self.__getattr__("file")
        assert self._console is not None
        return self._console


def real_console(candidate: Console | _LazyConsole) -> Console:
    """`candidate` as a real rich Console (the lazy proxies forward attributes, not the protocols)."""
    return candidate.real() if isinstance(candidate, _LazyConsole) else candidate


console: Console = _LazyConsole()  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]
_fast_exit = False


def exit_without_teardown() -> None:
    """Let main() end the process with os._exit once this command has returned.

    Only for short read-only commands that leave nothing to atexit handlers: tearing the interpreter
    down after pydantic and friends costs ~50 ms (measured), a fifth of `list`'s time budget.
    """
    global _fast_exit
    _fast_exit = True


def fast_exit_requested() -> bool:
    """Whether the command that ran asked for exit_without_teardown."""
    return _fast_exit


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error on stderr and exit (2: usage or configuration error)."""
    from rich.markup import escape

    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    """The project's settings, or exit 2 naming the file and key that are wrong."""
    from agentsprint.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))
