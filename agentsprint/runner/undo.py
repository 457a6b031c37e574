"""An undo journal that makes file-changing tool steps safe to replay.

A durable step that dies after its effect but before DBOS records it runs again on resume. For
`write_file` that is harmless, but `edit_file` would then fail ("old occurs 0 times") or apply the
edit twice when `new` contains `old`. Before such a step runs, the file's prior content is saved
under the step's key; a replay first puts it back, so the re-run sees the same file and produces the
same effect and result. Journals of an item are removed when its workflow ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from agentsprint.agents.tools import MAX_EDIT_BYTES
from agentsprint.policy import PolicyViolation, resolve_path

MUTATING = frozenset({"write_file", "edit_file"})


def _entry(folder: Path, workflow_id: str, step_id: int) -> Path:
    safe = hashlib.sha256(workflow_id.encode()).hexdigest()[:16]
    return folder / safe / f"{step_id}.json"


def prepare(folder: Path, workflow_id: str, step_id: int, worktree: str, name: str, rel: object) -> None:
    """Restore the file if this step ran before, then record its content as it is now."""
    if name not in MUTATING or not isinstance(rel, str):
        return
    try:
        target = resolve_path(Path(worktree), rel)
    except (PolicyViolation, RuntimeError):
        return  # the tool itself refuses the path (or reports the symlink loop); nothing will change
    entry = _entry(folder, workflow_id, step_id)
    if entry.is_file():
        _restore(target, json.loads(entry.read_text(encoding="utf-8")))
    if target.exists() and (not target.is_file() or target.stat().st_size > MAX_EDIT_BYTES):
        return  # never opened, or too big to load: edit_file refuses it and a replayed write_file is the same write
    before = target.read_text(encoding="utf-8", errors="surrogateescape") if target.is_file() else None
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_suffix(".tmp")
    tmp.write_text(json.dumps({"before": before}), encoding="utf-8")
    os.replace(tmp, entry)


def _restore(target: Path, saved: dict[str, str | None]) -> None:
    before = saved.get("before")
    if before is None:
        target.unlink(missing_ok=True)
    else:
        target.write_text(before, encoding="utf-8", errors="surrogateescape")


def discard(folder: Path, workflow_id: str) -> None:
    """Drop a finished workflow's journal (every step before this one is recorded)."""
    shutil.rmtree(_entry(folder, workflow_id, 0).parent, ignore_errors=True)
