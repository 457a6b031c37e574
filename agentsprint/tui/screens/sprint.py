"""Sprint board and retro: the current sprint's items by column with capacity gauges, and its retro."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Static

from agentsprint.tui import data, sprint_data
from agentsprint.tui.screens.base import BaseScreen, Message

BAR_WIDTH = 12
REFRESH_SECONDS = 5.0
"""The board reads the store again this often: a sprint's run moves items from column to column."""
LABELS = {"tokens": "tokens", "usd": "USD", "review_hours": "review h"}


class BoardScreen(BaseScreen):
    """The current sprint's board: todo, running, QA, awaiting review, done, escalated; plan and start it."""

    BINDINGS = [
        Binding("p", "auto_plan", "Auto-plan", id="auto_plan"),
        Binding("R", "start_sprint", "Start sprint", id="start_sprint"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Message(id="message")
        yield Static("", id="sprint-head")
        yield Static("", id="gauges")
        with Horizontal(id="board"):
            for name in sprint_data.COLUMNS:
                yield Static("", id=_column_id(name), classes="column")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Sprint board"
        self.query_one(Message).say("")
        self.load()
        self.set_interval(REFRESH_SECONDS, self.load)

    def on_screen_resume(self) -> None:
        self.load()

    def load(self) -> None:
        self.in_thread(lambda: sprint_data.board(self.settings), self.loaded)

    def loaded(self, board: sprint_data.Board) -> None:
        self.query_one(Message).say("")
        goal = f" - {board.goal}" if board.goal else ""
        self.query_one("#sprint-head", Static).update(Text(f"sprint {board.name} ({board.state}){goal}",
                                                           style="bold"))
        lines = [gauge(kind, g["planned"] or 0.0, g["capacity"]) for kind, g in board.gauges.items()]
        lines += [Text(f"warning: {w}", style="yellow") for w in board.warnings]
        self.query_one("#gauges", Static).update(Text("\n").join(lines))
        for name, cards in board.columns.items():
            column = self.query_one(f"#{_column_id(name)}", Static)
            column.border_title, column.border_subtitle = name, str(len(cards))
            column.update(Text("\n".join(f"{c.id} {c.title}" for c in cards)))

    def action_auto_plan(self) -> None:
        self.in_thread(lambda: sprint_data.replan(self.settings, auto=True), self._said, group="action")

    def action_start_sprint(self) -> None:
        self.in_thread(lambda: sprint_data.start_sprint(self.settings), self._said, group="action")

    def _said(self, text: str) -> None:
        self.notify(text)
        self.load()


def _column_id(name: str) -> str:
    return "col-" + name.lower().replace(" ", "-")


def gauge(kind: str, planned: float, capacity: float | None) -> Text:
    """`tokens   [#####.......]  800k / 2M  40%`, red over capacity; `(no cap)` without one."""
    shown = Text(f"{LABELS[kind]:<9}")
    if capacity is None:
        return shown.append(f"{_amount(kind, planned)} (no cap)")
    share = planned / capacity if capacity else (0.0 if not planned else 2.0)
    filled = min(BAR_WIDTH, round(share * BAR_WIDTH))
    style = "red" if share > 1 + 1e-9 else "green"
    return shown.append_text(Text.assemble(
        "[", ("#" * filled, style), "." * (BAR_WIDTH - filled), "] ",
        f"{_amount(kind, planned)} / {_amount(kind, capacity)} ", (f"{share:.0%}", style),
        (" OVER" if share > 1 + 1e-9 else "", "bold red")))


def _amount(kind: str, value: float) -> str:
    from agentsprint.money import usd_text

    return usd_text(value) if kind == "usd" else f"{value:g} h" if kind == "review_hours" else \
        data.tokens_text(round(value))


class RetroScreen(BaseScreen):
    """The current sprint's retro: findings first, then headline figures and tables; export to md or html."""

    BINDINGS = [
        Binding("x", "export('md')", "Export md", id="export_md"),
        Binding("X", "export('html')", "Export html", id="export_html"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Message(id="message")
        with VerticalScroll(id="retro-scroll"):
            yield Static("reading the retro ...", id="retro")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Retro"
        self.query_one(Message).say("")
        self.load()

    def load(self) -> None:
        self.in_thread(lambda: sprint_data.retro(self.settings), self.loaded)

    def loaded(self, report: dict[str, Any]) -> None:
        from agentsprint.retro.render_term import renderables

        self.report = report
        self.query_one(Message).say("")
        self.query_one("#retro", Static).update(Group(*renderables(report)))

    def action_export(self, fmt: str) -> None:
        report = self.report
        if report is None:
            self.query_one(Message).say("nothing to export yet: the retro is still being read")
            return
        self.in_thread(lambda: sprint_data.export_retro(self.settings, report, fmt), self._exported,
                       group="action")

    def _exported(self, path: Any) -> None:
        self.notify(f"wrote {path.relative_to(self.settings.root)}")
