"""Budget safety against a provider that counts tokens differently from the gateway's estimate.

The scripted server counts with another tokenizer and/or a factor (`Counting`), so these tests can fail:
with the safety factor off, a provider that counts 15 % more overshoots, and the overshoot stays within
the estimate's error; with the default safety factor it is covered.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import settings_for

from agentsprint.config import RunSettings
from agentsprint.llm import tokens
from agentsprint.llm.context import CallContext
from agentsprint.llm.errors import BudgetExhausted
from agentsprint.llm.gateway import Gateway
from agentsprint.llm.scripted import Counting, ScriptedReply, ScriptedServer
from agentsprint.store import Store
from agentsprint.store.ledger import CallRecord, model_calls

WORDS = ("def", "return", "self", "import", "budget", "token", "naïve", "{", "}", "fix", "the", "\n", "日本語")
CALLS = 300


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'agentsprint.db'}")
    yield opened
    opened.close()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _messages(rng: random.Random) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": _text(rng, rng.randint(5, 900))}]


def _random_calls(counting: Counting, store: Store, safety_factor: float) -> tuple[Gateway, list[CallRecord]]:
    """CALLS random calls with random budgets against a server counting as `counting`; the settled rows."""
    rng, server_rng = random.Random(20261129), random.Random(11)
    with ScriptedServer(counting=counting) as server:
        server.add("*", responder=lambda body: ScriptedReply(content=_text(server_rng, server_rng.randint(1, 600))))
        settings = settings_for(server, run={"token_safety_factor": safety_factor, "min_reply_tokens": 16})
        gateway = Gateway(settings, store, backoff=0.0)
        item: str | None = None
        for index in range(CALLS):
            if item is None:
                item = f"item:B{index}"
                gateway.ensure_budget(item, tokens=rng.randint(200, 6_000), usd=None)
            ctx = CallContext(role="coder", item_id=item, scopes=[item], max_tokens=rng.randint(1, 800))
            try:
                gateway.complete(ctx, _messages(rng))
            except BudgetExhausted:
                item = None
    return gateway, [row for row in model_calls(store) if row.outcome == "ok"]


def _overspent(gateway: Gateway, rows: list[CallRecord]) -> list[str]:
    scopes = {scope for row in rows for scope in json.loads(row.scopes_json)}
    return [s for s in scopes if gateway.spend(s).spent_tokens > (gateway.spend(s).limit_tokens or 0)]


def test_a_provider_counting_15_percent_more_overshoots_without_a_safety_factor_within_the_estimates_error(
        store: Store) -> None:
    gateway, rows = _random_calls(Counting(input_factor=1.15), store, safety_factor=1.0)

    overshoots = [json.loads(r.attributes_json).get("agentsprint.overshoot_tokens", 0) for r in rows]
    assert any(overshoots) and _overspent(gateway, rows), "the test can fail: 15 % more is seen and not covered"
    for row, over in zip(rows, overshoots, strict=True):
        input_error = max(0, row.input_tokens - row.estimated_input_tokens)
        assert over <= input_error, "overshoot is bounded by the input estimate's error"
        assert row.output_tokens <= row.granted_max_tokens


def test_the_default_safety_factor_covers_a_provider_counting_15_percent_more(store: Store) -> None:
    factor = RunSettings().token_safety_factor
    gateway, rows = _random_calls(Counting(input_factor=1.15), store, safety_factor=factor)

    counted = [tokens.count_prompt_tokens(json.loads(r.request_json)["messages"]) for r in rows]
    above = [r for r, count in zip(rows, counted, strict=True) if r.input_tokens > count]
    assert len(above) == len(rows) > CALLS // 2, "every call was counted above the gateway's tiktoken count"
    assert not _overspent(gateway, rows)
    assert all(json.loads(r.attributes_json).get("agentsprint.overshoot_tokens", 0) == 0 for r in rows)


def test_a_provider_with_another_tokenizer_is_covered_by_the_default_safety_factor(store: Store) -> None:
    gateway, rows = _random_calls(Counting(encoding="o200k_base", input_factor=1.1), store,
                                  safety_factor=RunSettings().token_safety_factor)

    assert any(r.input_tokens != r.estimated_input_tokens for r in rows), "the server counted on its own"
    assert not _overspent(gateway, rows)


@pytest.mark.parametrize("with_tool_calls", [False, True])
def test_the_estimate_agrees_with_litellms_token_counter(with_tool_calls: bool) -> None:
    import litellm

    rng = random.Random(5)
    for _ in range(100):
        messages = _messages(rng)
        if with_tool_calls:
            arguments = json.dumps({"path": "a.py", "content": _text(rng, rng.randint(1, 300))})
            messages += [{"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "write_file", "arguments": arguments}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "wrote a.py"}]
        ours = tokens.count_prompt_tokens(messages, None, "cl100k_base")
        theirs = litellm.token_counter(model="gpt-4", messages=messages)
        assert theirs * 0.99 <= ours <= theirs * 1.02 + 8, (ours, theirs)
