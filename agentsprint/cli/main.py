"""The `agentsprint` command: one Typer app assembled from one module per noun.

To add commands, write `agentsprint/cli/<noun>.py` exposing `app = typer.Typer(...)` and add one line
to COMMAND_MODULES: `("agentsprint.cli.<noun>", "<noun>")` for a sub-app (`agentsprint <noun> ...`) or
`("agentsprint.cli.<noun>", None)` to add its commands at the top level. Every module is imported at
start-up, so it may import only typer, the stdlib and other agentsprint.cli modules at top level;
anything heavier is imported inside the command bodies (tests/unit/test_import_hygiene.py checks).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from agentsprint import __version__
from agentsprint.cli.context import fast_exit_requested
from agentsprint.offline import offline_env

COMMAND_MODULES: list[tuple[str, str | None]] = [
    ("agentsprint.cli.items", None),  # init, add, list, show, edit, validate
    ("agentsprint.cli.run", None),  # run, stop, worker, demo
    ("agentsprint.cli.clean", None),  # clean
    ("agentsprint.cli.review", "review"),
    ("agentsprint.cli.escalations", "escalations"),
    ("agentsprint.cli.llm", "llm"),
    ("agentsprint.cli.sprints", "sprint"),
    ("agentsprint.cli.epics", "epic"),
    ("agentsprint.cli.forecast", None),  # forecast
    ("agentsprint.cli.imports", "import"),
    ("agentsprint.cli.retro", None),  # retro
    ("agentsprint.cli.tui", None),  # tui
    ("agentsprint.cli.audit", "audit"),
    ("agentsprint.cli.policy", "policy"),
]

# Errors that are the user's to fix (exit 2, one message, no traceback), by module and class name so
# that checking for them never imports the module: if it was not imported, it did not raise.
USER_ERRORS: list[tuple[str, str]] = [
    ("agentsprint.config", "ConfigError"),
    ("agentsprint.store.errors", "StoreError"),
    ("agentsprint.backlog.errors", "BacklogError"),
]


def is_user_error(exc: BaseException) -> bool:
    """True when `exc` is one of USER_ERRORS."""
    for module_name, class_name in USER_ERRORS:
        module = sys.modules.get(module_name)
        error_class = getattr(module, class_name, None) if module else None
        if isinstance(error_class, type) and isinstance(exc, error_class):
            return True
    return False


class _Group(TyperGroup):
    """The root group: turns user errors raised by any command into exit code 2 and a message."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not is_user_error(exc):
                raise
            from agentsprint.cli.context import fail

            fail(str(exc))


def at_terminal() -> bool:
    """Whether both stdin and stdout are a terminal (a bare `agentsprint` then opens the TUI)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agentsprint {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                 help="Print the version and exit."),
) -> None:
    """Sprint planning for AI coding agents: budgets, an agentic definition of done, retros."""
    if ctx.invoked_subcommand is None:
        if at_terminal():  # a person at a terminal gets the app; scripts and pipes get the help
            from agentsprint.cli.tui import open_tui

            open_tui()
            raise typer.Exit()
        typer.echo(ctx.get_help())
        raise typer.Exit()


def build_app(modules: list[tuple[str, str | None]] | None = None) -> typer.Typer:
    """The Typer app with every module of `modules` (default COMMAND_MODULES) registered."""
    # Plain (click) help: Typer's rich help imports rich and costs ~60 ms on every --help.
    app = typer.Typer(cls=_Group, rich_markup_mode=None, invoke_without_command=True,
                      pretty_exceptions_show_locals=False,
                      context_settings={"help_option_names": ["-h", "--help"]})
    app.callback()(_root)
    for module_name, name in COMMAND_MODULES if modules is None else modules:
        sub_app = importlib.import_module(module_name).app
        if name is None:
            app.add_typer(sub_app)
        else:
            app.add_typer(sub_app, name=name)
    return app


def main() -> None:
    """Entry point of the `agentsprint` script."""
    offline_env()
    if sys.argv[1:2] != ["tui"] and not (sys.argv[1:] == [] and at_terminal()):  # the TUI draws on the terminal
        from agentsprint.cli.output import redact_output

        redact_output()
    # Fewer, larger collections: with the default thresholds, full collections walking every object
    # pydantic and typer created cost `list` ~35 ms (measured). Cycles are still collected.
    gc.set_threshold(100_000, 20, 20)
    try:
        build_app()(prog_name="agentsprint")
    except SystemExit as done:
        if not fast_exit_requested() or not isinstance(done.code, int | None):
            raise
        _flush_and_exit(done.code or 0)


def _flush_and_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a closed pipe (`agentsprint list | head -1`)
            stream.flush()
    os._exit(code)
