"""The scripted server's Anthropic Messages and OpenAI Responses replies, plain and streamed, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agentsprint.llm import tokens
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.llm.wire import ANTHROPIC, CHAT, RESPONSES, Usage, Wire, sse_events

BODIES: dict[str, dict[str, Any]] = {
    "anthropic-messages": {"model": "m", "max_tokens": 50, "system": "Be brief.",
                           "messages": [{"role": "user", "content": [{"type": "text", "text": "Fix it."}]}]},
    "openai-responses": {"model": "m", "max_output_tokens": 50, "instructions": "Be brief.",
                         "input": [{"role": "user", "content": [{"type": "input_text", "text": "Fix it."}]}]},
    "openai-chat": {"model": "m", "max_tokens": 50,
                    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Fix it."}]},
}
WIRES: dict[str, Wire] = {"anthropic-messages": ANTHROPIC, "openai-responses": RESPONSES, "openai-chat": CHAT}


def post(server: ScriptedServer, wire: Wire, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.base_url}/{wire.route}", json=body, timeout=10)


def expected_input(wire: Wire, body: dict[str, Any]) -> int:
    messages, tools = wire.messages(body)
    return tokens.count_prompt_tokens(messages, tools, tokens.encoding_name("m"))


@pytest.mark.parametrize("protocol", list(BODIES))
def test_plain_and_streamed_replies_report_the_same_usage(protocol: str, scripted_server: ScriptedServer) -> None:
    wire, body = WIRES[protocol], BODIES[protocol]
    scripted_server.add("m", ScriptedReply(content="Done.", cached_tokens=2), repeat=True)
    plain = wire.usage(post(scripted_server, wire, body).json())
    streamed: Usage | None = None
    response = post(scripted_server, wire, {**body, "stream": True})
    assert response.headers["content-type"] == "text/event-stream"
    for line in response.text.splitlines():
        event = sse_events(line.encode())
        streamed = wire.stream_usage(event, streamed) if event else streamed
    assert plain is not None and plain == streamed
    assert plain.input_tokens == expected_input(wire, body) and plain.cached_input_tokens == 2
    assert plain.output_tokens == tokens.count_text("Done.")


def test_anthropic_reply_shape_with_a_tool_call(scripted_server: ScriptedServer) -> None:
    scripted_server.add("m", ScriptedReply(content="On it.", tool_calls=[tool_call("finish", summary="ok")]))
    reply = post(scripted_server, ANTHROPIC, BODIES["anthropic-messages"]).json()
    assert reply["type"] == "message" and reply["stop_reason"] == "tool_use"
    assert [block["type"] for block in reply["content"]] == ["text", "tool_use"]
    assert reply["content"][1]["input"] == {"summary": "ok"}


def test_responses_reply_is_cut_at_max_output_tokens(scripted_server: ScriptedServer) -> None:
    scripted_server.add("m", ScriptedReply(content="word " * 500))
    reply = post(scripted_server, RESPONSES, BODIES["openai-responses"]).json()
    assert reply["status"] == "incomplete" and reply["usage"]["output_tokens"] == 50
    assert reply["output"][0]["content"][0]["type"] == "output_text"


@pytest.mark.parametrize("protocol", ["anthropic-messages", "openai-responses"])
def test_errors_come_in_the_protocol_shape(protocol: str, scripted_server: ScriptedServer) -> None:
    scripted_server.add("m", ScriptedReply(status=429))
    response = post(scripted_server, WIRES[protocol], BODIES[protocol])
    error = response.json()
    assert response.status_code == 429
    assert error["error"]["type"] == "rate_limit_error"
    assert ("type" in error) == (protocol == "anthropic-messages"), "Anthropic wraps errors in type=error"


def test_a_streamed_responses_reply_carries_each_output_item(scripted_server: ScriptedServer) -> None:
    """Codex reads the reply's items from `response.output_item.done` only (not from response.completed)."""
    scripted_server.add("m", ScriptedReply(content="On it.", tool_calls=[tool_call("exec_command", cmd="ls")]))
    response = post(scripted_server, RESPONSES, {**BODIES["openai-responses"], "stream": True})
    events = [event for line in response.text.splitlines() if (event := sse_events(line.encode()))]
    done = [event["item"] for event in events if event["type"] == "response.output_item.done"]
    added = [event["item"]["id"] for event in events if event["type"] == "response.output_item.added"]
    assert [item["type"] for item in done] == ["message", "function_call"] and added == [i["id"] for i in done]
    assert done[1]["name"] == "exec_command" and done[1]["arguments"] == '{"cmd": "ls"}'
    assert [event["output_index"] for event in events if "output_index" in event] == [0, 0, 0, 1, 1]
    assert events[-1]["type"] == "response.completed" and events[-1]["response"]["output"] == done


def test_tool_call_ids_come_from_the_conversation_not_from_what_ran_before() -> None:
    """A process-wide id counter made the same scripted run cost a token more or less depending on
    the tests before it (call_999 vs call_1000 in the echoed conversation)."""
    from agentsprint.llm.scripted import ScriptedReply, completion_body, tool_call

    body = {"model": "m", "messages": [{"role": "user", "content": "fix it"}]}
    first = completion_body("m", body, ScriptedReply(tool_calls=[tool_call("read_file", path="a.py")]))
    for _ in range(1000):
        tool_call("list_files")
    second = completion_body("m", body, ScriptedReply(tool_calls=[tool_call("read_file", path="a.py")]))
    assert first["choices"][0]["message"] == second["choices"][0]["message"]
    assert first["usage"] == second["usage"]
