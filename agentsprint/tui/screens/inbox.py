"""Inbox: reviews, escalations and dead letters, oldest first; the escalation package with retry or drop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static

from agentsprint.store.records import EscalationPackage, RoundRecord
from agentsprint.tui import data
from agentsprint.tui.screens.base import BaseModal, BaseScreen, Message

if TYPE_CHECKING:
    from agentsprint.store.runs import Escalation

COLUMNS = ("Kind", "Item", "Waiting", "Approving would", "Spend", "What")
KIND_STYLES = {"review": "yellow", "escalation": "red", "dead letter": "magenta"}


class InboxScreen(BaseScreen):
    """Everything waiting on a human."""

    BINDINGS = [Binding("enter", "open", "Open", id="open_entry")]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[data.InboxEntry] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Message(id="message")
        yield DataTable(id="inbox", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Inbox"
        self.query_one(Message).say("")
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def load(self) -> None:
        self.in_thread(lambda: data.inbox(self.settings), self.loaded)

    def loaded(self, entries: list[data.InboxEntry]) -> None:
        self.entries = entries
        now = self.tui.clock()
        self.query_one(Message).say("" if entries else "nothing is waiting on you")
        table = self.query_one(DataTable)
        table.clear()
        table.add_rows((Text(e.kind, style=KIND_STYLES.get(e.kind, "")), e.item_id, data.wait_text(e.since, now),
                        e.approving, e.spend, e.what) for e in entries)

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self.entries or not table.row_count:
            return
        entry = self.entries[table.cursor_row]
        from agentsprint.tui.screens.review import ReviewScreen

        self.app.push_screen(ReviewScreen(entry.item_id) if entry.kind == "review" else EscalationScreen(entry.item_id))


class EscalationScreen(BaseScreen):
    """The escalation package: reason, plan, rounds with their gates and QA reasons, spend; retry or drop."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("R", "retry", "Retry", id="retry"),
        Binding("D", "drop", "Drop", id="drop"),
    ]

    def __init__(self, item_id: str) -> None:
        super().__init__()
        self.item_id = item_id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Message(id="message")
        with VerticalScroll(id="package"):
            yield Static(f"{self.item_id} ...", id="body")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"Escalation {self.item_id}"
        self.query_one(Message).say("")
        self.load()

    def load(self) -> None:
        self.in_thread(lambda: data.escalation_detail(self.settings, self.item_id), self.loaded)

    def loaded(self, found: Escalation) -> None:
        self.query_one("#body", Static).update(package_text(found))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_retry(self) -> None:
        self.app.push_screen(RetryScreen(self.item_id), self._retry)

    def _retry(self, extra: tuple[int, float, int | None] | None) -> None:
        if extra is not None:
            self.in_thread(lambda: data.retry(self.settings, self.item_id, *extra), self._done, group="action")

    def action_drop(self) -> None:
        from agentsprint.tui.screens.monitor import ConfirmScreen

        self.app.push_screen(ConfirmScreen(f"Drop {self.item_id}? (status: dropped is committed to its file)"),
                             self._drop)

    def _drop(self, yes: bool | None) -> None:
        if yes:
            self.in_thread(lambda: data.drop(self.settings, self.item_id), self._done, group="action")

    def _done(self, _: object) -> None:
        self.notify(f"{self.item_id}: done")
        self.app.pop_screen()


def package_text(found: Escalation) -> Text:
    """The package as text: head, budget and spend, then each round's verdict, failed gates and reasons."""
    from agentsprint.money import usd_text

    package = found.package or EscalationPackage(item_id=found.item_id)
    text = Text()
    text.append(f"{found.item_id} {package.title}\n", style="bold")
    text.append(f"{found.reason}: {found.detail}\n", style="red")
    text.append(f"work preserved on {package.branch}\n")
    budget = package.budget
    text.append(f"budget: {budget.get('tokens')} tokens, {budget.get('usd')} USD, {budget.get('rounds')} rounds\n")
    for spend in package.spend:
        text.append(f"  spend {spend.role}: {data.tokens_text(spend.tokens)} tok {usd_text(spend.usd)}\n")
    for step in (package.plan or {}).get("steps", []):
        text.append(f"  plan: {step}\n", style="dim")
    for rnd in package.rounds:
        _round_text(text, rnd)
    return text


def _round_text(text: Text, rnd: RoundRecord) -> None:
    failed = [g for g in rnd.gates if not g.get("passed")]
    text.append(f"round {rnd.round}: {rnd.verdict}; gates failed: "
                f"{', '.join(g['name'] for g in failed) or 'none'}\n", style="bold")
    for gate in failed:
        tail = str(gate.get("output", "")).rstrip().splitlines()[-8:]
        text.append("".join(f"    {line}\n" for line in tail), style="dim")
    for reason in rnd.reasons:
        text.append(f"  - {reason}\n")


class RetryScreen(BaseModal):
    """How much more budget the retry gets: +tokens, +USD, rounds."""

    def __init__(self, item_id: str) -> None:
        super().__init__()
        self.item_id = item_id

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Label(f"Retry {self.item_id} with more budget", classes="title")
            with Horizontal(classes="row"):
                yield Input(placeholder="+tokens", id="add_tokens", type="integer")
                yield Input(placeholder="+USD", id="add_usd", type="number")
                yield Input(placeholder="rounds", id="add_rounds", type="integer")
            yield Message(id="message")
            yield Button("Retry", id="go", variant="primary")

    def on_mount(self) -> None:
        self.query_one(Message).say("")
        self.query_one("#add_tokens", Input).focus()

    @on(Button.Pressed, "#go")
    @on(Input.Submitted)
    def _go(self) -> None:
        values = [self.query_one(f"#{name}", Input).value.strip() for name in ("add_tokens", "add_usd", "add_rounds")]
        try:
            tokens, usd = int(values[0] or 0), float(values[1] or 0)
            rounds = int(values[2]) if values[2] else None
        except ValueError:
            self.query_one(Message).say("numbers only")
            return
        if tokens < 0 or usd < 0 or (rounds is not None and rounds < 1):
            self.query_one(Message).say("+tokens and +USD must be >= 0 and rounds >= 1")
            return
        self.dismiss((tokens, usd, rounds))
