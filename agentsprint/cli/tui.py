"""`agentsprint tui` (also a bare `agentsprint` on a terminal): the Textual app on the current project."""

from __future__ import annotations

import typer

from agentsprint.cli.context import fail, settings_or_exit

app = typer.Typer()


@app.command("tui")
def tui_command() -> None:
    """Open the interactive app: backlog, run monitor, review inbox with diff review, escalations."""
    open_tui()


def open_tui() -> None:
    """Run the app until the user quits; a bad [tui.keys] setting exits 2 before the screen changes."""
    from agentsprint.config import ConfigError
    from agentsprint.tui.app import make_app

    try:
        tui = make_app(settings_or_exit())
    except ConfigError as exc:
        fail(str(exc))
    tui.run()
