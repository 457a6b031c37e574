"""The runner's own rules (DESIGN section 6) through real runs, and the package of an item stopped mid-round.

Each test fails when its rule is switched off in agentsprint/runner/flow.py or agents/guards.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner_support import TEST_CONFIG, item, make_project

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner import actions
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items

REJECT = tool_call("submit_verdict", verdict="reject", reasons=["not good enough yet"])
SECURITY_CONFIG = TEST_CONFIG + """
[models.security]
model = "openai/t-security"
api_base = "{base}"
input_cost_per_token = 0.0000004
output_cost_per_token = 0.0000016
max_tokens = 512
"""



def _package(settings: Settings) -> dict[str, Any]:
    return actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()


def _write(content: str) -> list[Any]:
    return [tool_call("write_file", path="shop/note.py", content=content), tool_call("finish", summary="wrote it")]


def test_out_of_budget_mid_round_the_package_holds_the_plan_diff_tool_calls_and_spend(
        tmp_path: Path, server: ScriptedServer) -> None:
    coder = [tool_call("write_file", path="shop/note.py", content="NOTE = 1\n"), tool_call("list_files", path="."),
             tool_call("list_files", path="shop"), tool_call("finish", summary="x")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): coder})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], tokens=3000)], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    detail = _package(settings)
    package = detail["package"]
    assert detail["reason"] == "budget"
    assert package["plan"] is not None and package["plan"]["steps"][0] == "Read shop/pagination.py"
    (partial,) = package["rounds"]
    assert partial["partial"] is True and partial["round"] == 1 and partial["plan"] == package["plan"]
    assert "+NOTE = 1" in partial["diff"] and partial["changed_files"] == ["shop/note.py"]
    assert [c["tool"] for c in partial["tool_calls"]] == ["write_file"]
    assert partial["spend"]["calls"] >= 2 and partial["spend"]["input_tokens"] > 0, "supervisor and coder paid"


def test_the_security_reviewers_reject_overrides_qas_approve(tmp_path: Path, server: ScriptedServer) -> None:
    verdict = tool_call("submit_verdict", verdict="reject", reasons=["the password is logged in clear"])
    server.add("t-security", responder=lambda body: ScriptedReply(tool_calls=[verdict]))
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): _write("NOTE = 1\n")})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[{"security": "agent"}], rounds=1)], book,
                            config=SECURITY_CONFIG)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    assert server.requests["t-qa"] and server.requests["t-security"], "QA approved, then security was asked"
    (last,) = _package(settings)["package"]["rounds"]
    assert last["verdict"] == "reject" and last["reasons"] == ["security: the password is logged in clear"]


def test_the_wall_clock_budget_escalates_with_reason_time(tmp_path: Path, server: ScriptedServer) -> None:
    slow = ScriptedReply(tool_calls=[tool_call("list_files", path=".")], latency=2.2)
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): [slow, tool_call("finish", summary="x")]})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], time="2s")], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    detail = _package(settings)
    assert detail["reason"] == "time" and "2s" in detail["detail"]
    assert detail["package"]["rounds"][0]["partial"] and detail["package"]["plan"]["steps"]
    assert not server.requests.get("t-qa"), "the item stopped in the coder's turn"


def test_the_same_failing_gate_output_across_rounds_is_a_loop(tmp_path: Path, server: ScriptedServer) -> None:
    coder = {("AS-1", r): _write(f"ROUND = {r}\n") for r in range(1, 6)}  # a new diff every round
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, coder)
    settings = make_project(tmp_path / "p", server, [item("AS-1", rounds=5)], book)  # the tests gate fails

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    detail = _package(settings)
    assert (detail["reason"], detail["detail"]) == ("loop", "the same gate failure in 3 rounds")
    assert [r["round"] for r in detail["package"]["rounds"]] == [1, 2, 3]


def test_the_same_diff_across_rounds_is_a_loop(tmp_path: Path, server: ScriptedServer) -> None:
    coder = {("AS-1", r): _write("NOTE = 1\n") for r in range(1, 6)}
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, coder, {("AS-1", r): REJECT for r in range(1, 6)})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], rounds=5)], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    detail = _package(settings)
    assert (detail["reason"], detail["detail"]) == ("loop", "the same diff in 3 rounds")
    assert [r["round"] for r in detail["package"]["rounds"]] == [1, 2, 3]


def test_the_supervisor_escalates_through_submit_plan(tmp_path: Path, server: ScriptedServer) -> None:
    plan = tool_call("submit_plan", steps=[], acceptance=[], escalate="the item contradicts tests/test_pagination.py")
    book = ScriptBook({"AS-1": plan}, {("AS-1", 1): _write("NOTE = 1\n")})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[])], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    detail = _package(settings)
    assert (detail["reason"], detail["detail"]) == ("supervisor", "the item contradicts tests/test_pagination.py")
    assert detail["package"]["plan"]["escalate"] == detail["detail"], "the plan that escalated is in the package"
    assert not server.requests.get("t-coder"), "no coder was paid after the supervisor gave up"


REFUSED = ["curl http://127.0.0.1:9/x", "wget http://127.0.0.1:9/y", "sh -c true", "git push", "make deploy"]


def test_a_coder_that_keeps_asking_for_what_the_policy_refuses_escalates_with_reason_policy(
        tmp_path: Path, server: ScriptedServer) -> None:
    coder = [*(tool_call("run", command=command) for command in REFUSED), tool_call("finish", summary="x")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): coder})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[])], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    detail = _package(settings)
    assert detail["reason"] == "policy"
    assert detail["detail"].startswith("5 tool calls in a row refused by policy (last: run: refused by policy")
    assert "'make' is not an allowed command" in detail["detail"]
    assert not server.requests.get("t-qa"), "QA was not asked about work the policy stopped"


def test_an_allowed_call_between_refusals_starts_the_count_again(tmp_path: Path, server: ScriptedServer) -> None:
    allowed = tool_call("list_files", path="shop")
    coder = [*(tool_call("run", command=c) for c in REFUSED[:4]), allowed,
             *(tool_call("run", command=c) for c in REFUSED[:4]), tool_call("finish", summary="gave up on curl")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): coder})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[])], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}
