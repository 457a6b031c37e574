"""Secrets stay out of what models see and what is stored; search cannot read through symlinks out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from runner_support import item, make_project, query

from agentsprint.agents.tools import ToolPolicy, execute
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items

KEY = "sk-" + "live0123456789abcdefghij0123456789"



def test_a_key_the_coder_writes_and_reads_never_reaches_the_model_or_the_store(
        tmp_path: Path, server: ScriptedServer) -> None:
    steps = [tool_call("write_file", path="shop/config.py", content=f"API_KEY = '{KEY}'\n"),
             tool_call("read_file", path="shop/config.py"),
             tool_call("search", pattern="API_KEY", path="shop"),
             tool_call("finish", summary="configured")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=["secrets"], rounds=1)], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}, "the secrets gate rejects the diff"

    sent = json.dumps(server.requests)
    assert KEY not in sent and "[REDACTED]" in sent
    for table, column in (("events", "data_json"), ("escalations", "package_json"),
                          ("model_calls", "request_json"), ("model_calls", "response_json")):
        rows = query(settings, f"SELECT {column} FROM {table}")
        assert rows and all(KEY not in (value or "") for (value,) in rows), f"{table}.{column} holds the key"


def test_a_key_pasted_into_an_item_body_is_not_sent_to_any_model(tmp_path: Path, server: ScriptedServer) -> None:
    body = f"Call the billing API with key {KEY} (the staging one).\n\n## Acceptance criteria\n- it works\n"
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): [tool_call("finish", summary="nothing to do")]})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], rounds=1, body=body)], book)

    run_items(settings, ["AS-1"])

    systems = {body["messages"][0]["content"][:60] for bodies in server.requests.values() for body in bodies}
    assert len(systems) >= 3, "supervisor, coder and QA were all asked"
    sent = json.dumps(server.requests)
    assert KEY not in sent and "staging one" in sent and "[REDACTED]" in sent
    rows = query(settings, "SELECT request_json FROM model_calls")
    assert rows and all(KEY not in (value or "") for (value,) in rows)


def test_search_does_not_follow_a_symlink_out_of_the_worktree(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("TOPSECRET=hunter2\n")
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / "inside.txt").write_text("TOPSECRET=placeholder\n")
    os.symlink(outside, worktree / "link.txt")
    policy = ToolPolicy(allowed_commands=[], command_timeout_s=5, output_cap=1000)

    found = execute(str(worktree), "search", {"pattern": "TOPSECRET"}, policy)

    assert "inside.txt:1" in found.output and "hunter2" not in found.output
    refused = execute(str(worktree), "read_file", {"path": "link.txt"}, policy)
    assert refused.policy_block == "path"
