"""The undo journal: a replayed file-changing tool step repeats exactly what it did the first time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentsprint.agents.tools import ToolPolicy, execute
from agentsprint.runner import undo

POLICY = ToolPolicy(allowed_commands=[], command_timeout_s=5, output_cap=1000)


def _step(tmp_path: Path, step_id: int, name: str, args: dict[str, Any]) -> str:
    worktree = tmp_path / "wt"
    undo.prepare(tmp_path / "journal", "AS-1:1", step_id, str(worktree), name, args.get("path"))
    return execute(str(worktree), name, args, POLICY).output


def test_replayed_edit_whose_new_text_contains_the_old_is_applied_once(tmp_path: Path) -> None:
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / "a.py").write_text("x = 1\n")
    args = {"path": "a.py", "old": "x = 1", "new": "x = 1  # one\nx = 1"}
    first = _step(tmp_path, 7, "edit_file", args)
    after_first = (tmp_path / "wt" / "a.py").read_text()

    replayed = _step(tmp_path, 7, "edit_file", args)  # the process died before the step was recorded

    assert replayed == first == "edited a.py"
    assert (tmp_path / "wt" / "a.py").read_text() == after_first == "x = 1  # one\nx = 1\n"


def test_replayed_write_of_a_new_file_restores_its_absence_first(tmp_path: Path) -> None:
    (tmp_path / "wt").mkdir()
    args = {"path": "pkg/new.py", "content": "A = 1\n"}
    assert _step(tmp_path, 3, "write_file", args) == _step(tmp_path, 3, "write_file", args)
    assert (tmp_path / "wt" / "pkg" / "new.py").read_text() == "A = 1\n"


def test_without_the_journal_the_replay_would_double_the_edit(tmp_path: Path) -> None:
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / "a.py").write_text("x = 1\n")
    args = {"path": "a.py", "old": "x = 1", "new": "x = 1  # one\nx = 1"}
    execute(str(tmp_path / "wt"), "edit_file", args, POLICY)
    second = execute(str(tmp_path / "wt"), "edit_file", args, POLICY)
    assert second.ok is False and "occurs 2 times" in second.output, "a bare replay diverges from the first run"


def test_escaping_paths_and_discard(tmp_path: Path) -> None:
    (tmp_path / "wt").mkdir()
    undo.prepare(tmp_path / "journal", "AS-1:1", 1, str(tmp_path / "wt"), "write_file", "../out.py")
    assert not (tmp_path / "journal").exists(), "a refused path is not journaled"
    _step(tmp_path, 2, "write_file", {"path": "b.py", "content": "B = 2\n"})
    assert any((tmp_path / "journal").rglob("*.json"))
    undo.discard(tmp_path / "journal", "AS-1:1")
    assert not any((tmp_path / "journal").rglob("*.json"))
