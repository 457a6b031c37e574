"""One `agentsprint run` per project: a lock row in the project's database naming its holder.

A second run is refused while the holder lives. A holder is gone when, on this host, its pid no
longer runs (or runs another process: boot id and start time are compared), or, on another host,
its heartbeat is older than STALE_SECONDS; then the next run takes the lock over. `agentsprint worker`
processes take no lock: they share the queue by design.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from agentsprint.store import Store

NAME = "run"
STALE_SECONDS = 30.0
"""A holder on another host whose heartbeat is older than this is taken to be gone."""

_INSERT = text("INSERT INTO run_lock (name, token, host, pid, process, since, heartbeat_at) "
               "VALUES (:name, :token, :host, :pid, :process, :now, :now) ON CONFLICT (name) DO NOTHING")
_TAKE_OVER = text("UPDATE run_lock SET token = :token, host = :host, pid = :pid, process = :process, "
                  "since = :now, heartbeat_at = :now WHERE name = :name AND token = :old")
_READ = text("SELECT token, host, pid, process, since, heartbeat_at FROM run_lock WHERE name = :name")


@dataclass(frozen=True)
class Holder:
    """The process holding the project's run lock."""

    token: str
    host: str
    pid: int
    process: str | None
    since: float
    heartbeat_at: float

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on host {self.host}, since {started} ({time.time() - self.since:,.0f} s ago)"


class RunLocked(Exception):
    """Another `agentsprint run` is active in this project."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        super().__init__(
            f"another `agentsprint run` is active in this project: {holder.describe()}. Wait for it, "
            f"or stop it with `agentsprint stop` (its items freeze, resumable) or `kill {holder.pid}` "
            f"on {holder.host}; then run again")


def process_identity(pid: int) -> str | None:
    """Boot id and start time of process `pid` (Linux /proc), None where unknown or not running."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


def _alive_here(holder: Holder) -> bool:
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # runs, as another user
    found = process_identity(holder.pid)
    return holder.process is None or found is None or found == holder.process


def is_gone(holder: Holder, now: float | None = None) -> bool:
    """Whether the holder has ended (this host: its process; another host: its heartbeat)."""
    if holder.host == socket.gethostname():
        return not _alive_here(holder)
    return (now if now is not None else time.time()) - holder.heartbeat_at > STALE_SECONDS


def _me(token: str) -> dict[str, object]:
    pid = os.getpid()
    return {"name": NAME, "token": token, "host": socket.gethostname(), "pid": pid,
            "process": process_identity(pid), "now": time.time()}


def acquire(store: Store) -> str:
    """Take the lock (or take it over from a holder that is gone) and return its token; RunLocked if held."""
    token = uuid.uuid4().hex
    with store.session() as session:
        conn = session.connection()
        if conn.execute(_INSERT, _me(token)).rowcount == 1:
            return token
        row = conn.execute(_READ, {"name": NAME}).first()
        if row is None:  # released between the two statements (PostgreSQL): try once more, from scratch
            if conn.execute(_INSERT, _me(token)).rowcount == 1:
                return token
            row = conn.execute(_READ, {"name": NAME}).one()
        found = Holder(*row)
        if not is_gone(found) or conn.execute(_TAKE_OVER, {**_me(token), "old": found.token}).rowcount != 1:
            raise RunLocked(found)
    return token


def holder(store: Store) -> Holder | None:
    with store.session() as session:
        row = session.connection().execute(_READ, {"name": NAME}).first()
    return Holder(*row) if row is not None else None


def beat(store: Store, token: str) -> bool:
    """Refresh the holder's heartbeat; False when the lock is no longer this token's."""
    with store.session() as session:
        updated = session.connection().execute(
            text("UPDATE run_lock SET heartbeat_at = :now WHERE name = :name AND token = :token"),
            {"now": time.time(), "name": NAME, "token": token})
    return bool(updated.rowcount == 1)


def release(store: Store, token: str) -> None:
    """Give the lock up (only the holder's own token does)."""
    with store.session() as session:
        session.connection().execute(text("DELETE FROM run_lock WHERE name = :name AND token = :token"),
                                     {"name": NAME, "token": token})
