"""Sprint and epic files: loading, the problems of a broken file at its line, atomic writes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from agentsprint.backlog.epics import check_epic_file, epic_problems, find_epic, list_epics, write_epic
from agentsprint.backlog.errors import BacklogError
from agentsprint.backlog.sprints import (
    find_sprint,
    list_sprints,
    load_sprint,
    render_sprint,
    sprint_problems,
    sprints_holding,
    write_sprint,
)
from agentsprint.domain import Budget, Capacity, Epic, Sprint, SprintState

DESIGN_EXAMPLE = """name: S14
goal: Pagination and billing fixes
start: 2026-12-01
end: 2026-12-12
state: planned              # planned | active | closed
capacity: {tokens: 2000000, usd: 40, review_hours: 6}
items: [AS-12, AS-14, AS-15]
"""


def _write(folder: Path, name: str, text: str) -> Path:
    (folder / "sprints").mkdir(parents=True, exist_ok=True)
    path = folder / "sprints" / f"{name}.yml"
    path.write_text(text)
    return path


def test_the_design_example_loads_from_the_root_or_the_backlog_folder(tmp_path: Path) -> None:
    _write(tmp_path / "backlog", "S14", DESIGN_EXAMPLE)
    for where in (tmp_path, tmp_path / "backlog"):
        sprint = load_sprint(where, "S14")
        assert sprint.items == ["AS-12", "AS-14", "AS-15"] and sprint.state is SprintState.PLANNED
        assert sprint.capacity == Capacity(tokens=2_000_000, usd=40, review_hours=6)
        assert (sprint.start, sprint.end) == (date(2026, 12, 1), date(2026, 12, 12))
    assert [s.name for s in list_sprints(tmp_path)] == ["S14"]


def test_a_written_sprint_reads_back_equal(tmp_path: Path) -> None:
    sprint = Sprint(name="S1", goal="fix: billing", start=date(2026, 1, 5), end=date(2026, 1, 9),
                    capacity=Capacity(tokens=10, usd=2.5, review_hours=1.5), items=["AS-1", "AS-2"])
    write_sprint(tmp_path, sprint)
    assert load_sprint(tmp_path, "S1") == sprint
    assert sprint_problems(tmp_path, {"AS-1", "AS-2"}) == []
    assert [p.name for p in (tmp_path / "sprints").iterdir()] == ["S1.yml"], "no temp file left"


def test_every_problem_of_a_sprint_file_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "S2", "name: S2\nstate: nope\ncapacity: {tokens: -5}\nfoo: 1\n"
                                  "items:\n  - AS-1\n  - AS-9\n  - AS-1\n")
    shown = [str(p) for p in sprint_problems(tmp_path, {"AS-1"})]
    assert shown == [f"{path}:2: state: Input should be 'planned', 'active' or 'closed' (got 'nope')",
                     f"{path}:3: capacity.tokens: must not be negative (got -5)",
                     f"{path}:4: unknown key 'foo' (known keys: name, goal, start, end, state, capacity, items)",
                     f"{path}:7: unknown item AS-9: no valid backlog item has that id",
                     f"{path}:8: item AS-1 is listed twice"]
    with pytest.raises(BacklogError, match=r"S2\.yml:3: capacity\.tokens"):
        load_sprint(tmp_path, "S2")


def test_a_name_that_is_not_the_file_name_or_dates_backwards_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "S3", "name: S4\nstart: 2026-02-01\nend: 2026-01-01\n")
    shown = "\n".join(map(str, sprint_problems(tmp_path, set())))
    assert "S3.yml:1: name 'S4' does not match the file name S3.yml" in shown
    assert "end 2026-01-01 is before start 2026-02-01" in shown


def test_a_missing_sprint_says_how_to_make_one(tmp_path: Path) -> None:
    assert find_sprint(tmp_path, "S9") is None
    with pytest.raises(BacklogError, match="agentsprint sprint new S9"):
        load_sprint(tmp_path, "S9")
    with pytest.raises(BacklogError, match="not a plain name"):
        load_sprint(tmp_path, "../x")


def test_a_broken_file_is_never_rewritten(tmp_path: Path) -> None:
    path = _write(tmp_path, "S5", "name: S5\ncapacity: {tokens: -1}\n")
    with pytest.raises(BacklogError, match="not rewritten"):
        write_sprint(tmp_path, Sprint(name="S5"))
    assert path.read_text() == "name: S5\ncapacity: {tokens: -1}\n"
    assert list_sprints(tmp_path) == []


def test_closed_sprints_hold_no_items(tmp_path: Path) -> None:
    write_sprint(tmp_path, Sprint(name="A", items=["AS-1"]))
    write_sprint(tmp_path, Sprint(name="B", items=["AS-1"], state=SprintState.CLOSED))
    assert [s.name for s in sprints_holding(tmp_path, "AS-1")] == ["A"]


def test_render_keeps_designs_key_order(tmp_path: Path) -> None:
    text = render_sprint(Sprint(name="S1", capacity=Capacity(tokens=5), items=["AS-1"]))
    assert text == "name: S1\nstate: planned\ncapacity: {tokens: 5}\nitems: [AS-1]\n"


def test_epic_files_round_trip_and_report_their_lines(tmp_path: Path) -> None:
    write_epic(tmp_path, Epic(name="billing", title="Billing", budget=Budget(tokens=10, usd=1.5)))
    assert find_epic(tmp_path, "billing") == Epic(name="billing", title="Billing", budget=Budget(tokens=10, usd=1.5))
    (tmp_path / "epics" / "bad.yml").write_text("title: x\nowner: me\nbudget:\n  usd: -2\n")
    shown = [str(p) for p in epic_problems(tmp_path)]
    assert shown == [f"{tmp_path}/epics/bad.yml:2: unknown key 'owner' (known keys: title, budget)",
                     f"{tmp_path}/epics/bad.yml:4: budget.usd: must not be negative (got -2)"]
    assert [e.name for e in list_epics(tmp_path)] == ["billing"]
    assert check_epic_file(tmp_path / "epics" / "bad.yml")[0] is None
