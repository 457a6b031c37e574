"""The gateway against the scripted server over real HTTP, through litellm (nothing mocked)."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_url, settings_for
from sqlmodel import col, select

from agentsprint.config import ConfigError
from agentsprint.llm.context import CallContext
from agentsprint.llm.errors import BudgetExhausted, PriceUnknown, ProviderError
from agentsprint.llm.gateway import Gateway
from agentsprint.llm.ledger import Ledger
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.llm.tokens import count_prompt_tokens
from agentsprint.store import Store
from agentsprint.store import ledger as store_ledger
from agentsprint.store.ledger import model_calls
from agentsprint.store.tables import EventRow

FINISH = {"type": "function", "function": {"name": "finish", "description": "Finish the task.",
                                           "parameters": {"type": "object",
                                                          "properties": {"summary": {"type": "string"}},
                                                          "required": ["summary"]}}}
ASK = [{"role": "system", "content": "You are a coding agent."}, {"role": "user", "content": "Fix the bug."}]
CODER = CallContext(role="coder", item_id="AS-1", run_id="r1", round=1, scopes=["item:AS-1", "sprint:S1"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'agentsprint.db'}")
    yield opened
    opened.close()


def make_gateway(server: ScriptedServer, store: Store, **overrides: Any) -> Gateway:
    return Gateway(settings_for(server, **overrides), store, backoff=0.0)


def prompt_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    return count_prompt_tokens(messages, tools)


def events(store: Store, kind: str = "model.call") -> list[dict[str, Any]]:
    with store.session() as session:
        rows = session.exec(select(EventRow).where(EventRow.kind == kind).order_by(col(EventRow.id))).all()
        return [json.loads(row.data_json) for row in rows]


def test_tool_call_round_trip(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(tool_calls=[tool_call("finish", summary="fixed")]))
    gateway = make_gateway(scripted_server, store)
    reply = gateway.complete(CODER, ASK, tools=[FINISH])
    [call] = reply.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("finish", {"summary": "fixed"})
    assert reply.finish_reason == "tool_calls"
    message = reply.to_message()
    assert message["role"] == "assistant"
    assert message["tool_calls"][0]["function"] == {"name": "finish", "arguments": call.arguments}
    sent = scripted_server.requests["coder-model"][0]
    assert sent["tools"] == [FINISH] and sent["messages"] == ASK
    [row] = model_calls(store)
    assert (row["outcome"], row["item_id"], row["role"], row["round"]) == ("ok", "AS-1", "coder", 1)
    attributes = json.loads(row["attributes_json"])
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.request.model"] == "openai/coder-model"
    assert attributes["gen_ai.response.model"] == "coder-model"
    assert attributes["gen_ai.request.max_tokens"] == 1024
    assert attributes["gen_ai.usage.input_tokens"] == reply.input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == reply.output_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    [event] = events(store)
    assert event["call_id"] == reply.call_id == row["id"] and event["outcome"] == "ok"
    assert "messages" not in event


def test_usage_is_settled_from_the_provider(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="All done, tests pass.", cached_tokens=7))
    gateway = make_gateway(scripted_server, store)
    gateway.ensure_budget("item:AS-1", tokens=10_000, usd=1.0)
    reply = gateway.complete(CODER, ASK)
    assert reply.input_tokens == prompt_tokens(ASK)
    assert reply.cached_input_tokens == 7
    assert reply.output_tokens > 0
    assert reply.usd == pytest.approx(reply.input_tokens * 1e-6 + reply.output_tokens * 4e-6)
    for scope in CODER.scopes:
        spend = gateway.spend(scope)
        assert spend.spent_tokens == reply.input_tokens + reply.output_tokens
        assert spend.spent_usd == pytest.approx(reply.usd)
        assert (spend.reserved_tokens, spend.reserved_usd) == (0, 0.0)
    [row] = model_calls(store)
    assert row["estimated_input_tokens"] == reply.input_tokens  # the estimate is exact for the scripted server
    assert (row["input_tokens"], row["cached_input_tokens"], row["output_tokens"]) == (
        reply.input_tokens, 7, reply.output_tokens)
    assert row["reserved_tokens"] == reply.input_tokens + 1024
    assert row["latency_ms"] is not None and row["finished_at"] >= row["started_at"]


def test_max_tokens_shrinks_to_what_is_left(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="word " * 2000))
    gateway = make_gateway(scripted_server, store)
    gateway.ensure_budget("item:AS-1", tokens=prompt_tokens(ASK) + 300)
    reply = gateway.complete(CODER, ASK)
    assert scripted_server.requests["coder-model"][0]["max_tokens"] == 300
    assert (reply.max_tokens, reply.output_tokens, reply.finish_reason) == (300, 300, "length")
    spend = gateway.spend("item:AS-1")
    assert spend.spent_tokens == spend.limit_tokens
    row = model_calls(store)[0]
    assert (row["requested_max_tokens"], row["granted_max_tokens"]) == (1024, 300)


def test_max_tokens_shrinks_to_the_usd_left(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="word " * 2000))
    gateway = make_gateway(scripted_server, store)
    usd = prompt_tokens(ASK) * 1e-6 + 400 * 4e-6
    gateway.ensure_budget("sprint:S1", usd=usd)
    reply = gateway.complete(CODER, ASK)
    assert scripted_server.requests["coder-model"][0]["max_tokens"] in (399, 400)  # float rounding may cost one
    assert gateway.spend("sprint:S1").spent_usd <= usd
    assert reply.usd <= usd


def test_refusal_makes_no_call(scripted_server: ScriptedServer, store: Store) -> None:
    gateway = make_gateway(scripted_server, store, run={"min_reply_tokens": 256})
    gateway.ensure_budget("item:AS-1", tokens=prompt_tokens(ASK) + 255, usd=5.0)
    with pytest.raises(BudgetExhausted) as refused:
        gateway.complete(CODER, ASK)
    assert refused.value.scope == "item:AS-1"
    assert refused.value.remaining_tokens == prompt_tokens(ASK) + 255
    assert refused.value.needed_tokens == prompt_tokens(ASK) + 256
    assert "budget item:AS-1 exhausted" in str(refused.value)
    assert scripted_server.requests == {}
    [row] = model_calls(store)
    assert row["outcome"] == "refused" and row["granted_max_tokens"] == 0
    spend = gateway.spend("item:AS-1")
    assert (spend.spent_tokens, spend.reserved_tokens) == (0, 0)
    assert events(store)[0]["outcome"] == "refused"


def test_unknown_price_with_a_usd_budget_fails_before_any_call(scripted_server: ScriptedServer,
                                                               store: Store) -> None:
    unpriced = {"input_cost_per_token": None, "output_cost_per_token": None}
    gateway = make_gateway(scripted_server, store, models={"coder": unpriced})
    with pytest.raises(PriceUnknown) as at_check:
        gateway.check_prices(["coder"])
    assert isinstance(at_check.value, ConfigError)
    assert "coder: openai/coder-model" in str(at_check.value)
    gateway.check_prices(["coder"], usd_budgets=False)
    gateway.ensure_budget("item:AS-1", tokens=100_000, usd=1.0)
    with pytest.raises(PriceUnknown):
        gateway.complete(CODER, ASK)
    assert scripted_server.requests == {}
    assert model_calls(store) == []


def test_unknown_price_with_token_budgets_only_is_recorded_as_unknown(scripted_server: ScriptedServer,
                                                                       store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="ok"))
    unpriced = {"input_cost_per_token": None, "output_cost_per_token": None}
    gateway = make_gateway(scripted_server, store, models={"coder": unpriced})
    gateway.ensure_budget("item:AS-1", tokens=100_000)
    reply = gateway.complete(CODER, ASK)
    assert reply.usd == 0.0
    assert json.loads(model_calls(store)[0]["attributes_json"])["agentsprint.price"] == "unknown"


def test_rate_limit_then_success_is_retried_and_counted(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(status=429), ScriptedReply(content="ok"))
    gateway = make_gateway(scripted_server, store)
    reply = gateway.complete(CODER, ASK)
    assert (reply.content, reply.retries) == ("ok", 1)
    assert len(scripted_server.requests["coder-model"]) == 2
    [row] = model_calls(store)
    assert (row["outcome"], row["retries"]) == ("ok", 1)
    assert gateway.spend("item:AS-1").spent_tokens == reply.input_tokens + reply.output_tokens


def test_server_errors_until_retries_run_out(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", *[ScriptedReply(status=500)] * 3)
    gateway = make_gateway(scripted_server, store, run={"num_retries": 2})
    with pytest.raises(ProviderError) as failed:
        gateway.complete(CODER, ASK)
    assert (failed.value.kind, failed.value.retries) == ("server", 2)
    assert "litellm" not in type(failed.value).__module__
    assert len(scripted_server.requests["coder-model"]) == 3
    [row] = model_calls(store)
    assert (row["outcome"], row["retries"], row["usd"]) == ("error", 2, 0.0)
    spend = gateway.spend("item:AS-1")
    assert (spend.spent_tokens, spend.reserved_tokens) == (0, 0)


def test_hang_past_the_timeout_is_a_timeout_charged_at_its_reservation(scripted_server: ScriptedServer,
                                                                       store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="late", hang=10))
    gateway = make_gateway(scripted_server, store, run={"call_timeout": "0.5s", "num_retries": 0})
    with pytest.raises(ProviderError) as failed:
        gateway.complete(CODER, ASK)
    assert failed.value.kind == "timeout"
    [row] = model_calls(store)
    assert row["outcome"] == "error" and "charged at its reservation" in row["error"]
    assert gateway.spend("item:AS-1").spent_tokens == row["reserved_tokens"] == prompt_tokens(ASK) + 1024


def test_timeout_then_success_takes_a_new_reservation(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(hang=10), ScriptedReply(content="ok"))
    gateway = make_gateway(scripted_server, store, run={"call_timeout": "0.5s", "num_retries": 1})
    reply = gateway.complete(CODER, ASK)
    assert (reply.content, reply.retries) == ("ok", 1)
    timed_out, succeeded = model_calls(store)
    assert (timed_out["outcome"], succeeded["outcome"]) == ("error", "ok")
    expected = timed_out["reserved_tokens"] + reply.input_tokens + reply.output_tokens
    assert gateway.spend("item:AS-1").spent_tokens == expected


def test_fallback_model_after_retries(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", *[ScriptedReply(status=503)] * 2)
    scripted_server.add("backup-model", ScriptedReply(content="from the backup"))
    gateway = make_gateway(scripted_server, store, run={"num_retries": 1},
                           models={"coder": {"fallbacks": ["openai/backup-model"]}})
    reply = gateway.complete(CODER, ASK)
    assert (reply.content, reply.model) == ("from the backup", "backup-model")
    assert [row["outcome"] for row in model_calls(store)] == ["error", "ok"]


def test_secrets_are_redacted_in_what_is_stored(scripted_server: ScriptedServer, store: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-live-4f9b2c7d1e")
    openai_like = "sk-proj-" + "A1b2C3d4" * 4
    scripted_server.add("coder-model", ScriptedReply(content="Found acme-live-4f9b2c7d1e in .env"))
    gateway = make_gateway(scripted_server, store, models={"coder": {"api_key_env": "ACME_API_KEY"}})
    messages = [{"role": "user", "content": f"Use key acme-live-4f9b2c7d1e and {openai_like} please."}]
    reply = gateway.complete(CODER, messages)
    assert reply.content == "Found acme-live-4f9b2c7d1e in .env"  # the caller gets the reply as sent
    [row] = model_calls(store)
    stored = row["request_json"] + row["response_json"] + json.dumps(events(store))
    assert "acme-live-4f9b2c7d1e" not in stored and openai_like not in stored
    assert "[REDACTED]" in row["request_json"] and "[REDACTED]" in row["response_json"]


def test_missing_key_names_the_variable(scripted_server: ScriptedServer, store: Store) -> None:
    gateway = make_gateway(scripted_server, store, models={"coder": {"api_key_env": "NOT_SET_ANYWHERE_KEY"}})
    with pytest.raises(ProviderError, match="NOT_SET_ANYWHERE_KEY") as failed:
        gateway.complete(CODER, ASK)
    assert failed.value.kind == "auth"
    assert scripted_server.requests == {}


def test_unreachable_base_is_a_connection_error(store: Store, scripted_server: ScriptedServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = make_gateway(scripted_server, store, run={"num_retries": 1},
                           models={"coder": {"api_base": f"http://127.0.0.1:{port}/v1"}})
    with pytest.raises(ProviderError) as failed:
        gateway.complete(CODER, ASK)
    assert (failed.value.kind, failed.value.retries) == ("connection", 1)
    assert gateway.spend("item:AS-1").spent_tokens == 0


def test_malformed_arguments_pass_through_raw(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(tool_calls=[tool_call("finish", summary="x")],
                                                     malformed_json=True))
    reply = make_gateway(scripted_server, store).complete(CODER, ASK, tools=[FINISH])
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.tool_calls[0].arguments)


def test_more_tokens_than_asked_are_settled_as_reported(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="short", completion_tokens=5_000))
    gateway = make_gateway(scripted_server, store)
    limit = prompt_tokens(ASK) + 1024
    gateway.ensure_budget("item:AS-1", tokens=limit)
    reply = gateway.complete(CODER, ASK)
    assert reply.output_tokens == 5_000
    spend = gateway.spend("item:AS-1")
    assert spend.spent_tokens == reply.input_tokens + 5_000 > limit
    attributes = json.loads(model_calls(store)[0]["attributes_json"])
    assert attributes["agentsprint.overshoot_tokens"] == 5_000 - 1024
    assert events(store)[0]["overshoot_tokens"] == 5_000 - 1024
    with pytest.raises(BudgetExhausted):
        gateway.complete(CODER, ASK)


def test_idempotency_key_replays_the_settled_reply(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(tool_calls=[tool_call("finish", summary="once")]))
    gateway = make_gateway(scripted_server, store)
    first = gateway.complete(CODER, ASK, tools=[FINISH], idempotency_key="wf-1:3")
    again = gateway.complete(CODER, ASK, tools=[FINISH], idempotency_key="wf-1:3")
    assert again == first
    assert len(scripted_server.requests["coder-model"]) == 1
    assert len(model_calls(store)) == 1


def test_add_budget_raises_limits_and_open_budget_keeps_them(scripted_server: ScriptedServer,
                                                            store: Store) -> None:
    gateway = make_gateway(scripted_server, store)
    gateway.open_budget("item:AS-1", tokens=1_000, usd=1.0)
    gateway.open_budget("item:AS-1", tokens=5, usd=None)
    gateway.add_budget("item:AS-1", tokens=500, usd=0.5)
    gateway.add_budget("sprint:new", tokens=100)
    spend = gateway.spend("item:AS-1")
    assert (spend.limit_tokens, spend.limit_usd) == (1_500, 1.5)
    assert (gateway.spend("sprint:new").limit_tokens, gateway.spend("sprint:new").limit_usd) == (100, None)
    gateway.ensure_budget("item:AS-1", tokens=None, usd=2.0)
    assert (gateway.spend("item:AS-1").limit_tokens, gateway.spend("item:AS-1").limit_usd) == (None, 2.0)


def test_concurrent_threads_never_overspend_one_budget(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("*", responder=lambda body: ScriptedReply(content="token " * 3_000))
    gateway = make_gateway(scripted_server, store, run={"min_reply_tokens": 32},
                           models={"coder": {"max_tokens": 400}})
    limit = 25_000
    gateway.ensure_budget("item:AS-1", tokens=limit, usd=1.0)
    refused: list[BudgetExhausted] = []

    def worker() -> None:
        while True:
            try:
                gateway.complete(CODER, ASK)
            except BudgetExhausted as exc:
                refused.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    spend = gateway.spend("item:AS-1")
    assert len(refused) == 8
    assert spend.spent_tokens <= limit and spend.spent_usd <= 1.0
    assert (spend.reserved_tokens, round(spend.reserved_usd, 12)) == (0, 0.0)
    assert spend.spent_tokens > limit - (prompt_tokens(ASK) + 32)  # the budget was used, not refused early
    rows = [row for row in model_calls(store) if row["outcome"] == "ok"]
    assert sum(row["input_tokens"] + row["output_tokens"] for row in rows) == spend.spent_tokens


WORDS = ("def", "return", "self", "import", "pytest", "budget", "token", "naïve", "Straße", "日本語", "{", "}",
         "=>", "0x1F", "ok", "the", "a", "fix", "pagination", "off-by-one", "\n", "    ", "émoji 🎉")


def _text(rng: random.Random, most: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, most)))


def _prompt(rng: random.Random) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": _text(rng, 40)}]
    for turn in range(rng.randint(1, 5)):
        role = "user" if turn % 2 == 0 else "assistant"
        messages.append({"role": role, "content": _text(rng, 150)})
    return messages


def _random_reply(rng: random.Random) -> ScriptedReply:
    if rng.random() < 0.3:
        return ScriptedReply(tool_calls=[tool_call("write_file", path="a.py", content=_text(rng, 500))])
    return ScriptedReply(content=_text(rng, 800) or "ok")


def test_randomized_calls_never_overspend_any_budget(scripted_server: ScriptedServer, store: Store) -> None:
    """1,000 calls with random prompts, max_tokens and budgets: recorded spend never exceeds a budget."""
    rng, server_rng = random.Random(20261121), random.Random(7)
    scripted_server.add("*", responder=lambda body: _random_reply(server_rng))
    gateway = make_gateway(scripted_server, store, run={"min_reply_tokens": 16})
    gateway.ensure_budget("sprint:R", tokens=200_000, usd=0.4)
    gateway.ensure_budget("epic:E", tokens=None, usd=0.3)
    item, outcomes = None, {"ok": 0, "shrunk": 0, "refused": 0, "topped_up": 0}
    for _ in range(1_000):
        if item is None:
            item = f"item:R{sum(outcomes.values())}"
            gateway.ensure_budget(item, tokens=rng.choice([None, rng.randint(50, 12_000)]),
                                  usd=rng.choice([None, round(rng.uniform(0.0002, 0.02), 6)]))
        ctx = CallContext(role="coder", item_id=item, scopes=[item, "sprint:R", "epic:E"],
                          max_tokens=rng.randint(1, 1_500))
        try:
            reply = gateway.complete(ctx, _prompt(rng))
        except BudgetExhausted as refused:
            outcomes["refused"] += 1
            if refused.scope == item:
                item = None
            else:
                gateway.add_budget(refused.scope, tokens=100_000, usd=0.2)
                outcomes["topped_up"] += 1
            continue
        outcomes["shrunk" if reply.max_tokens < (ctx.max_tokens or 0) else "ok"] += 1
    rows = model_calls(store)
    scopes = {scope for row in rows for scope in json.loads(row["scopes_json"])}
    for scope in scopes:
        spend = gateway.spend(scope)
        assert spend.reserved_tokens == 0 and abs(spend.reserved_usd) < 1e-9, scope
        assert spend.limit_tokens is None or spend.spent_tokens <= spend.limit_tokens, (scope, spend)
        assert spend.limit_usd is None or spend.spent_usd <= spend.limit_usd + 1e-9, (scope, spend)
        charged = [r for r in rows if scope in json.loads(r["scopes_json"]) and r["outcome"] == "ok"]
        assert sum(r["input_tokens"] + r["output_tokens"] for r in charged) == spend.spent_tokens
    assert all(json.loads(r["attributes_json"]).get("agentsprint.overshoot_tokens", 0) == 0 for r in rows)
    assert min(outcomes.values()) >= 10, outcomes  # every path was exercised: fit, shrink, refuse, top-up




def _open(backend: str, tmp_path: Path) -> Store:
    if backend == "postgres":
        return Store(postgres_url())
    return Store(f"sqlite:///{tmp_path / 'race.db'}")


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reservation_race_is_atomic_across_scopes(backend: str, tmp_path: Path) -> None:
    """8 threads reserve until refused: exactly what fits is granted, and a refusal rolls back every scope."""
    store = _open(backend, tmp_path)
    ledger, run = Ledger(store), uuid.uuid4().hex[:8]
    first, second = f"a-sprint:{run}", f"b-item:{run}"  # the binding scope is updated second
    store_ledger.ensure_budget(store, first, tokens=None, usd=6.25)
    store_ledger.ensure_budget(store, second, tokens=7 * 40 + 3, usd=None)
    granted: list[int] = []

    def worker() -> None:
        while (reservation := ledger.reserve([first, second], 7, 0.125)) is not None:
            granted.append(reservation.call_id)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    states = store_ledger.budgets(store, [first, second])
    assert len(granted) == len(set(granted)) == 40
    assert (states[second].reserved_tokens, states[first].reserved_usd) == (280, 5.0)
    store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gateway_threads_share_one_budget(backend: str, tmp_path: Path, scripted_server: ScriptedServer) -> None:
    """The 8-thread race through the whole gateway, on SQLite and on PostgreSQL."""
    store = _open(backend, tmp_path)
    scripted_server.add("*", responder=lambda body: ScriptedReply(content="token " * 1_000))
    gateway = make_gateway(scripted_server, store, run={"min_reply_tokens": 32}, models={"coder": {"max_tokens": 300}})
    scope = f"item:T-{uuid.uuid4().hex[:8]}"
    gateway.ensure_budget(scope, tokens=12_000, usd=0.03)
    ctx = CallContext(role="coder", item_id=scope, scopes=[scope])

    def worker() -> None:
        with contextlib.suppress(BudgetExhausted):
            while True:
                gateway.complete(ctx, ASK)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    spend = gateway.spend(scope)
    assert spend.spent_tokens <= 12_000 and spend.spent_usd <= 0.03 + 1e-12
    assert spend.reserved_tokens == 0
    assert spend.spent_usd > 0.03 - (21 * 1e-6 + 32 * 4e-6)  # refused only when even a minimal reply no longer fit
    store.close()


CRASHING_CALL = """
import sys
from agentsprint.config import Settings, offline_env
offline_env()
from agentsprint.llm.context import CallContext
from agentsprint.llm.gateway import Gateway
from agentsprint.store import Store
settings = Settings.model_validate_json(sys.argv[2])
ctx = CallContext(role="coder", item_id="AS-1", scopes=["item:AS-1"])
Gateway(settings, Store(sys.argv[1])).complete(ctx, [{"role": "user", "content": "Fix the bug."}])
"""


def test_call_in_flight_when_the_process_dies_stays_charged(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="never delivered", hang=60))
    settings = settings_for(scripted_server)
    gateway = Gateway(settings, store)
    gateway.ensure_budget("item:AS-1", tokens=5_000, usd=1.0)
    config = settings.model_dump_json(by_alias=True)  # `import` is an alias: the name alone does not load back
    process = subprocess.Popen([sys.executable, "-c", CRASHING_CALL, store.url, config])
    try:
        deadline = time.monotonic() + 60
        while not scripted_server.requests.get("coder-model") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scripted_server.requests["coder-model"], "the call never reached the server"
    finally:
        process.kill()
        process.wait(timeout=10)
    [row] = model_calls(store)
    assert row["outcome"] == "reserved" and row["finished_at"] is None
    spend = gateway.spend("item:AS-1")
    assert spend.reserved_tokens == row["reserved_tokens"] == prompt_tokens(
        [{"role": "user", "content": "Fix the bug."}]) + 1024
    assert spend.reserved_usd == pytest.approx(row["reserved_usd"])
    left = 5_000 - spend.reserved_tokens
    scripted_server.add("coder-model", ScriptedReply(content="word " * 5_000))
    reply = gateway.complete(CODER.model_copy(update={"scopes": ["item:AS-1"]}), ASK)
    assert reply.max_tokens == min(1024, left - prompt_tokens(ASK))  # the dead call is still charged


def test_backoff_waits_before_a_retry(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(status=503), ScriptedReply(status=429),
                        ScriptedReply(content="ok"))
    gateway = Gateway(settings_for(scripted_server), store, backoff=0.1)
    started = time.perf_counter()
    reply = gateway.complete(CODER, ASK)
    assert reply.retries == 2
    assert time.perf_counter() - started >= 0.05 + 0.1  # jittered 0.1 s, then 0.2 s (each at least half)


def test_missing_usage_is_charged_at_the_reservation(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="no usage here", omit_usage=True))
    gateway = make_gateway(scripted_server, store)
    reply = gateway.complete(CODER, ASK)
    assert (reply.input_tokens, reply.output_tokens) == (prompt_tokens(ASK), 1024)
    [row] = model_calls(store)
    assert gateway.spend("item:AS-1").spent_tokens == row["reserved_tokens"]
    assert reply.usd == pytest.approx(row["reserved_usd"])
    assert json.loads(row["attributes_json"])["agentsprint.usage"] == "missing: charged at reservation"


@pytest.mark.parametrize(("fault", "expected"), [
    ({"completion_tokens": -1_000_000}, "negative output tokens"),
    ({"prompt_tokens": -500}, "negative input tokens"),
    ({"completion_tokens": 50_000}, "above the granted max_tokens"),
    ({"prompt_tokens": 400_000}, "far above the estimate"),
])
def test_implausible_usage_is_charged_at_least_the_reservation_and_recorded(
        scripted_server: ScriptedServer, store: Store, caplog: pytest.LogCaptureFixture, fault: dict[str, Any],
        expected: str) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="fine", **fault))
    gateway = make_gateway(scripted_server, store)
    gateway.ensure_budget("item:AS-1", tokens=8_000)
    with caplog.at_level("WARNING", logger="agentsprint.llm"):
        reply = gateway.complete(CODER, ASK)
    [row] = model_calls(store)
    spend = gateway.spend("item:AS-1")
    assert spend.spent_tokens >= row["reserved_tokens"] > 0, "never charged less than the reservation"
    assert spend.spent_tokens == reply.input_tokens + reply.output_tokens
    assert reply.input_tokens >= 0 and reply.output_tokens >= 0 and reply.usd >= row["reserved_usd"]
    assert expected in (row["usage_anomaly"] or "")
    [anomaly] = events(store, "model.usage_anomaly")
    assert expected in anomaly["anomaly"] and anomaly["call_id"] == row["id"]
    assert any("usage anomaly" in record.getMessage() for record in caplog.records)


def test_plausible_usage_records_no_anomaly(scripted_server: ScriptedServer, store: Store) -> None:
    scripted_server.add("coder-model", ScriptedReply(content="fine", completion_tokens=1_100))
    make_gateway(scripted_server, store).complete(CODER, ASK)  # 7 % above max_tokens 1,024: tokenizer noise
    [row] = model_calls(store)
    assert row["usage_anomaly"] is None and events(store, "model.usage_anomaly") == []
