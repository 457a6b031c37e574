"""The project's run lock on real SQLite: one holder; a holder that is gone never blocks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from agentsprint.store import Store
from agentsprint.store.runlock import STALE_SECONDS, RunLocked, acquire, beat, holder, process_identity, release


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'agentsprint.db'}")
    yield opened
    opened.close()


def set_holder(store: Store, **values: object) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with store.session() as session:
        session.connection().execute(text(f"UPDATE run_lock SET {assignments}"), values)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_holder_is_named_in_the_refusal_and_only_its_token_releases(store: Store) -> None:
    token = acquire(store)
    with pytest.raises(RunLocked) as refused:
        acquire(store)
    message = str(refused.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()}, since " in message
    assert "agentsprint stop" in message and f"kill {os.getpid()}" in message
    release(store, "not-the-holder")
    assert holder(store) is not None
    assert beat(store, token)
    release(store, token)
    assert holder(store) is None
    release(store, acquire(store))


def test_a_holder_whose_process_ended_on_this_host_is_taken_over(store: Store) -> None:
    acquire(store)
    set_holder(store, pid=dead_pid(), process=None)
    token = acquire(store)
    found = holder(store)
    assert found is not None and (found.token, found.pid) == (token, os.getpid())


def test_a_reused_pid_is_not_the_holder(store: Store) -> None:
    """After a reboot (or pid wrap-around) the holder's pid may run another program: compare its identity."""
    acquire(store)
    if process_identity(os.getpid()) is None:
        pytest.skip("no /proc here: process identity unknown")
    set_holder(store, process="another-boot:123")
    assert acquire(store)


def test_a_holder_on_another_host_is_gone_only_when_its_heartbeat_is_stale(store: Store) -> None:
    acquire(store)
    set_holder(store, host="elsewhere", pid=1, heartbeat_at=time.time() - STALE_SECONDS / 2)
    with pytest.raises(RunLocked, match="pid 1 on host elsewhere"):
        acquire(store)
    set_holder(store, heartbeat_at=time.time() - STALE_SECONDS - 1)
    assert acquire(store)
