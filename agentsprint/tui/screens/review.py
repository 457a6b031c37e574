"""Diff review: file list, the diff (unified or split), gates and QA's reasons; approve merges, reject re-rounds."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Header, Input, Label, OptionList, Static

from agentsprint.tui import data
from agentsprint.tui.screens.base import BaseModal, BaseScreen, Message
from agentsprint.tui.widgets.diffview import DiffView, FileDiff, split_patch

SPLIT_WIDTH = 140
"""Terminal columns from which the diff is shown side by side unless the user chose."""


class ReviewScreen(BaseScreen):
    """One item awaiting review."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("j", "scroll(1)", "Down", id="scroll_down", show=False),
        Binding("k", "scroll(-1)", "Up", id="scroll_up", show=False),
        Binding("right_square_bracket", "file(1)", "Next file", id="next_file"),
        Binding("left_square_bracket", "file(-1)", "Prev file", id="prev_file", show=False),
        Binding("v", "toggle_split", "Split/unified", id="toggle_split"),
        Binding("A", "approve", "Approve", id="approve"),
        Binding("X", "reject", "Reject", id="reject"),
    ]

    def __init__(self, item_id: str) -> None:
        super().__init__()
        self.item_id = item_id
        self.files: list[FileDiff] = []
        self.chosen_split: bool | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Message(id="message")
        with Horizontal(id="review"):
            yield OptionList(id="files")
            with Vertical(id="main"):
                yield Static("", id="facts")
                with VerticalScroll(id="diff-scroll"):
                    yield DiffView(id="diff")
        yield Footer()

    @property
    def diff(self) -> DiffView:
        return self.query_one("#diff", DiffView)

    @property
    def file_list(self) -> OptionList:
        return self.query_one("#files", OptionList)

    def on_mount(self) -> None:
        self.sub_title = f"Review {self.item_id}"
        self.query_one(Message).say("")
        self.load()

    def on_resize(self) -> None:
        if self.chosen_split is None:
            self.diff.split = self.size.width >= SPLIT_WIDTH

    def load(self) -> None:
        self.in_thread(lambda: data.review_detail(self.settings, self.item_id), self.loaded)

    def loaded(self, detail: dict[str, Any]) -> None:
        self.files = split_patch(detail["diff"] or "")
        self.file_list.clear_options()
        self.file_list.add_options([f.path for f in self.files])
        self.query_one("#facts", Static).update(facts_text(detail))
        self.show_file(0)

    def show_file(self, index: int) -> None:
        if not self.files:
            self.diff.show(None)
            return
        index %= len(self.files)
        self.file_list.highlighted = index
        self.diff.show(self.files[index])
        self.query_one("#diff-scroll").scroll_home(animate=False)

    @on(OptionList.OptionHighlighted, "#files")
    def _picked(self, event: OptionList.OptionHighlighted) -> None:
        if self.files and self.diff.file is not self.files[event.option_index]:
            self.show_file(event.option_index)

    def action_file(self, step: int) -> None:
        current = self.file_list.highlighted or 0
        self.show_file(current + step)

    def action_scroll(self, lines: int) -> None:
        self.query_one("#diff-scroll", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_toggle_split(self) -> None:
        self.chosen_split = not self.diff.split
        self.diff.split = self.chosen_split

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_approve(self) -> None:
        self.in_thread(lambda: data.approve(self.settings, self.item_id), self._approved, group="action")

    def _approved(self, status: str) -> None:
        merged = status == "done"
        self.notify(f"{self.item_id} approved and merged" if merged else
                    f"{self.item_id} approved but the merge conflicted: escalated",
                    severity="information" if merged else "warning")
        self.app.pop_screen()

    def action_reject(self) -> None:
        self.app.push_screen(RejectScreen(self.item_id), self._rejected)

    def _rejected(self, comment: str | None) -> None:
        if comment:
            self.in_thread(lambda: data.reject(self.settings, self.item_id, comment), self._done_reject,
                           group="action")

    def _done_reject(self, _: object) -> None:
        self.notify(f"{self.item_id} rejected: its next round starts with your comment")
        self.app.pop_screen()


def facts_text(detail: dict[str, Any]) -> Text:
    """Round, stats, each gate's result and QA's reasons, for beside the diff."""
    text = Text()
    text.append(f"{detail['id']} round {detail['round']} on {detail['branch']}: {detail['files']} file(s), "
                f"+{detail['added']} -{detail['removed']}\n", style="bold")
    for gate in detail["gates"]:
        passed = gate.get("passed")
        text.append(f"{'passed' if passed else 'FAILED'} ", style="green" if passed else "bold red")
        text.append(f"gate {gate.get('name')}\n")
    for reason in detail["qa_reasons"]:
        text.append(f"QA: {reason}\n", style="italic")
    return text


class RejectScreen(BaseModal):
    """The rejection comment: it becomes the finding the next round works on."""

    def __init__(self, item_id: str) -> None:
        super().__init__()
        self.item_id = item_id

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Label(f"Reject {self.item_id}: what must change?", classes="title")
            yield Input(placeholder="comment (the next round's finding)", id="comment")
            yield Message(id="message")
            yield Button("Reject", id="go", variant="error")

    def on_mount(self) -> None:
        self.query_one(Message).say("")
        self.query_one("#comment", Input).focus()

    @on(Button.Pressed, "#go")
    @on(Input.Submitted)
    def _go(self) -> None:
        comment = self.query_one("#comment", Input).value.strip()
        if not comment:
            self.query_one(Message).say("a rejection needs a comment: it is what the next round works on")
            return
        self.dismiss(comment)
