"""Webhooks end to end: a real HTTP receiver on 127.0.0.1, signed bodies, retries, bounded flush, a sprint."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from durability_support import cli, kill_group, start
from runner_support import TEST_CONFIG, item, make_project, query

from agentsprint import notify
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner import actions
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook
from agentsprint.runner.service import run_items
from agentsprint.store import Store, outbox

SECRET = "s3cret-for-tests"
REJECT = tool_call("submit_verdict", verdict="reject", reasons=["not yet"])


@dataclass
class Receiver:
    """Records every POST; answers with the next scripted status (200 when none is left), or hangs."""

    statuses: list[int] = field(default_factory=list)
    hang: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append({"headers": dict(self.headers), "body": body, "at": time.monotonic()})
            if receiver.hang:
                receiver.released.wait(10)
                return
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    server.daemon_threads = True
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/agentsprint"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.released.set()
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def quick_notifier() -> Iterator[notify.Notifier]:
    """Short retries for the process notifier; a fresh one afterwards, so nothing leaks between tests."""
    yield notify.configure(attempts=3, backoff=0.05, timeout=1.0)
    notify.configure()


def _verified(request: dict[str, Any], secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request["headers"].get("X-Agentsprint-Signature", ""))


def _payload(**extra: Any) -> dict[str, Any]:
    return {"event": "item.done", "item_id": "AS-1", "status": "done", "reason": "merged", "run_id": "r1",
            "at": 1.5, "project": "p", "delivery_id": notify.delivery_id("AS-1", "item.done", "AS-1:1"), **extra}


def test_signature_is_the_hmac_of_the_raw_body(receiver: Receiver) -> None:
    sender = notify.Notifier(backoff=0.05)
    sender.send(notify.build(receiver.url, SECRET, _payload()))
    assert sender.flush(5)
    (request,) = receiver.requests
    assert _verified(request, SECRET) and not _verified(request, "another secret")
    assert json.loads(request["body"]) == _payload()
    assert request["headers"]["X-Agentsprint-Event"] == "item.done"
    assert request["headers"]["X-Agentsprint-Delivery"] == _payload()["delivery_id"]


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    failures: list[str] = []
    sender = notify.Notifier(attempts=5, backoff=0.05, on_failure=lambda d, error, n: failures.append(error))
    sender.send(notify.build(receiver.url, SECRET, _payload()))
    assert sender.flush(5)
    assert len(receiver.requests) == 3 and not failures
    assert len({r["body"] for r in receiver.requests}) == 1, "every retry sends the same signed body"
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[1] > gaps[0] >= 0.05, "exponential backoff between attempts"
    assert sender.delivered == [_payload()["delivery_id"]]


def test_a_refusing_receiver_is_not_retried(receiver: Receiver) -> None:
    receiver.statuses = [410]
    failures: list[tuple[str, int]] = []
    sender = notify.Notifier(attempts=5, backoff=0.05, on_failure=lambda d, error, n: failures.append((error, n)))
    sender.send(notify.build(receiver.url, SECRET, _payload()))
    assert sender.flush(5)
    assert len(receiver.requests) == 1 and failures == [("HTTP 410", 1)]


def _sprint(root: Path, server: ScriptedServer, webhook: str) -> Any:
    """AS-1 merges, AS-2 waits for a human, AS-3 is rejected past its cap, AS-4's coder model is down."""
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): CODER[("AS-1", 1)]}, {("AS-3", 1): REJECT})
    items = [item("AS-1"), item("AS-2", dod=["secrets", {"review": "human"}], scope=["shop/extra.py"]),
             item("AS-3", dod=[], scope=["shop/three.py"], rounds=1), item("AS-4", dod=[], scope=["shop/four.py"])]
    settings = make_project(root, server, items, book, config=TEST_CONFIG + f'\n[notify]\nwebhook = "{webhook}"\n')
    coder = book.coder
    server.add("t-coder", responder=lambda body: ScriptedReply(status=500) if "AS-4" in json.dumps(
        body["messages"][:2]) else coder(body))
    return settings


def test_a_sprint_announces_each_final_status_signed(tmp_path: Path, receiver: Receiver,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSPRINT_WEBHOOK_SECRET", SECRET)
    with ScriptedServer() as server:
        settings = _sprint(tmp_path / "p", server, receiver.url)
        report = run_items(settings, ["AS-1", "AS-2", "AS-3", "AS-4"], parallel=2)
    assert report.results == {"AS-1": "done", "AS-2": "awaiting_review", "AS-3": "escalated", "AS-4": "failed"}
    actions.approve(actions.open_project(settings), "AS-2", reviewer="lead")
    assert notify.flush(10)
    assert all(_verified(r, SECRET) for r in receiver.requests)
    got = {(b["item_id"], b["event"]): b for b in receiver.bodies()}
    assert set(got) == {("AS-1", "item.done"), ("AS-2", "item.awaiting_review"), ("AS-3", "item.escalated"),
                        ("AS-4", "item.failed"), ("AS-2", "item.done")}
    assert len(receiver.requests) == 5, "one delivery per event"
    assert got[("AS-3", "item.escalated")]["reason"] == "rounds"
    assert got[("AS-1", "item.done")]["reason"] == "merged" and got[("AS-1", "item.done")]["run_id"] == report.run_id
    assert got[("AS-2", "item.done")]["run_id"] is None, "a human approval is not part of a run"
    assert {b["project"] for b in got.values()} == {"p"}
    assert len({b["delivery_id"] for b in got.values()}) == 5
    transitions = dict(query(settings, "SELECT item_id, max(at) FROM item_transitions WHERE to_status = 'escalated' "
                                       "GROUP BY item_id"))
    assert got[("AS-3", "item.escalated")]["at"] == pytest.approx(transitions["AS-3"])


def test_an_unanswering_receiver_neither_slows_the_run_nor_the_exit(tmp_path: Path, receiver: Receiver) -> None:
    receiver.hang = True
    notify.configure(attempts=5, backoff=1.0, timeout=5.0)  # blocking delivery would take > 30 s
    with ScriptedServer() as server:
        book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): CODER[("AS-1", 1)]})
        settings = make_project(tmp_path / "p", server, [item("AS-1")], book,
                                config=TEST_CONFIG + f'\n[notify]\nwebhook = "{receiver.url}"\n')
        started = time.monotonic()
        assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}
        run_seconds = time.monotonic() - started
    flush_started = time.monotonic()
    assert not notify.flush(1.0), "the delivery is still pending"
    flush_seconds = time.monotonic() - flush_started
    assert receiver.requests, "the delivery was attempted"
    assert run_seconds < 20 and 1.0 <= flush_seconds < 1.5, (run_seconds, flush_seconds)
    print(f"run {run_seconds:.1f} s with a hanging receiver; flush returned after {flush_seconds:.2f} s")


