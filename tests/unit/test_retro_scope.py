"""Resolving the retro's scope: sprint files, the database's sprint, dates; errors name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsprint.retro.errors import RetroError
from agentsprint.retro.scope import load_sprint, parse_since
from agentsprint.store.history import SprintRecord

RECORD = SprintRecord("S1", 100, 1.0, 2.0, 10.0, None, ["AS-9"])


def test_the_sprint_file_wins_over_the_database(tmp_path: Path) -> None:
    (tmp_path / "sprints").mkdir()
    (tmp_path / "sprints" / "S1.yml").write_text(
        "name: S1\ngoal: g\nstart: 2026-12-01\nend: 2026-12-12\nstate: active\n"
        "capacity: {tokens: 2000000, usd: 40, review_hours: 6}\nitems: [AS-12, AS-14]\n")
    sprint = load_sprint(tmp_path, "S1", RECORD)
    assert sprint.items == ["AS-12", "AS-14"] and sprint.usd == 40 and sprint.review_hours == 6
    assert sprint.start == parse_since("2026-12-01") and sprint.end == parse_since("2026-12-12")


def test_without_a_file_the_database_sprint_is_used(tmp_path: Path) -> None:
    sprint = load_sprint(tmp_path, "S1", RECORD)
    assert sprint.items == ["AS-9"] and sprint.start == 10.0 and sprint.review_hours == 2.0


def test_no_sprint_anywhere_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RetroError, match="no sprint named 'S2'"):
        load_sprint(tmp_path, "S2", None)


@pytest.mark.parametrize(("text", "message"), [
    ("name: S1\nitems: [AS-1\n", r"S1.yml:2: "),
    ("name: S1\ncapacity: 5\n", r"S1.yml:2: capacity: Input should be a valid dictionary"),
    ("name: S1\nstart: soon\n", r"S1.yml:2: start: Input should be a valid date"),
    ("- a list\n", r"S1.yml:1: expected a mapping with the keys name, goal"),
    ("name: S1\ncapacity: {usd: -1}\n", r"S1.yml:2: capacity.usd: must not be negative"),
])
def test_a_broken_sprint_file_names_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "sprints").mkdir()
    (tmp_path / "sprints" / "S1.yml").write_text(text)
    with pytest.raises(RetroError, match=message):
        load_sprint(tmp_path, "S1", RECORD)


def test_since_takes_dates_and_times_in_utc() -> None:
    assert parse_since("1970-01-02") == 86400.0
    assert parse_since("1970-01-01T01:00") == 3600.0
    assert parse_since("1970-01-01T01:00+01:00") == 0.0
    with pytest.raises(RetroError, match="not a date"):
        parse_since("last week")
