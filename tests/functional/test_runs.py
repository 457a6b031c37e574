"""One `agentsprint run` per project, and exact spend when a run is interrupted, through the installed script.

Two runs started together: one refuses (naming the holder), nothing is executed or paid twice. Ctrl-C
(SIGINT) or SIGTERM during a run: one line, exit 130, the items `stopped` and resumed by the next
run; a call in flight stays charged at its reservation, or at its reported usage when the reply
arrived in time. A call killed with kill -9 is settled at its reservation when its item resumes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from durability_support import ITEM_IDS, cli, kill_group, new_project, serve_book, sprint_book, start
from runner_support import TEST_CONFIG, query

from agentsprint.config import Settings
from agentsprint.llm.scripted import Responder, ScriptedReply, ScriptedServer
from agentsprint.money import usd_value
from agentsprint.runner.stopping import INTERRUPT_DRAIN_SECONDS

SLOW_CONFIG = TEST_CONFIG.replace('call_timeout = "3s"', 'call_timeout = "60s"')
HELD_MODEL = "t-coder"


class Hold:
    """Answers requests from the sprint's book; the first request to `HELD_MODEL` is held `seconds`."""

    def __init__(self, server: ScriptedServer, seconds: float) -> None:
        self.seconds, self.arrived, self.lock = seconds, threading.Event(), threading.Lock()
        for model, responder in sprint_book().responders("t").items():
            server.add(model, responder=self.wrap(model, responder))

    def wrap(self, model: str, responder: Responder) -> Responder:
        def answer(body: dict[str, Any]) -> ScriptedReply:
            reply = responder(body)
            with self.lock:
                first = model == HELD_MODEL and not self.arrived.is_set()
                self.arrived.set() if first else None
            return reply.model_copy(update={"latency": self.seconds}) if first else reply

        return answer


def requests_answered(server: ScriptedServer) -> int:
    return sum(len(bodies) for bodies in server.requests.values())


