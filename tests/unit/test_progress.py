"""The live run board: what a lead sees per item while a run goes on."""

from __future__ import annotations

from rich.console import Console

from agentsprint.runner.progress import Board


def test_board_shows_round_role_budget_bar_and_last_tool():
    console = Console(record=True, width=140, force_terminal=False)
    board = Board(console=console, live=False)
    board.update("AS-3", {"status": "running", "round": 2, "role": "coder"})
    board.update("AS-3", {"tokens": 12_000, "token_limit": 50_000, "usd": 0.0123, "last_tool": "edit_file(path='a')"})
    console.print(board.render())
    text = console.export_text()
    assert "AS-3: running round 2 coder" in text, "plain log line when not live (CI)"
    row = next(line for line in text.splitlines() if line.startswith("│ AS-3"))
    assert "running" in row and "coder" in row and "$0.0123" in row and "edit_file(path='a')" in row
    assert "██░░░░░░░░ 12,000 / 50,000" in row, "a bar of tokens spent against the budget"


def test_board_ignores_updates_without_an_item():
    console = Console(record=True, width=100)
    board = Board(console=console, live=False)
    board.update("", {"status": "running"})
    assert board.rows == {}


def test_live_board_accepts_the_cli_console_proxy_once_made_real():
    from rich.console import Console as RichConsole

    from agentsprint.cli.context import _LazyConsole, real_console

    proxy = _LazyConsole(stderr=True)
    console = real_console(proxy)
    assert isinstance(console, RichConsole), "rich Live needs the real Console, not the attribute-forwarding proxy"
    console.force_terminal = True
    with Board(console=console, live=True) as board:  # the TTY path: enters and leaves rich Live
        board.update("AS-1", {"status": "running", "round": 1})
    assert board.rows["AS-1"].status == "running"
