"""The live run board: what a lead sees per item while a run goes on."""

from __future__ import annotations

from rich.console import Console

from agentsprint.cli.progress import Board


def test_board_shows_round_role_budget_bar_and_last_tool() -> None:
    console = Console(record=True, width=140, force_terminal=False)
    board = Board(console=console, live=False)
    board.update("AS-3", {"status": "running", "round": 2, "role": "coder"})
    board.update("AS-3", {"tokens": 12_000, "token_limit": 50_000, "usd": 0.0123, "last_tool": "edit_file(path='a')"})
    console.print(board.render())
    text = console.export_text()
    assert "AS-3: running round 2 coder" in text, "plain log line when not live (CI)"
    row = next(line for line in text.splitlines() if line.startswith("AS-3 "))
    assert "running" in row and "coder" in row and "$0.0123" in row and "edit_file(path='a')" in row
    assert "██░░░░░░░░ 12,000 / 50,000" in row, "a bar of tokens spent against the budget"


def test_board_ignores_updates_without_an_item() -> None:
    console = Console(record=True, width=100)
    board = Board(console=console, live=False)
    board.update("", {"status": "running"})
    assert board.rows == {}


def test_live_board_accepts_the_cli_console_proxy_once_made_real() -> None:
    from rich.console import Console as RichConsole

    from agentsprint.cli.context import _LazyConsole, real_console

    proxy = _LazyConsole(stderr=True)
    console = real_console(proxy)
    assert isinstance(console, RichConsole), "rich Live needs the real Console, not the attribute-forwarding proxy"
    console._force_terminal = True
    with Board(console=console, live=True) as board:  # the TTY path: enters and leaves rich Live
        board.update("AS-1", {"status": "running", "round": 1})
    assert board.rows["AS-1"].status == "running"


def test_library_log_lines_go_above_the_live_board_not_through_it() -> None:
    import io
    import logging

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, height=30)
    leaked = io.StringIO()
    handler = logging.StreamHandler(leaked)  # what DBOS installs: a handler writing straight to the terminal
    dbos_log = logging.getLogger("dbos")
    dbos_log.addHandler(handler)
    try:
        with Board(console=console, live=True) as board:
            board.update("AS-1", {"status": "running", "round": 1})
            dbos_log.warning("Workflow AS-1:1 is no longer owned by this execution")
        dbos_log.warning("after the board")
    finally:
        dbos_log.removeHandler(handler)
    assert "no longer owned" not in leaked.getvalue(), "written under the board, the line tears the display"
    assert "warning: Workflow AS-1:1 is no longer owned" in screen.getvalue(), "printed above the board instead"
    assert "after the board" in leaked.getvalue(), "logging is back to normal once the board is gone"


def test_board_at_80_columns_keeps_every_column_readable_and_folds_finished_items() -> None:
    console = Console(record=True, width=80, height=10, force_terminal=False)
    board = Board(console=console, live=False)
    for n in range(1, 13):
        board.update(f"AS-{n}", {"status": "done" if n < 10 else "running", "round": 1, "role": "coder",
                                 "tokens": 1_000, "token_limit": 300_000, "usd": 0.0087914000000001})
    console.print(board.render())
    lines = console.export_text().splitlines()[-10:]
    assert lines[1].split() == ["item", "status", "round", "role", "tokens", "/", "budget", "usd"]
    assert [line.split()[0] for line in lines[2:5]] == ["AS-10", "AS-11", "AS-12"], "running items first"
    assert lines[-1].startswith("+ ") and "done" in lines[-1], "finished items folded into one line"
    assert "$0.0088" in lines[2] and "0.0087914" not in "".join(lines)


def test_the_id_column_fits_every_item_of_the_run_before_the_later_ones_start() -> None:
    """22 items, WIDGET-1 to WIDGET-22: the header does not move when WIDGET-10 starts after the first frames."""
    console = Console(record=True, width=120, force_terminal=False)
    board = Board(console=console, live=False)
    board.update("", {"run_items": [f"WIDGET-{n}" for n in range(1, 23)]})
    board.update("WIDGET-1", {"status": "queued"})
    before = _header(board, console)
    board.update("WIDGET-10", {"status": "queued"})
    assert _header(board, console) == before
    assert board.rows.keys() == {"WIDGET-1", "WIDGET-10"}, "the run's ids size the column; they are not rows"


def _header(board: Board, console: Console) -> str:
    console.print(board.render())
    lines = console.export_text(clear=True).splitlines()
    return next(line for line in lines if line.startswith("item"))