def wait_for(event: threading.Event, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not event.wait(0.05):
        assert proc.poll() is None, "the run ended before the held call"
        assert time.monotonic() < deadline, "the held call never arrived"


def show_spent(settings: Settings, item_id: str) -> dict[str, Any]:
    shown = cli(settings.root, "show", item_id, "--json")
    assert shown.returncode == 0, shown.stderr
    spent: dict[str, Any] = json.loads(shown.stdout)["spent"]
    return spent


def charged(settings: Settings, item_id: str) -> tuple[int, float]:
    """Tokens and USD of every call of the item that cost something (ok, interrupted, duplicate...)."""
    row = query(settings, "SELECT sum(input_tokens + output_tokens), sum(usd) FROM model_calls "
                          "WHERE item_id = ? AND outcome NOT IN ('refused')", item_id)[0]
    return int(row[0] or 0), float(row[1] or 0.0)


def test_two_runs_started_together_one_refuses_and_nothing_is_executed_or_paid_twice(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        serve_book(server, sprint_book(), 0.1, 0.2)
        project = new_project(tmp_path / "p", server.base_url)
        procs = [start(project.root, "run", "--ci", "--json", log=tmp_path / f"run{n}.log") for n in (1, 2)]
        try:
            codes = [proc.wait(timeout=240) for proc in procs]
        finally:
            for proc in procs:
                kill_group(proc)
        answered = requests_answered(server)

    errors = [(tmp_path / f"run{n}.log.err").read_text() for n in (1, 2)]
    assert sorted(codes) == [0, 2], (codes, errors)
    refusal = errors[codes.index(2)]
    assert "another `agentsprint run` is active in this project: pid " in refusal, refusal
    assert "agentsprint stop" in refusal and "Traceback" not in refusal, refusal
    assert query(project, "SELECT idempotency_key, count(*) FROM model_calls WHERE outcome = 'ok' "
                          "GROUP BY idempotency_key HAVING count(*) > 1") == []
    ok_calls = query(project, "SELECT count(*) FROM model_calls WHERE outcome = 'ok'")[0][0]
    assert answered == ok_calls, "each model request was answered once, and settled once"
    executions = dict(query(project, "SELECT item_id, count(*) FROM events WHERE kind = 'item.execution' "
                                     "GROUP BY item_id"))
    assert executions == dict.fromkeys(ITEM_IDS, 1), "each item's workflow executed once: no step ran twice"
    assert dict(query(project, "SELECT item_id, status FROM item_state")) == dict.fromkeys(ITEM_IDS,
                                                                                          "awaiting_review")
    assert query(project, "SELECT count(*) FROM run_lock")[0][0] == 0, "the finished run released the lock"


def test_a_second_run_while_one_works_is_refused_and_a_killed_holder_blocks_nothing(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        hold = Hold(server, 60)
        project = new_project(tmp_path / "p", server.base_url, config=SLOW_CONFIG)
        first = start(project.root, "run", "--ci", log=tmp_path / "first.log")
        try:
            wait_for(hold.arrived, first)
            second = cli(project.root, "run", "--ci", timeout=120)
            in_flight = query(project, "SELECT id, reserved_tokens, reserved_usd FROM model_calls "
                                       "WHERE outcome = 'reserved'")
            kill_group(first)  # kill -9 with the held call in flight
            finished_first = {row[0] for row in query(project, "SELECT item_id FROM item_state "
                                                              "WHERE status = 'awaiting_review'")}
            resumed = cli(project.root, "run", "--ci", "--json", timeout=180)
        finally:
            kill_group(first)

    assert second.returncode == 2, second.stdout + second.stderr
    assert f"pid {first.pid} on host " in second.stderr and f"kill {first.pid}" in second.stderr, second.stderr
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    # The first run goes on with the other items while the second starts: what it finished is not rerun.
    unfinished = [item_id for item_id in ITEM_IDS if item_id not in finished_first]
    assert json.loads(resumed.stdout)["results"] == dict.fromkeys(unfinished, "awaiting_review")
    assert dict(query(project, "SELECT item_id, status FROM item_state")) == dict.fromkeys(ITEM_IDS,
                                                                                          "awaiting_review")
    orphans = {row[0]: row for row in in_flight}
    assert orphans, "the kill left a call in flight"
    settled = [query(project, "SELECT id, outcome, input_tokens + output_tokens, usd FROM model_calls WHERE id = ?",
                     call_id)[0] for call_id in orphans]
    for call_id, outcome, tokens, usd in settled:
        assert outcome == "interrupted", f"call {call_id} left in flight is settled when its item resumes"
        assert (tokens, usd) == pytest.approx(orphans[call_id][1:]), "charged at its reservation"
    assert query(project, "SELECT count(*) FROM model_calls WHERE outcome = 'reserved'")[0][0] == 0
    for item_id in ITEM_IDS:
        tokens, usd = charged(project, item_id)
        assert show_spent(project, item_id) == {"tokens": tokens, "usd": usd_value(usd)}, item_id


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_with_a_call_in_flight_says_one_line_exits_130_and_the_run_resumes(
        tmp_path: Path, signum: int) -> None:
    with ScriptedServer() as server:
        hold = Hold(server, 60)  # longer than the drain: the reply does not arrive in time
        project = new_project(tmp_path / "p", server.base_url, config=SLOW_CONFIG)
        proc = start(project.root, "run", "--ci", log=tmp_path / "run.log")
        try:
            wait_for(hold.arrived, proc)
            proc.send_signal(signum)
            sent = time.monotonic()
            code = proc.wait(timeout=60)
            seconds = time.monotonic() - sent
        finally:
            kill_group(proc)
        frozen = dict(query(project, "SELECT item_id, status FROM item_state"))
        held = query(project, "SELECT id, item_id, role, reserved_tokens, input_tokens + output_tokens "
                              "FROM model_calls WHERE outcome = 'reserved'")
        reserved = dict(query(project, "SELECT scope, reserved_tokens FROM budgets"))
        resumed = cli(project.root, "run", "--ci", "--json", timeout=180)

    errors = (tmp_path / "run.log.err").read_text()
    lines = [line for line in errors.splitlines() if not line.startswith(tuple(f"{i}:" for i in ITEM_IDS))]
    assert code == 130, errors
    assert seconds < INTERRUPT_DRAIN_SECONDS + 10, f"took {seconds:.1f} s to leave"
    assert lines == [f"interrupted: {len(ITEM_IDS)} items will resume with `agentsprint run`"], errors
    assert set(frozen.values()) <= {"stopped", "todo"} and "stopped" in frozen.values(), frozen
    assert [row[2] for row in held] == ["coder"], f"only the held call is left in flight: {held}"
    call_id, item_id, _, reserved_tokens, row_tokens = held[0]
    assert reserved_tokens == row_tokens == reserved[f"item:{item_id}"] > 0, "still charged at its reservation"
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads(resumed.stdout)["results"] == dict.fromkeys(ITEM_IDS, "awaiting_review")
    assert dict(query(project, "SELECT item_id, attempt FROM item_state")) == dict.fromkeys(ITEM_IDS, 1), \
        "an interrupted item is resumed, not started again"
    assert query(project, "SELECT outcome FROM model_calls WHERE id = ?", call_id) == [("interrupted",)]
    tokens, usd = charged(project, item_id)
    assert show_spent(project, item_id) == {"tokens": tokens, "usd": usd_value(usd)}


def test_an_interrupt_whose_reply_arrives_in_the_drain_is_charged_its_reported_usage(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        hold = Hold(server, INTERRUPT_DRAIN_SECONDS / 3)
        project = new_project(tmp_path / "p", server.base_url, config=SLOW_CONFIG)
        proc = start(project.root, "run", "--ci", log=tmp_path / "run.log")
        try:
            wait_for(hold.arrived, proc)
            call_id = query(project, "SELECT max(id) FROM model_calls WHERE role = 'coder'")[0][0]
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
        finally:
            kill_group(proc)
        answered_before = requests_answered(server)
        settled = query(project, "SELECT outcome, input_tokens, output_tokens, usd, error FROM model_calls "
                                 "WHERE id = ?", call_id)[0]
        resumed = cli(project.root, "run", "--ci", "--json", timeout=180)
        answered = requests_answered(server)
        ok_calls = query(project, "SELECT count(*) FROM model_calls WHERE outcome = 'ok'")[0][0]

    assert code == 130, (tmp_path / "run.log.err").read_text()
    outcome, input_tokens, output_tokens, usd, error = settled
    assert outcome == "ok" and error is None, settled
    assert input_tokens > 0 and output_tokens > 0 and usd > 0, "the provider's reported usage, not 0 and $0"
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert 0 < answered_before < answered and answered == ok_calls, "no answered call was made again"
