"""A model call under one idempotency key is settled `ok` at most once: the database enforces it.

Two executions of one durable step (what two `agentsprint run` at once did) both reach the provider;
the second settlement breaks the unique index of migration 004 and becomes `duplicate`, its spend
kept, and the step gets the first reply. A database that already holds such pairs is repaired by the
migration without losing their spend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import settings_for
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from agentsprint.llm.context import CallContext
from agentsprint.llm.gateway import Gateway, Reply
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.store import Store
from agentsprint.store.engine import ONE_OK_CALL_INDEX
from agentsprint.store.ledger import CallRecord, model_calls, record_call

ASK = [{"role": "user", "content": "Fix the bug."}]
CODER = CallContext(role="coder", item_id="AS-1", run_id="r1", round=1, scopes=["item:AS-1"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'agentsprint.db'}")
    yield opened
    opened.close()


def test_two_executions_of_one_step_settle_one_ok_and_keep_both_spends(scripted_server: ScriptedServer,
                                                                       store: Store) -> None:
    answers = iter(["first", "second"])
    scripted_server.add("coder-model", responder=lambda body: ScriptedReply(
        tool_calls=[tool_call("finish", summary=next(answers))], latency=0.5))
    gateway = Gateway(settings_for(scripted_server), store, backoff=0.0)
    gateway.ensure_budget("item:AS-1", tokens=100_000, usd=1.0)
    replies: list[Reply] = []

    def execute_step() -> None:
        replies.append(gateway.complete(CODER, ASK, idempotency_key="AS-1:1:7"))

    threads = [threading.Thread(target=execute_step) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)  # both pass the replay check before either reply arrives
    for thread in threads:
        thread.join(timeout=30)

    assert len(scripted_server.requests["coder-model"]) == 2, "both executions reached the provider"
    rows = model_calls(store)
    assert sorted(row["outcome"] for row in rows) == ["duplicate", "ok"], rows
    [ok] = [row for row in rows if row["outcome"] == "ok"]
    assert [r.call_id for r in replies] == [ok["id"], ok["id"]], "both executions go on with the one ok reply"
    assert replies[0].tool_calls == replies[1].tool_calls
    spend = gateway.spend("item:AS-1")
    assert spend.reserved_tokens == 0
    assert spend.spent_tokens == sum(row["input_tokens"] + row["output_tokens"] for row in rows), \
        "the duplicate was paid for: its spend stays"


def row(store: Store, outcome: str, usd: float = 0.0) -> None:
    record_call(store, CallRecord(idempotency_key="k:1", outcome=outcome, usd=usd, started_at=0.0), {})


def test_the_database_refuses_a_second_ok_row_under_one_key(store: Store) -> None:
    row(store, "ok")
    row(store, "interrupted")  # other outcomes may repeat a key
    with pytest.raises(IntegrityError):
        row(store, "ok")


def test_the_migration_keeps_the_first_ok_of_a_pair_and_the_spend_of_both(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store(url)
    with old.session() as session:
        conn = session.connection()
        conn.execute(text(f"DROP INDEX {ONE_OK_CALL_INDEX}"))
        conn.execute(text("DELETE FROM schema_migrations WHERE name = '004_one_ok_call_per_key'"))
    for usd in (0.25, 0.5):  # what two runs at once left
        row(old, "ok", usd)
    old.close()

    reopened = Store(url)
    try:
        with reopened.session() as session:
            rows = session.connection().execute(text("SELECT outcome, usd FROM model_calls ORDER BY id")).all()
    finally:
        reopened.close()
    assert [tuple(row) for row in rows] == [("ok", 0.25), ("duplicate", 0.5)]
