"""`audit export`: the events as JSON lines, each with its hash and the previous one, for third parties."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentsprint.store.audit_log import AuditEvent


def iso(at: float) -> str:
    """The moment `at` as an ISO 8601 UTC date-time."""
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_record(event: AuditEvent) -> dict[str, Any]:
    """One exported event: the hashed fields as stored, plus its sequence number and readable time."""
    return {"seq": event.seq, "time": iso(event.at), "at": event.at, "kind": event.kind,
            "item_id": event.item_id, "run_id": event.run_id, "actor": event.actor,
            "data": json.loads(event.data_json), "prev_hash": event.prev_hash, "hash": event.hash}


def write_jsonl(events: Iterable[AuditEvent], path: Path) -> int:
    """Write the events to `path` (all or nothing: a temporary file renamed into place); how many."""
    count = 0
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for event in events:
                out.write(json.dumps(as_record(event), ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count
