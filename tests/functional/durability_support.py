"""Helpers for the durability tests: a four-item sprint, `agentsprint` subprocesses, end-state snapshots."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner_support import TEST_CONFIG, item, query

from agentsprint.config import Settings, load_settings
from agentsprint.domain import Item
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner.demo import create_sample
from agentsprint.runner.demo_script import CODER, EXPORT, PLANS, ScriptBook
from agentsprint.store import Store
from agentsprint.store.events import verify_chain
from agentsprint.workspace import Workspace

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
ITEM_IDS = ["AS-1", "AS-2", "AS-3", "AS-4"]
END_STATES = ("done", "awaiting_review", "escalated", "failed", "dropped")
HUMAN = ["secrets", {"review": "human"}]
NOTES_V1 = "NOTES = []\n"

Responder = Callable[[dict[str, Any]], ScriptedReply]


def sprint_book() -> ScriptBook:
    """Scripts of the four items: AS-2 is rejected by QA in round 1 and approved in round 2."""
    coder = {
        ("AS-1", 1): CODER[("AS-1", 1)],
        ("AS-2", 1): CODER[("AS-2", 1)],
        ("AS-2", 2): CODER[("AS-2", 2)],
        ("AS-3", 1): [tool_call("list_files", path="shop"),
                      tool_call("write_file", path="shop/export.py", content=EXPORT),
                      tool_call("finish", summary="Added shop/export.py.")],
        ("AS-4", 1): [tool_call("read_file", path="shop/report.py"),
                      tool_call("write_file", path="shop/notes.py", content=NOTES_V1),
                      tool_call("edit_file", path="shop/notes.py", old="NOTES = []", new="NOTES = ['paged']"),
                      tool_call("finish", summary="Added shop/notes.py.")],
    }
    reject = tool_call("submit_verdict", verdict="reject", reasons=["percent is not range-checked"])
    verdicts: dict[tuple[str, int], Any] = {("AS-2", 1): reject}
    return ScriptBook({item_id: PLANS["AS-1"] for item_id in ITEM_IDS}, coder, verdicts)


def sprint_items() -> list[Item]:
    """Four items with `review: human` (they end awaiting_review: nothing merges) and disjoint scopes."""
    return [
        item("AS-1", dod=[{"tests": "python -m unittest -q tests.test_pagination"}, *HUMAN],
             scope=["shop/pagination.py"]),
        item("AS-2", dod=HUMAN, scope=["shop/pricing.py"]),
        item("AS-3", dod=HUMAN, scope=["shop/export.py"]),
        item("AS-4", dod=HUMAN, scope=["shop/notes.py"]),
    ]


def slow(responder: Responder, low: float, high: float) -> Responder:
    """`responder` with a latency between `low` and `high` seconds, chosen from the request (stateless)."""

    def answer(body: dict[str, Any]) -> ScriptedReply:
        spread = (len(body.get("messages", [])) % 3) / 2
        return responder(body).model_copy(update={"latency": low + (high - low) * spread})

    return answer


@dataclass
class RequestClock:
    """Arrival times of the model requests the server answers (to measure a run's start-up)."""

    times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, responder: Responder) -> Responder:
        def answer(body: dict[str, Any]) -> ScriptedReply:
            with self.lock:
                self.times.append(time.monotonic())
            return responder(body)

        return answer

    def first_after(self, moment: float) -> float | None:
        with self.lock:
            return next((t for t in self.times if t >= moment), None)

    def arrivals_after(self, moment: float) -> list[float]:
        with self.lock:
            return [t for t in self.times if t >= moment]

    def count_after(self, moment: float) -> int:
        return len(self.arrivals_after(moment))


def serve_book(server: ScriptedServer, book: ScriptBook, low: float, high: float,
               clock: RequestClock | None = None) -> None:
    """Answer the t-* models from `book` with slow replies."""
    for model, responder in book.responders("t").items():
        answer = slow(responder, low, high)
        server.add(model, responder=clock.wrap(answer) if clock else answer)


def new_project(root: Path, base_url: str, items: list[Item] | None = None, config: str = TEST_CONFIG) -> Settings:
    """The sample repository with the sprint's items, its models pointing at `base_url`."""
    create_sample(root, base_url, sprint_items() if items is None else items, config=config)
    return load_settings(root, environ={})


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}


def start(cwd: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `agentsprint ARGS` in its own session (so the whole group can be killed).

    Its stdout goes to `log`, its stderr to `log` with `.err` appended.
    """
    with log.open("ab") as out, Path(f"{log}.err").open("ab") as err:
        return subprocess.Popen([AGENTSPRINT, *args], cwd=cwd, stdout=out, stderr=err, env=cli_env(),
                                start_new_session=True)


def cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `agentsprint ARGS` to completion (TimeoutExpired after `timeout` seconds)."""
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=cli_env())


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's group (what is left of it), then reap the process."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@dataclass
class Snapshot:
    """What a finished sprint left behind, for comparing two projects."""

    statuses: dict[str, str]
    attempts: dict[str, int]
    end_states: dict[str, set[str]]
    ok_calls: int
    calls_by_item: dict[str, int]
    diffs: dict[str, str]
    committed: dict[str, str]
    files: dict[str, dict[str, str]]
    rounds: dict[str, list[str]]
    over_budget: list[tuple[Any, ...]]
    chain: tuple[int, int | None, str | None]


def snapshot(settings: Settings) -> Snapshot:
    """Statuses, completed calls, diffs and file contents per item, budget breaches and the chain check."""
    ws = Workspace(settings.root, settings.worktrees_dir, settings.run.base_branch)
    ends: dict[str, set[str]] = {}
    for item_id, status in query(settings, "SELECT item_id, to_status FROM item_transitions"):
        if status in END_STATES:
            ends.setdefault(item_id, set()).add(status)
    rounds: dict[str, list[str]] = {}
    for item_id, verdict in query(settings, "SELECT item_id, json_extract(data_json, '$.verdict') FROM events "
                                            "WHERE kind = 'round' ORDER BY id"):
        rounds.setdefault(item_id, []).append(verdict)
    store = Store(settings.database_url)
    try:
        with store.session() as session:
            chain = verify_chain(session)
    finally:
        store.close()
    return Snapshot(
        statuses=dict(query(settings, "SELECT item_id, status FROM item_state")),
        attempts=dict(query(settings, "SELECT item_id, attempt FROM item_state")),
        end_states=ends,
        ok_calls=query(settings, "SELECT count(*) FROM model_calls WHERE outcome = 'ok'")[0][0],
        calls_by_item=dict(query(settings, "SELECT item_id, count(*) FROM model_calls WHERE outcome = 'ok' "
                                           "GROUP BY item_id")),
        diffs={i: ws.diff(i) for i in ITEM_IDS},
        committed={i: ws.git_out(settings.root, "diff", f"main...agentsprint/{i}") for i in ITEM_IDS},
        files={i: _files(settings.worktrees_dir / i, ws.changed_files(i)) for i in ITEM_IDS},
        rounds=rounds,
        over_budget=query(settings, "SELECT scope, limit_tokens, spent_tokens, reserved_tokens, limit_usd, "
                                    "spent_usd, reserved_usd FROM budgets WHERE "
                                    "spent_tokens + reserved_tokens > limit_tokens OR "
                                    "spent_usd + reserved_usd > limit_usd + 1e-9"),
        chain=chain,
    )


def _files(worktree: Path, paths: list[str]) -> dict[str, str]:
    return {p: (worktree / p).read_text(encoding="utf-8") for p in paths if (worktree / p).is_file()}