def test_a_failed_delivery_is_recorded_and_the_item_still_done(tmp_path: Path, receiver: Receiver,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    receiver.statuses = [500] * 10
    with ScriptedServer() as server, caplog.at_level(logging.WARNING, logger="agentsprint.notify"):
        book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): CODER[("AS-1", 1)]})
        settings = make_project(tmp_path / "p", server, [item("AS-1")], book,
                                config=TEST_CONFIG + f'\n[notify]\nwebhook = "{receiver.url}"\n')
        notify._WARNED_UNSIGNED = False
        assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}
        assert notify.flush(5)
    assert len(receiver.requests) == 3 and "X-Agentsprint-Signature" not in receiver.requests[0]["headers"]
    (item_id, data), = query(settings, "SELECT item_id, data_json FROM events WHERE kind = 'notify.failed'")
    recorded = json.loads(data)
    assert item_id == "AS-1" and recorded["event"] == "item.done" and recorded["error"] == "HTTP 500"
    assert recorded["url"] == "http://127.0.0.1", "the URL's path (often a token) is not recorded"
    unsigned = [r for r in caplog.records if "unsigned" in r.getMessage()]
    assert len(unsigned) == 1


def test_the_outbox_sends_each_event_once_and_takes_over_only_from_the_dead(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    outbox.add(store, "d1", "AS-1", "item.done", "{}")
    outbox.add(store, "d1", "AS-1", "item.done", "{}")  # a replayed step announces the same event again
    assert [row.delivery_id for row in outbox.pending(store)] == ["d1"]
    assert outbox.claim(store, "d1", "me:1") and not outbox.claim(store, "d1", "me:1"), "queued once"
    host = outbox.me().rpartition(":")[0]
    live_other = f"{host}:{os.getppid()}"
    outbox.add(store, "d2", "AS-2", "item.done", "{}")
    assert outbox.claim(store, "d2", live_other)
    assert not outbox.claim(store, "d2", outbox.me()), "a live claimer within its lease keeps it"
    assert outbox.claim(store, "d2", outbox.me(), lease=0.0), "an expired lease is taken over"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead = f"{host}:{finished.stdout.strip()}"
    outbox.add(store, "d3", "AS-3", "item.done", "{}")
    assert outbox.claim(store, "d3", dead)
    assert outbox.claim(store, "d3", outbox.me()), "a dead claimer's delivery is taken over at once"
    outbox.settle(store, "d3", None, 2)
    outbox.settle(store, "d2", "HTTP 410", 1)
    assert [row.delivery_id for row in outbox.pending(store)] == ["d1"]
    assert not outbox.claim(store, "d3", "other:1") and not outbox.claim(store, "d2", "other:1"), "ended"
    store.close()


def test_a_delivery_a_killed_run_left_is_sent_by_the_next_run(tmp_path: Path, receiver: Receiver) -> None:
    receiver.hang = True
    with ScriptedServer() as server:
        book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): CODER[("AS-1", 1)]})
        settings = make_project(tmp_path / "p", server, [item("AS-1")], book,
                                config=TEST_CONFIG + f'\n[notify]\nwebhook = "{receiver.url}"\n')
        proc = start(settings.root, "run", "--ci", log=tmp_path / "run.log")
        try:
            deadline = time.monotonic() + 90
            while not receiver.requests and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            kill_group(proc)  # while the receiver holds the delivery unanswered
        assert len(receiver.requests) == 1, (tmp_path / "run.log").read_text()
        (delivery_id, claimed_by, delivered_at), = query(
            settings, "SELECT delivery_id, claimed_by, delivered_at FROM webhook_outbox")
        assert delivered_at is None and claimed_by.endswith(f":{proc.pid}")
        receiver.hang = False
        receiver.released.set()
        again = cli(settings.root, "run", "--ci")
    assert again.returncode == 0, again.stdout + again.stderr
    assert [b["delivery_id"] for b in receiver.bodies()] == [delivery_id, delivery_id], "sent again, same id"
    assert receiver.bodies()[1]["event"] == "item.done" and receiver.requests[1]["body"] == receiver.requests[0]["body"]
    (delivered_at, attempts), = query(settings, "SELECT delivered_at, attempts FROM webhook_outbox")
    assert delivered_at is not None and attempts == 1
