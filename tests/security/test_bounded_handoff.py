"""Finding 10 (nested arguments): tool-call arguments nested 3,000 levels deep are a malformed
handoff (recorded, answered with the error, retried up to the cap, counted), never a provider
failure or a crash, through a real run against the scripted model server."""

from __future__ import annotations

import json
from pathlib import Path

from runner_support import item, make_project, query

from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner.demo_script import PLANS, Reply, ScriptBook
from agentsprint.runner.service import run_items

DEPTH = 3000


def deep_call(tool: str = "read_file", depth: int = DEPTH) -> dict[str, object]:
    """A tool call whose arguments nest `depth` lists deep (json.dumps cannot write 3,000 levels)."""
    arguments = '{"path": ' + "[" * depth + "]" * depth + "}"
    return {"id": "call_deep", "type": "function", "function": {"name": tool, "arguments": arguments}}


def test_deeply_nested_arguments_are_a_malformed_handoff_not_a_failure(tmp_path: Path) -> None:
    # 3,000 levels break litellm's own parse of the reply; 100 levels pass it and reach the handoff check
    steps = [deep_call(), deep_call("finish", depth=100), tool_call("finish", summary="recovered")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], rounds=1)], book)
        results = run_items(settings, ["AS-1"]).results

    assert results == {"AS-1": "done"}
    handoffs = query(settings, "SELECT tool, valid, error FROM handoffs WHERE role = 'coder' ORDER BY id")
    assert [valid for _, valid, _ in handoffs] == [0, 0, 1]
    assert "nest too deeply to parse" in handoffs[0][2]
    assert "arguments of finish nest more than 32 levels deep" in handoffs[1][2]
    events = " ".join(data for (data,) in query(settings, "SELECT data_json FROM events"))
    assert "RecursionError" not in events and "Traceback" not in events
    coder_bodies = server.requests.get("t-coder", [])
    answers = [m["content"] for m in coder_bodies[-1]["messages"] if m["role"] == "user"]
    assert any("nest" in answer for answer in answers), "the model was told what was wrong"


def test_deeply_nested_arguments_past_the_malformed_cap_escalate(tmp_path: Path) -> None:
    steps = [deep_call()] * 6
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], rounds=1)], book)
        results = run_items(settings, ["AS-1"]).results

    assert results == {"AS-1": "escalated"}
    reason = query(settings, "SELECT reason, detail FROM item_state WHERE item_id = 'AS-1'")[0]
    assert reason[0] == "loop" and "malformed" in reason[1]
    assert json.dumps(reason).count("[") < 100


def test_lone_surrogates_in_a_reply_are_a_malformed_handoff_not_a_failure(tmp_path: Path) -> None:
    """JSON's "\\ud800" escape decodes to a string that is not Unicode: it broke the tool, the journal
    and the database insert, and the item failed with an internal error."""
    steps: list[Reply] = [ScriptedReply(content="thinking \ud800 aloud"),
             tool_call("read_file", path="shop/x\ud800.py"),
             tool_call("write_file", path="shop/s.py", content="x = '\udfff'\n"),
             tool_call("finish", summary="done")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], rounds=1)], book)
        results = run_items(settings, ["AS-1"]).results

    assert results == {"AS-1": "done"}
    handoffs = query(settings, "SELECT valid, error FROM handoffs WHERE role = 'coder' ORDER BY id")
    assert [valid for valid, _ in handoffs] == [0, 0, 0, 1]
    assert "the reply called no tool: thinking ? aloud" in handoffs[0][1]
    assert all("lone surrogate" in error for _, error in handoffs[1:3])
