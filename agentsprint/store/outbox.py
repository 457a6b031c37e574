"""The webhook outbox: every announced event is a row until it is delivered or given up.

A process claims a row (`host:pid`) before sending it. A row whose claimer died (same host, pid gone)
or whose claim is older than the lease is claimed again by the next `run` or `worker`: a delivery
is sent at least once, always with the same `delivery_id`, so receivers can drop repeats.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from agentsprint.store import Store
from agentsprint.store.tables import WebhookRow

LEASE_SECONDS = 300.0
"""A claim older than this is taken over (longer than a whole retry series of one delivery)."""


def me() -> str:
    """This process as a claimer: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def alive(owner: str) -> bool:
    """False only when `owner` is a process of this host that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's process: only the lease can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def add(store: Store, delivery_id: str, item_id: str, event: str, body: str) -> None:
    """Record a delivery; a replayed step adding the same `delivery_id` again changes nothing."""
    try:
        with store.session() as session:
            if session.get(WebhookRow, delivery_id) is None:
                session.add(WebhookRow(delivery_id=delivery_id, item_id=item_id, event=event, body=body,
                                       created_at=time.time()))
    except IntegrityError:  # added by another process between the check and the insert
        pass


def claim(store: Store, delivery_id: str, owner: str, lease: float = LEASE_SECONDS,
          is_alive: Callable[[str], bool] = alive) -> bool:
    """Claim a pending delivery for `owner`; False when it is done, given up, already `owner`'s, or held
    by another claimer that is alive and within its lease."""
    now = time.time()
    with store.session() as session:
        row = session.get(WebhookRow, delivery_id)
        if row is None or row.delivered_at is not None or row.failed_at is not None:
            return False
        if row.claimed_by == owner:
            return False  # already queued here
        held = row.claimed_by is not None
        if held and (row.claimed_at or 0) > now - lease and is_alive(row.claimed_by or ""):
            return False
        result = session.connection().execute(update(WebhookRow).where(
            col(WebhookRow.delivery_id) == delivery_id, col(WebhookRow.delivered_at).is_(None),
            col(WebhookRow.failed_at).is_(None),
            (col(WebhookRow.claimed_by).is_(None) if row.claimed_by is None
             else col(WebhookRow.claimed_by) == row.claimed_by),
        ).values(claimed_by=owner, claimed_at=now))
        return bool(result.rowcount == 1)


def pending(store: Store) -> list[WebhookRow]:
    """Deliveries neither delivered nor given up, oldest first."""
    with store.session() as session:
        rows = session.exec(select(WebhookRow).where(
            col(WebhookRow.delivered_at).is_(None), col(WebhookRow.failed_at).is_(None))
            .order_by(col(WebhookRow.created_at))).all()
        return list(rows)


def settle(store: Store, delivery_id: str, error: str | None, attempts: int) -> None:
    """Record the end of a claimed delivery: delivered (`error` None) or given up."""
    now = time.time()
    values: dict[str, object] = {"attempts": col(WebhookRow.attempts) + attempts}
    if error is None:
        values["delivered_at"] = now
    else:
        values.update(failed_at=now, last_error=error[:500])
    with store.session() as session:
        session.connection().execute(update(WebhookRow).where(
            col(WebhookRow.delivery_id) == delivery_id).values(**values))
