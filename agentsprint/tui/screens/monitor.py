"""Run monitor: what the store records about running items, whoever started the run; start and kill switch."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from agentsprint.tui import data
from agentsprint.tui.screens.base import BaseModal, BaseScreen, Message

COLUMNS = ("Item", "Status", "Round", "Role", "Last tool call", "Spend", "Gates")
REFRESH_SECONDS = 1.0
BAR_WIDTH = 10


class MonitorScreen(BaseScreen):
    """Running items with their spend bars; refreshed every second from the store."""

    BINDINGS = [
        Binding("R", "start_run", "Start run", id="start_run"),
        Binding("k", "kill", "Kill switch", id="kill"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Message(id="message")
        yield Static("", id="runs")
        yield DataTable(id="running", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Run monitor"
        self.query_one(Message).say("")
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.load()
        self.set_interval(REFRESH_SECONDS, self.load)

    def load(self) -> None:
        self.in_thread(lambda: data.monitor_snapshot(self.settings), self.loaded)

    def loaded(self, snapshot: dict[str, Any]) -> None:
        self.query_one(Message).say("")
        now = self.tui.clock()
        runs = [f"run {r.run_id} ({r.mode}, pid {r.pid} on {r.host}) for {data.wait_text(r.started_at, now)}"
                for r in snapshot["runs"]]
        self.query_one("#runs", Static).update("\n".join(runs) or "no run in progress (R starts one)")
        table = self.query_one(DataTable)
        table.clear()
        table.add_rows(_cells(item) for item in snapshot["items"])

    def action_start_run(self) -> None:
        self.in_thread(lambda: data.start_run(self.settings), self._said, group="action")

    def action_kill(self) -> None:
        self.app.push_screen(ConfirmScreen("Stop every running item? (work is committed; `run` resumes it)"),
                             self._confirmed)

    def _confirmed(self, yes: bool | None) -> None:
        if yes:
            self.in_thread(lambda: data.stop(self.settings), self._stopped, group="action")

    def _stopped(self, stopped: list[str]) -> None:
        self._said(f"stopped {len(stopped)} item(s): {', '.join(stopped)}" if stopped else "nothing was running")

    def _said(self, text: str) -> None:
        self.notify(text)
        self.load()


def _cells(item: Any) -> tuple[Any, ...]:
    budget = item.budget
    gates = " ".join(("+" if g.get("passed") else "x") + str(g.get("name")) for g in item.gates) or "-"
    return (item.item_id, item.status, str(item.round), item.role or "-", item.last_tool or "-",
            spend_bar(budget.spent_tokens + budget.reserved_tokens, budget.limit_tokens,
                      budget.spent_usd + budget.reserved_usd, budget.limit_usd), gates)


def spend_bar(tokens: int, limit_tokens: int | None, usd: float, limit_usd: float | None) -> Text:
    """`[####      ] 40%` of the tighter of the two limits, red from 80%."""
    shares = [used / limit for used, limit in ((tokens, limit_tokens), (usd, limit_usd)) if limit]
    if not shares:
        return Text(data.spend_text(tokens, usd, limit_tokens, limit_usd))
    share = min(1.0, max(shares))
    filled = round(share * BAR_WIDTH)
    style = "red" if share >= 0.8 else "green"
    return Text.assemble(("#" * filled, style), "." * (BAR_WIDTH - filled), f" {share:4.0%}")


class ConfirmScreen(BaseModal):
    """A yes/no question; `y` confirms, `n` or `escape` declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n", "answer(False)", "No", id="confirm_no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(f"{self.question}\n\n[y] yes   [n] no", id="question", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
