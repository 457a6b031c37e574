"""Helpers for worker tests: a fresh PostgreSQL database, worker subprocesses, bounded waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from agentsprint.llm.scripted import ScriptedReply, ScriptedServer
from agentsprint.runner.demo_script import ScriptBook

T = TypeVar("T")


@contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    """A new, empty database on the server of `base_url` (SQLAlchemy URL), dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def slow_responders(server: ScriptedServer, book: ScriptBook, latency: float, prefix: str = "t") -> None:
    """Serve `book` with every reply delayed by `latency` seconds (items stay in flight long enough)."""
    for model, responder in book.responders(prefix).items():
        def answer(body: dict[str, Any], responder: Callable[[dict[str, Any]], ScriptedReply] = responder
                   ) -> ScriptedReply:
            return responder(body).model_copy(update={"latency": latency})
        server.add(model, responder=answer)


def agentsprint_argv(*args: str) -> list[str]:
    """The `agentsprint` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("agentsprint")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from agentsprint.cli.main import main; main()", *args]


def start_worker(root: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`agentsprint worker` in the project at `root` (cwd), output to `log`, in its own process group."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        return subprocess.Popen(agentsprint_argv("worker", *args), cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """Kill whatever is left of the workers (test cleanup: never leaves a process behind)."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs:
        proc.wait(timeout=10)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def logs(paths: list[Path]) -> str:
    """The tail of each worker's log, for an assertion message."""
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in paths if p.exists())
