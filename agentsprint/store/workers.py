"""Worker heartbeats, so a live worker can recover the items of one that died."""

from __future__ import annotations

import os
import socket
import time

from sqlalchemy import update
from sqlmodel import col, select

from agentsprint.store import Store
from agentsprint.store.tables import WorkerRow


def register(store: Store, executor_id: str) -> None:
    now = time.time()
    with store.session() as session:
        session.add(WorkerRow(executor_id=executor_id, host=socket.gethostname(), pid=os.getpid(),
                              started_at=now, heartbeat_at=now))


def heartbeat(store: Store, executor_id: str) -> None:
    with store.session() as session:
        session.connection().execute(update(WorkerRow).where(col(WorkerRow.executor_id) == executor_id)
                                     .values(heartbeat_at=time.time()))


def retire(store: Store, executor_id: str, handover: bool = True) -> None:
    """An exit; with `handover` a live worker may recover what this one left at once, else once its beat is stale."""
    values: dict[str, float] = {"stopped_at": time.time()}
    if handover:
        values["heartbeat_at"] = 0.0
    with store.session() as session:
        session.connection().execute(update(WorkerRow).where(col(WorkerRow.executor_id) == executor_id)
                                     .values(**values))


def stale_workers(store: Store, me: str, stale_after: float) -> list[str]:
    """Workers whose heartbeat is older than `stale_after` seconds and whom nobody has recovered yet."""
    cutoff = time.time() - stale_after
    with store.session() as session:
        return list(session.exec(select(WorkerRow.executor_id).where(
            col(WorkerRow.heartbeat_at) < cutoff, col(WorkerRow.recovered_by).is_(None),
            WorkerRow.executor_id != me)).all())


def mark_recovered(store: Store, executor_id: str, me: str) -> bool:
    """Record that `me` recovered `executor_id`; False when another worker already did."""
    with store.session() as session:
        result = session.connection().execute(update(WorkerRow).where(
            col(WorkerRow.executor_id) == executor_id, col(WorkerRow.recovered_by).is_(None))
            .values(recovered_by=me))
        return bool(result.rowcount == 1)
