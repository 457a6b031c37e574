"""Backlog: every item with its live status and spend, `/` filter, detail, new item, edit in $EDITOR."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from agentsprint.store.records import RoleSpend, RoundRecord
from agentsprint.tui import data
from agentsprint.tui.screens.base import BaseModal, BaseScreen, Message
from agentsprint.tui.widgets.rowtable import RowTable

COLUMNS = ("ID", "Title", "Status", "Spend", "Type", "Priority", "Value", "Budget", "DoD")
"""Status and spend right after the title: on an 80-column terminal they stay in view."""
TITLE_WIDTH = 28
"""Columns of the title: long titles (and file:line errors) are cut so the budget and status stay in view."""
STATUS_STYLES = {"done": "green", "running": "cyan", "awaiting_review": "yellow", "escalated": "red",
                 "failed": "red", "stopped": "magenta", "dropped": "dim", "planned": "blue", "invalid": "bold red"}


class BacklogScreen(BaseScreen):
    """The backlog table."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("escape", "clear_filter", "Clear filter", id="clear_filter", show=False),
        Binding("enter", "open", "Detail", id="open"),
        Binding("n", "new", "New item", id="new"),
        Binding("e", "edit", "Edit", id="edit"),
        Binding("a", "add_to_sprint", "Add to sprint", id="add_to_sprint"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[data.BacklogRow] = []
        self.cells: list[tuple[Any, ...]] = []
        self.shown: list[data.BacklogRow] = []
        self.note = ""
        """What the last edit did, shown once the table is read again."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Message(id="message")
        yield Input(placeholder="/ filter: id, title, label, type:bug, status:escalated", id="filter")
        yield RowTable(id="items")
        yield Footer()

    @property
    def table(self) -> RowTable:
        return self.query_one("#items", RowTable)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#filter", Input)

    def on_mount(self) -> None:
        self.sub_title = "Backlog"
        self.table.set_columns(COLUMNS, {"Title": TITLE_WIDTH})
        self.table.focus()
        self.query_one(Message).say("reading the backlog ...")
        self.call_after_refresh(self.load)  # the first frame is drawn before the worker takes the GIL

    def on_screen_resume(self) -> None:
        if self.cells:  # back from a dialog or another mode: read again (the first read is on mount)
            self.load()

    def load(self) -> None:
        self.in_thread(lambda: data.backlog_rows(self.settings), self.loaded)

    def loaded(self, rows: list[data.BacklogRow]) -> None:
        self.rows = rows
        self.cells = [_cells(row) for row in rows]
        self.table.fit(self.cells)
        self.query_one(Message).say(self.note)
        self.note = ""
        self.show_rows()

    def show_rows(self) -> None:
        """Fill the table with the rows matching the filter, keeping the cursor on the same item."""
        terms = data.parse_filter(self.filter_input.value)
        current = self.selected_id()
        shown = [i for i, row in enumerate(self.rows) if row.matches(terms)] if terms else range(len(self.rows))
        self.shown = [self.rows[i] for i in shown]
        self.table.set_rows([self.cells[i] for i in shown])
        ids = [row.id for row in self.shown]
        if current in ids:
            self.table.move_cursor(ids.index(current))

    def selected_row(self) -> data.BacklogRow | None:
        """The row under the cursor, if any is shown."""
        return self.shown[self.table.cursor_row] if self.shown else None

    def selected_id(self) -> str | None:
        row = self.selected_row()
        return row.id if row else None

    @on(Input.Changed, "#filter")
    def _filtered(self) -> None:
        self.show_rows()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()

    @on(RowTable.Selected, "#items")
    def _row_selected(self) -> None:
        self.action_open()

    def action_filter(self) -> None:
        self.filter_input.focus()

    def action_clear_filter(self) -> None:
        self.filter_input.value = ""
        self.table.focus()

    def action_open(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        if row.problem:
            self.query_one(Message).say(row.problem)
            return
        self.app.push_screen(ItemScreen(row.id))

    def action_new(self) -> None:
        self.app.push_screen(NewItemScreen(), self._created)

    def _created(self, item_id: str | None) -> None:
        if item_id:
            self.notify(f"created {item_id}")
        self.load()

    def action_edit(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.edit(row)

    def action_add_to_sprint(self) -> None:
        """Add the selected item to the current sprint, as `sprint plan NAME --add ID`."""
        from agentsprint.tui import sprint_data

        row = self.selected_row()
        if row is not None and not row.problem:
            self.in_thread(lambda: sprint_data.replan(self.settings, add=[row.id]), self._added, group="action")

    def _added(self, text: str) -> None:
        self.notify(text)
        self.load()

    def edit(self, row: data.BacklogRow) -> None:
        """$EDITOR on a copy of the item's file (the app suspended); saved only when the result is valid."""
        from agentsprint.backlog import load_backlog
        from agentsprint.backlog.files import existing_path, item_files

        path = existing_path(self.settings.backlog_dir, row.id) if not row.problem else None
        path = path or next((p for p in item_files(self.settings.backlog_dir) if p.stem == row.id), None)
        if path is None:
            self.query_one(Message).say(f"no file for {row.id}")
            return
        self.note = edit_file(self, path, load_backlog(self.settings.backlog_dir))
        self.load()


def _cells(row: data.BacklogRow) -> tuple[Any, ...]:
    style = STATUS_STYLES.get(row.status, "")
    if row.problem:
        return (Text(row.id, style="red"), Text(row.title, style="red"), Text(row.status, style=style),
                "", "", "", "", "", "")
    return (row.id, row.title, Text(row.status, style=style), row.spend, *row.cells()[2:7])


def edit_file(screen: BaseScreen, path: Path, backlog: Any) -> str:
    """Edit `path` in $EDITOR while the app is suspended; what happened, in one line."""
    from agentsprint.backlog.files import atomic_write, read_text
    from agentsprint.backlog.service import draft_problems

    original = read_text(path)
    try:
        with screen.app.suspend():
            draft = run_editor(original, path.name)
    except SuspendNotSupported:  # no terminal to hand over (headless, web): an editor that needs none
        draft = run_editor(original, path.name)
    if draft is None:
        return f"editor failed: {path.name} is unchanged"
    if draft == original:
        return "no changes"
    problems = draft_problems(draft, path, backlog)
    if problems:
        return f"not saved, {path.name} is unchanged: " + "; ".join(p.shown_from(screen.settings.root)
                                                                     for p in problems)
    atomic_write(path, draft)
    return f"saved {path.name}"


def run_editor(text: str, name: str) -> str | None:
    """The text after $EDITOR (default vi) edited a temporary copy; None when the editor failed."""
    editor = shlex.split(os.environ.get("EDITOR") or "vi")
    with tempfile.TemporaryDirectory(prefix="agentsprint-edit-") as folder:
        temp = Path(folder) / name
        temp.write_text(text, encoding="utf-8")
        try:
            code = subprocess.call([*editor, str(temp)])
        except OSError:
            return None
        return temp.read_text(encoding="utf-8") if code == 0 else None


class ItemScreen(BaseModal):
    """One item: definition, rounds, spend by role, transitions."""

    def __init__(self, item_id: str) -> None:
        super().__init__()
        self.item_id = item_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Message(id="message")
            yield Static(f"{self.item_id} ...", id="body")

    def on_mount(self) -> None:
        self.query_one(Message).say("")
        self.in_thread(lambda: data.item_detail(self.settings, self.item_id), self.loaded)

    def loaded(self, detail: dict[str, Any]) -> None:
        self.query_one("#body", Static).update(detail_text(detail, self.tui.clock()))


def detail_text(detail: dict[str, Any], now: float) -> Text:
    """The detail page as text."""
    from agentsprint.money import usd_text

    item = detail["item"]
    text = Text()
    text.append(f"{item.id} {item.title}\n", style="bold")
    text.append(f"{item.type.value}, {item.priority.value}, value {item.value}; scope {', '.join(item.scope)}\n")
    text.append(f"DoD: {', '.join(g.name for g in item.dod) or '-'}\n\n{item.body.strip()}\n\n")
    rounds: list[RoundRecord] = detail["rounds"]
    spends: list[RoleSpend] = detail["spend"]
    for rnd in rounds:
        text.append(f"round {rnd.round}: {rnd.verdict} +{rnd.added} -{rnd.removed}\n")
    for spend in spends:
        text.append(f"spend {spend.role}: {data.tokens_text(spend.tokens)} tok {usd_text(spend.usd)}\n")
    for at, before, after, actor in detail["transitions"]:
        text.append(f"{data.wait_text(at, now)} ago  {before} -> {after} ({actor})\n", style="dim")
    return text


class NewItemScreen(BaseModal):
    """A new item: the same fields and validation as `agentsprint add`; errors shown on the field."""

    FIELDS = ("title", "value", "tokens", "usd", "rounds", "labels", "dod")

    def compose(self) -> ComposeResult:
        from agentsprint.domain import ItemType, Priority

        with Vertical(id="form"):
            yield Label("New item", classes="title")
            yield Input(placeholder="title", id="title")
            with Horizontal(classes="row"):
                yield Select([(t.value, t.value) for t in ItemType], value="feature", allow_blank=False, id="type")
                yield Select([(p.value, p.value) for p in Priority], value="medium", allow_blank=False,
                             id="priority")
            with Horizontal(classes="row"):
                for name in ("value", "tokens", "usd", "rounds"):
                    yield Input(placeholder=name, id=name)
            yield Input(placeholder="labels (comma separated)", id="labels")
            yield Input(placeholder="dod, e.g. tests: pytest -q; secrets; review: human", id="dod")
            yield Message(id="message")
            yield Button("Create", id="create", variant="primary")

    def on_mount(self) -> None:
        self.query_one(Message).say("")
        self.query_one("#title", Input).focus()

    @on(Button.Pressed, "#create")
    @on(Input.Submitted)
    def _create(self) -> None:
        values = {name: self.query_one(f"#{name}", Input).value.strip() for name in self.FIELDS}
        for name in self.FIELDS:
            self.query_one(f"#{name}", Input).remove_class("error")
        picked = {name: str(self.query_one(f"#{name}", Select).value) for name in ("type", "priority")}
        self.in_thread(lambda: create(self.settings, values | picked), self._done, group="create")

    def failed(self, text: str) -> None:
        super().failed(text)
        for name in self.FIELDS:
            if text.startswith(f"{name}:") or f" {name}:" in text or f"budget.{name}" in text:
                self.query_one(f"#{name}", Input).add_class("error")

    def _done(self, item_id: str) -> None:
        self.dismiss(item_id)


def create(settings: Any, values: dict[str, str]) -> str:
    """Validate and write a new item as `agentsprint add` does; its id (BacklogError names the field)."""
    from agentsprint.backlog.errors import BacklogError
    from agentsprint.backlog.service import create_item, merge_fields

    if not values["title"]:
        raise BacklogError("title: an item needs a title")
    budget = {name: _number(values[name], name) for name in ("tokens", "usd", "rounds")}
    explicit = {"title": values["title"], "type": values["type"], "priority": values["priority"],
                "value": _number(values["value"], "value"), "budget": budget,
                "labels": _split(values["labels"], ","), "dod": _split(values["dod"], ";")}
    cache = settings.state_dir / "cache" if settings.state_dir.is_dir() else None
    item, _ = create_item(settings.backlog_dir, merge_fields({}, explicit), "", settings.backlog.id_prefix, cache)
    return item.id


def _number(text: str, name: str) -> Any:
    from agentsprint.backlog.errors import BacklogError

    if not text:
        return None
    try:
        return float(text) if name == "usd" else int(text)
    except ValueError:
        raise BacklogError(f"{name}: {text!r} is not a number") from None


def _split(text: str, sep: str) -> list[str] | None:
    parts = [part.strip() for part in text.split(sep) if part.strip()]
    return parts or None
