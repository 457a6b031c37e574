"""What the `audit` commands do, over a project's settings: open the store, gather anchors, act."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agentsprint.audit import anchors
from agentsprint.audit.chain import Verdict
from agentsprint.audit.verify import verify
from agentsprint.config import Settings
from agentsprint.store.audit_log import iter_events
from agentsprint.store.core import Store
from agentsprint.store.errors import StoreError
from agentsprint.store.sqlite_direct import sqlite_path


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """The project's store; StoreError when a SQLite database does not exist yet (nothing is created)."""
    path = sqlite_path(settings.database_url)
    if path is not None and not path.is_file():
        raise StoreError(f"no database at {path}: nothing has run in this project yet")
    store = Store(settings.database_url)
    try:
        yield store
    finally:
        store.close()


def all_anchors(settings: Settings, files: list[Path]) -> list[anchors.Anchor]:
    """The anchors in the project's git notes and in `files`."""
    found = anchors.read_git(settings.root) if (settings.root / ".git").exists() else []
    for path in files:
        found += anchors.read_file(path)
    return found


def verify_project(settings: Settings, anchor_files: list[Path]) -> tuple[Verdict, int]:
    """The verdict on the project's chain, and how many anchors it was checked against."""
    found = all_anchors(settings, anchor_files)
    with open_store(settings) as store:
        return verify(store, found), len(found)


def anchor_project(settings: Settings, file: Path | None) -> tuple[anchors.Anchor, str]:
    """Anchor the current head (only once the chain verifies); the anchor and where it went."""
    verdict, _ = verify_project(settings, [file] if file is not None and file.is_file() else [])
    if verdict.broken is not None:
        raise anchors.AnchorError(f"the chain is broken at event #{verdict.broken.seq} "
                                  f"({verdict.broken.problem}): run `agentsprint audit verify`")
    anchor = anchors.new_anchor(verdict.head_seq, verdict.head_hash)
    if file is not None:
        anchors.append_to_file(file, anchor)
        return anchor, str(file)
    commit = anchors.append_to_git(settings.root, anchor)
    return anchor, f"git note refs/notes/{anchors.NOTES_REF} on {commit[:12]}"


def export_project(settings: Settings, output: Path, since: float | None, item_id: str | None) -> int:
    """Export the events (from `since`, of `item_id`) to `output` as JSON lines; how many."""
    from agentsprint.audit.export import write_jsonl

    with open_store(settings) as store:
        return write_jsonl(iter_events(store, since=since, item_id=item_id), output)


def export_otlp_json(settings: Settings, output: Path, since: float | None, item_id: str | None) -> int:
    """Write the item runs' spans (from `since`, of `item_id`) to `output` as OTLP JSON; how many spans."""
    from agentsprint.audit import otlp_json
    from agentsprint.audit.spans import traces

    with open_store(settings) as store:
        spans = traces(iter_events(store, since=since, item_id=item_id), content=settings.telemetry.content)
    return otlp_json.write(spans, output)


def timeline(settings: Settings, item_id: str) -> list[str]:
    """The item's timeline lines, oldest first."""
    from agentsprint.audit.timeline import line

    with open_store(settings) as store:
        return [line(event) for event in iter_events(store, item_id=item_id)]
