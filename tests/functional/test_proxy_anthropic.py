"""The metering proxy's Anthropic extras Claude Code needs: count_tokens, extended thinking under a lowered
cap, and streamed content as deltas. Real HTTP on both sides, the scripted server, real SQLite."""

from __future__ import annotations

import json
from typing import Any

import pytest
from proxy_support import post

from agentsprint.llm import tokens
from agentsprint.llm.context import CallContext
from agentsprint.llm.gateway import Gateway
from agentsprint.llm.proxy import MeteringProxy
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer
from agentsprint.llm.wire import ANTHROPIC
from agentsprint.store.ledger import model_calls

CODER = CallContext(role="coder", item_id="AS-1", run_id="r1", round=1, scopes=["item:AS-1"])
MESSAGES_BODY = {"model": "claude-x", "max_tokens": 32000, "system": [{"type": "text", "text": "Be brief."}],
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "Fix the bug."}]}],
                 "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}]}
THINKING = {"type": "enabled", "budget_tokens": 31999}


def send(proxy: MeteringProxy, path: str, body: Any, token: str) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return post(f"{proxy.base_url.removesuffix('/v1')}{path}", raw, {"x-api-key": token,
                                                                       "anthropic-version": "2023-06-01"})


def test_count_tokens_is_answered_by_the_proxy_without_a_charge(gateway: Gateway, proxy: MeteringProxy,
                                                                scripted_server: ScriptedServer) -> None:
    gateway.ensure_budget("item:AS-1", tokens=10, usd=None)  # far too little for a call: counting is free
    grant = proxy.grant(CODER)
    status, body = send(proxy, "/v1/messages/count_tokens?beta=true", MESSAGES_BODY, grant.token)
    messages, tools = ANTHROPIC.messages(MESSAGES_BODY)
    expected = tokens.count_prompt_tokens(messages, tools, tokens.encoding_name("openai/coder-model"))
    assert (status, body) == (200, {"input_tokens": expected})
    assert model_calls(gateway.store) == [] and scripted_server.requests == {}, "not forwarded, not recorded"
    assert gateway.spend("item:AS-1").spent_tokens == 0


@pytest.mark.parametrize("raw, token_ok, answer", [(b"[1]", True, 400), (b"{}", True, 400),
                                                   (json.dumps(MESSAGES_BODY).encode(), False, 401)])
def test_count_tokens_refuses_bad_input_and_unknown_tokens(raw: bytes, token_ok: bool, answer: int,
                                                           proxy: MeteringProxy) -> None:
    grant = proxy.grant(CODER)
    status, body = send(proxy, "/v1/messages/count_tokens", raw, grant.token if token_ok else "nope")
    assert status == answer and body["type"] == "error"


@pytest.mark.parametrize("budget, thinking", [(6000, "lowered"), (1000, "disabled")])
def test_extended_thinking_stays_inside_the_lowered_cap(budget: int, thinking: str, gateway: Gateway,
                                                        proxy: MeteringProxy,
                                                        scripted_server: ScriptedServer) -> None:
    gateway.ensure_budget("item:AS-1", tokens=budget, usd=None)
    grant = proxy.grant(CODER)
    status, _ = send(proxy, "/v1/messages?beta=true", {**MESSAGES_BODY, "thinking": THINKING}, grant.token)
    assert status == 200
    [sent] = scripted_server.requests["coder-model"]
    assert sent["max_tokens"] < 32000
    if thinking == "lowered":
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": sent["max_tokens"] - 1}
        assert sent["thinking"]["budget_tokens"] >= 1024
    else:
        assert sent["max_tokens"] <= 1024 and sent["thinking"] == {"type": "disabled"}


def test_a_thinking_budget_inside_the_cap_is_left_alone(gateway: Gateway, proxy: MeteringProxy,
                                                        scripted_server: ScriptedServer) -> None:
    gateway.ensure_budget("item:AS-1", tokens=100000, usd=None)
    grant = proxy.grant(CODER)
    body = {**MESSAGES_BODY, "max_tokens": 4000, "thinking": {"type": "enabled", "budget_tokens": 2000}}
    assert send(proxy, "/v1/messages", body, grant.token)[0] == 200
    assert scripted_server.requests["coder-model"][0]["thinking"] == body["thinking"]


def test_streamed_anthropic_content_arrives_as_deltas(gateway: Gateway, proxy: MeteringProxy,
                                                      scripted_server: ScriptedServer) -> None:
    """As the API streams it: blocks start empty, text and tool input come in deltas (Claude Code reads
    only the deltas)."""
    scripted_server.add("coder-model", ScriptedReply(content="Reading it.", tool_calls=[
        {"name": "Read", "arguments": {"file_path": "/w/shop/pagination.py"}}]))
    gateway.ensure_budget("item:AS-1", tokens=100000, usd=None)
    grant = proxy.grant(CODER)
    status, text = send(proxy, "/v1/messages", {**MESSAGES_BODY, "max_tokens": 500, "stream": True}, grant.token)
    events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert status == 200 and starts[0] == {"type": "text", "text": ""} and starts[1]["input"] == {}
    assert deltas[0] == {"type": "text_delta", "text": "Reading it."}
    assert deltas[1]["type"] == "input_json_delta"
    assert json.loads(deltas[1]["partial_json"]) == {"file_path": "/w/shop/pagination.py"}
    [call] = model_calls(gateway.store, "AS-1")
    assert call.outcome == "ok" and call.output_tokens == scripted_server.usage[0]["output_tokens"]
