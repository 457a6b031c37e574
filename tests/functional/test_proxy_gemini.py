"""The metering proxy speaking Gemini's API: real HTTP on both sides, the scripted server, real SQLite."""

from __future__ import annotations

import json
from typing import Any

import pytest
from proxy_support import post

from agentsprint.llm.context import CallContext
from agentsprint.llm.gateway import Gateway
from agentsprint.llm.proxy import MeteringProxy
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.llm.wire import sse_events
from agentsprint.store.ledger import model_calls

CODER = CallContext(role="coder", item_id="AS-1", run_id="r1", round=2, scopes=["item:AS-1", "sprint:S1"])
CHUNK = "Here is more of the repository to read: " + "lorem ipsum dolor sit amet " * 40


def gemini_body(*texts: str, max_tokens: int | None = 200) -> dict[str, Any]:
    """A Gemini generateContent request: a system instruction, one user turn per text."""
    config = {"temperature": 1} | ({"maxOutputTokens": max_tokens} if max_tokens else {})
    return {"systemInstruction": {"parts": [{"text": "You are an agent."}]},
            "contents": [{"role": "user", "parts": [{"text": text}]} for text in texts],
            "tools": [{"functionDeclarations": [{"name": "read_file", "parameters": {"type": "object"}}]}],
            "generationConfig": config}


def call(proxy: MeteringProxy, body: dict[str, Any], *, stream: bool = False, key: str = "",
         header: str = "") -> tuple[int, Any]:
    """POST a Gemini request to the proxy as Gemini CLI does (model in the path, key in a header or ?key=)."""
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    root = proxy.base_url.removesuffix("/v1")
    url = f"{root}/v1beta/models/whatever-the-agent-says:{action}" + (f"&key={key}" if stream and key else
                                                                      f"?key={key}" if key else "")
    return post(url, json.dumps(body).encode(), {"x-goog-api-key": header} if header else {})


def stream_usage(text: str) -> dict[str, Any]:
    """The last usageMetadata of a Gemini event stream."""
    events = [sse_events(line.encode()) for line in text.splitlines()]
    usage: dict[str, Any] = [event for event in events if event][-1]["usageMetadata"]
    return usage


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_call_is_reserved_forwarded_and_settled_from_usage_metadata(stream: bool, gateway: Gateway,
                                                                      proxy: MeteringProxy,
                                                                      scripted_server: ScriptedServer) -> None:
    gateway.ensure_budget("item:AS-1", tokens=10000, usd=None)
    scripted_server.add("coder-model", ScriptedReply(content="Reading.", tool_calls=[tool_call("read_file",
                                                                                                file_path="a.py")]))
    grant = proxy.grant(CODER)
    status, reply = call(proxy, gemini_body("Fix the bug."), stream=stream, header=grant.token)
    assert status == 200
    usage = stream_usage(reply) if stream else reply["usageMetadata"]
    if not stream:
        assert reply["candidates"][0]["content"]["parts"][1] == {"functionCall": {"name": "read_file",
                                                                                  "args": {"file_path": "a.py"}}}
    [sent] = scripted_server.requests["coder-model"]
    assert "model" not in sent, "Gemini names the model in the path, not the body"
    [row] = model_calls(gateway.store, "AS-1")
    assert sent["generationConfig"]["maxOutputTokens"] == row.granted_max_tokens == 200
    assert sent["generationConfig"]["temperature"] == 1
    assert (row.outcome, row.round, row.role) == ("ok", 2, "coder")
    assert (row.input_tokens, row.output_tokens) == (usage["promptTokenCount"], usage["candidatesTokenCount"])
    assert json.loads(row.attributes_json)["agentsprint.cost"] == "measured"
    assert gateway.spend("item:AS-1").reserved_tokens == 0


def test_the_output_cap_is_set_to_what_is_left_when_the_agent_sends_none(gateway: Gateway, proxy: MeteringProxy,
                                                                         scripted_server: ScriptedServer) -> None:
    gateway.ensure_budget("item:AS-1", tokens=300, usd=None)
    grant = proxy.grant(CODER)
    status, _ = call(proxy, gemini_body("hi", max_tokens=None), key=grant.token)
    assert status == 200
    [sent] = scripted_server.requests["coder-model"]
    [row] = model_calls(gateway.store, "AS-1")
    assert 16 <= sent["generationConfig"]["maxOutputTokens"] == row.granted_max_tokens < 300


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_growing_context_is_refused_in_geminis_error_shape_at_the_budget(stream: bool, gateway: Gateway,
                                                                         proxy: MeteringProxy,
                                                                         scripted_server: ScriptedServer) -> None:
    gateway.ensure_budget("item:AS-1", tokens=4000, usd=None)
    grant = proxy.grant(CODER)
    texts, statuses = ["Fix the bug."], list[int]()
    while not statuses or statuses[-1] == 200:
        status, reply = call(proxy, gemini_body(*texts), stream=stream, key=grant.token)
        statuses.append(status)
        texts.append(CHUNK)
    assert len(statuses) >= 3 and statuses[-1] == 400
    assert reply["error"]["code"] == 400 and reply["error"]["status"] == "INVALID_ARGUMENT"
    assert "budget item:AS-1 exhausted" in reply["error"]["message"]
    assert grant.refused is not None and "budget item:AS-1 exhausted" in grant.refused
    assert len(scripted_server.requests["coder-model"]) == len(statuses) - 1, "the refused call was not forwarded"
    calls = model_calls(gateway.store, "AS-1")
    assert [c.outcome for c in calls] == ["ok"] * (len(statuses) - 1) + ["refused"]
    state = gateway.spend("item:AS-1")
    assert state.spent_tokens <= 4000 and state.reserved_tokens == 0
    assert state.spent_tokens == sum(c.input_tokens + c.output_tokens for c in calls)


@pytest.mark.parametrize("status", [429, 500])
def test_upstream_errors_are_passed_on_and_charge_nothing(status: int, gateway: Gateway, proxy: MeteringProxy,
                                                          scripted_server: ScriptedServer) -> None:
    scripted_server.add("coder-model", ScriptedReply(status=status))
    gateway.ensure_budget("item:AS-1", tokens=10000, usd=None)
    grant = proxy.grant(CODER)
    answer, body = call(proxy, gemini_body("hi"), header=grant.token)
    assert answer == status and body["error"]["code"] == status
    [row] = model_calls(gateway.store, "AS-1")
    assert row.outcome == "error" and (row.input_tokens, row.output_tokens, row.usd) == (0, 0, 0.0)


@pytest.mark.parametrize("body, needle", [({"contents": "hi"}, "'contents' must be a list"),
                                          ({"contents": [], "generationConfig": {"maxOutputTokens": 0}},
                                           "positive integer")])
def test_an_unreadable_request_is_refused_before_any_charge(body: dict[str, Any], needle: str, gateway: Gateway,
                                                            proxy: MeteringProxy,
                                                            scripted_server: ScriptedServer) -> None:
    grant = proxy.grant(CODER)
    status, reply = call(proxy, body, key=grant.token)
    assert status == 400 and needle in reply["error"]["message"] and reply["error"]["status"] == "INVALID_ARGUMENT"
    assert model_calls(gateway.store) == [] and scripted_server.requests == {}


def test_an_unknown_key_is_refused_in_geminis_shape(gateway: Gateway, proxy: MeteringProxy) -> None:
    status, reply = call(proxy, gemini_body("hi"), header="not-a-token")
    assert status == 401 and reply["error"]["status"] == "UNAUTHENTICATED"
    assert model_calls(gateway.store) == []
