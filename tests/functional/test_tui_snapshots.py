"""Snapshots of every TUI screen at 120x40 and 80x24, through the factory the CLI uses.

The project is real (a scripted run left one item awaiting review and one escalated) and the clock is
frozen five minutes after its last transition, so the SVGs are the same on every run. docs/tui.md shows
them. After a deliberate change of a screen: `pytest tests/functional/test_tui_snapshots.py
--snapshot-update`, then look at the new SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol

import pytest
from textual.app import App
from textual.pilot import Pilot
from tui_support import break_a_file, frozen_clock, review_project

from agentsprint.backlog.sprints import write_sprint
from agentsprint.config import Settings
from agentsprint.domain import Capacity, Sprint
from agentsprint.llm.scripted import ScriptedServer
from agentsprint.tui.app import make_app

SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]


class SnapCompare(Protocol):
    """pytest-textual-snapshot's `snap_compare` fixture: the plugin ships no type information (and its own
    annotation of the fixture names only the first argument), so its comparison function is spelled here."""

    def __call__(self, app: App[Any], press: Iterable[str] = (), terminal_size: tuple[int, int] = (80, 24),
                 run_before: Callable[[Pilot[Any]], Awaitable[None] | None] | None = None) -> bool: ...


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as env, ScriptedServer() as server:
        env.setenv("GIT_CONFIG_GLOBAL", str(tmp_path_factory.mktemp("git") / "config"))
        env.setenv("GIT_CONFIG_NOSYSTEM", "1")
        settings = review_project(tmp_path_factory.mktemp("snap") / "p", server)
        break_a_file(settings)
        write_sprint(settings.backlog_dir, Sprint(name="S1", goal="pagination and pricing", items=["AS-1", "AS-2"],
                                                  capacity=Capacity(tokens=1_000_000, usd=10.0, review_hours=2.0)))
        yield settings


def after(*keys: str) -> Callable[[Pilot[Any]], Any]:
    """A run_before that lets every read finish, presses `keys` (each followed by the reads it starts)."""

    async def run(pilot: Pilot[Any]) -> None:
        await _settle(pilot)
        for key in keys:
            await pilot.press(key)
            await _settle(pilot)

    return run


async def _settle(pilot: Pilot[Any]) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)


def app(settings: Settings, start: str = "backlog") -> Any:
    return make_app(settings, clock=lambda: frozen_clock(settings), start=start)


@pytest.mark.parametrize("size", SIZES)
class TestBacklog:
    def test_table(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared), terminal_size=size, run_before=after())

    def test_filtered(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared), terminal_size=size, run_before=after("slash", *"type:bug"))

    def test_detail(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared), terminal_size=size, run_before=after("down", "enter"))

    def test_new_item_form(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared), terminal_size=size, run_before=after("n"))


@pytest.mark.parametrize("size", SIZES)
class TestInbox:
    def test_inbox(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "inbox"), terminal_size=size, run_before=after())

    def test_review_unified(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "inbox"), terminal_size=size, run_before=after("down", "enter"))

    def test_review_split(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "inbox"), terminal_size=size, run_before=after("down", "enter", "v"))

    def test_escalation(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "inbox"), terminal_size=size, run_before=after("enter"))

    def test_reject_comment(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "inbox"), terminal_size=size, run_before=after("down", "enter", "X"))


@pytest.mark.parametrize("size", SIZES)
class TestMonitorAndKeys:
    def test_monitor(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "monitor"), terminal_size=size, run_before=after())

    def test_kill_switch_confirmation(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "monitor"), terminal_size=size, run_before=after("k"))

    def test_help(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "inbox"), terminal_size=size, run_before=after("down", "enter",
                                                                                        "question_mark"))


@pytest.mark.parametrize("size", SIZES)
class TestSprint:
    def test_board(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "board"), terminal_size=size, run_before=after())

    def test_retro(self, snap_compare: SnapCompare, shared: Settings, size: tuple[int, int]) -> None:
        assert snap_compare(app(shared, "retro"), terminal_size=size, run_before=after())


def test_no_color_inbox(snap_compare: SnapCompare, shared: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app(shared, "inbox"), terminal_size=(80, 24), run_before=after())
