"""The agents end to end: real gateway over HTTP to the scripted server, real SQLite, real git repo."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from sqlmodel import col, select

from agentsprint.agents import qa, supervisor
from agentsprint.agents.coder import BuiltinCoder
from agentsprint.agents.errors import Escalate, LoopDetected
from agentsprint.agents.io import DirectIO
from agentsprint.agents.loop import Limits
from agentsprint.agents.supervisor import Plan
from agentsprint.agents.tools import ToolPolicy
from agentsprint.config import ModelSettings, RunSettings, Settings
from agentsprint.domain import EscalationReason, Item, ItemType, parse_gate
from agentsprint.llm.context import CallContext
from agentsprint.llm.errors import BudgetExhausted
from agentsprint.llm.gateway import Gateway
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.store import Store
from agentsprint.store.agents import handoffs
from agentsprint.store.tables import EventRow

ROLES = ("supervisor", "coder", "qa", "security")
CALC = "def add(a, b):\n    return a - b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"

ITEM = Item(
    id="AS-1",
    title="Fix add",
    type=ItemType.BUG,
    dod=[parse_gate({"tests": "pytest -q"}), parse_gate("secrets")],
    body="add() subtracts instead of adding.\n\n## Acceptance criteria\n- add(2, 3) returns 5\n",
)
PLAN = Plan(steps=["read calc.py", "make add add", "run pytest"], acceptance=["add(2, 3) returns 5"])


@dataclass
class Env:
    server: ScriptedServer
    store: Store
    io: DirectIO
    repo: Path
    progress: list[str] = field(default_factory=list)

    def ctx(self, role: str, round_no: int = 1) -> CallContext:
        return CallContext(
            role=role, item_id=ITEM.id, run_id="run-1", round=round_no, scopes=[f"item:{ITEM.id}"]
        )

    def script(self, role: str, *replies: ScriptedReply) -> None:
        self.server.add(f"{role}-model", *replies)

    def requests(self, role: str) -> list[dict[str, Any]]:
        return self.server.requests[f"{role}-model"]

    def events(self, kind: str) -> list[dict[str, Any]]:
        with self.store.session() as session:
            rows = session.exec(
                select(EventRow).where(EventRow.kind == kind).order_by(col(EventRow.id))
            ).all()
            return [json.loads(row.data_json) for row in rows]


def call(name: str, **arguments: Any) -> ScriptedReply:
    return ScriptedReply(tool_calls=[tool_call(name, **arguments)])


@pytest.fixture
def env(tmp_path: Path, git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    (git_repo / "calc.py").write_text(CALC)
    (git_repo / "tests").mkdir()
    (git_repo / "tests" / "test_calc.py").write_text(TEST_CALC)
    (git_repo / "conftest.py").write_text("")  # pytest puts the repo root on sys.path
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "calc")
    # the coder's `run` finds pytest on PATH, as in a project's own venv
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with ScriptedServer() as server:
        models = {
            role: ModelSettings(
                model=f"openai/{role}-model",
                api_base=server.base_url,
                max_tokens=512,
                input_cost_per_token=1e-6,
                output_cost_per_token=2e-6,
            )
            for role in ROLES
        }
        settings = Settings(
            models=models, run=RunSettings(num_retries=0, command_timeout="60s"), root=git_repo
        )
        store = Store(f"sqlite:///{tmp_path / 'agentsprint.db'}")
        gateway = Gateway(settings, store, backoff=0)
        gateway.open_budget(f"item:{ITEM.id}", tokens=None, usd=None)
        progress: list[str] = []
        io = DirectIO(
            gateway, store, settings, progress_cb=lambda ctx, text: progress.append(f"{ctx.role}: {text}")
        )
        yield Env(server, store, io, git_repo, progress)
        store.close()


def coder(env: Env, **limits: int) -> BuiltinCoder:
    return BuiltinCoder(Limits(**limits), ToolPolicy.from_settings(env.io.settings))


def last_user_text(request: dict[str, Any]) -> str:
    text: str = next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")
    return text


def test_supervisor_plans_with_only_submit_plan(env: Env) -> None:
    env.script(
        "supervisor",
        call("submit_plan", steps=["fix add in calc.py"], acceptance=["add(2, 3) == 5"], escalate=None),
    )
    plan = supervisor.plan(env.io, env.ctx("supervisor"), ITEM, [], None, protected_paths=["tests/**"])
    assert plan == Plan(steps=["fix add in calc.py"], acceptance=["add(2, 3) == 5"], escalate=None)
    [request] = env.requests("supervisor")
    assert [t["function"]["name"] for t in request["tools"]] == ["submit_plan"]
    system, user = request["messages"]
    assert "submit_plan(steps, acceptance, escalate)" in system["content"]
    assert "- add(2, 3) returns 5" in user["content"] and "tests/**" in user["content"]
    assert [(h.role, h.tool, h.valid, h.model) for h in handoffs(env.store)] == [
        ("supervisor", "submit_plan", True, "openai/supervisor-model")
    ]


def test_supervisor_sees_findings_and_previous_plan_and_may_escalate(env: Env) -> None:
    env.script(
        "supervisor", call("submit_plan", steps=[], acceptance=[], escalate="tests contradict the item")
    )
    findings = ["QA: add(2, 3) still returns -1", "human: keep the signature"]
    plan = supervisor.plan(env.io, env.ctx("supervisor", 2), ITEM, findings, PLAN)
    assert plan.escalate == "tests contradict the item"
    user = last_user_text(env.requests("supervisor")[0])
    assert "add(2, 3) still returns -1" in user and "human: keep the signature" in user
    assert "1. read calc.py" in user and "round 2" in user


def test_coder_reads_edits_runs_pytest_and_finishes(env: Env) -> None:
    env.script(
        "coder",
        call("read_file", path="calc.py"),
        call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
        call("run", command="pytest -q"),
        call("finish", summary="add now adds"),
    )
    outcome = coder(env).work(env.io, env.ctx("coder"), ITEM, PLAN, [], str(env.repo))
    assert (env.repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert (outcome.summary, outcome.finished, outcome.steps, outcome.malformed) == (
        "add now adds",
        True,
        3,
        0,
    )
    requests = env.requests("coder")
    assert len(requests) == 4
    assert [t["function"]["name"] for t in requests[0]["tools"]] == [
        "list_files",
        "read_file",
        "search",
        "write_file",
        "edit_file",
        "run",
        "finish",
    ]
    tool_messages = [m for m in requests[-1]["messages"] if m["role"] == "tool"]
    assert "return a - b" in tool_messages[0]["content"]
    assert tool_messages[1]["content"] == "edited calc.py"
    assert "exit code 0" in tool_messages[2]["content"] and "1 passed" in tool_messages[2]["content"]
    calls = env.events("tool.call")
    assert [(e["tool"], e["ok"]) for e in calls] == [("read_file", True), ("edit_file", True), ("run", True)]
    assert outcome.tokens > 0 and outcome.usd > 0
    assert env.progress[0] == 'coder: read_file {"path": "calc.py", "start": null, "end": null}'


def test_malformed_replies_are_recorded_answered_and_recovered(env: Env) -> None:
    env.script(
        "coder",
        ScriptedReply(content="I would change the minus to a plus."),
        call("delete_repo"),
        ScriptedReply(tool_calls=[tool_call("read_file", path="calc.py")], malformed_json=True),
        call("list_files"),
        call("finish", summary="done", confidence=0.9),
        call("finish", summary="done"),
    )
    outcome = coder(env).work(env.io, env.ctx("coder"), ITEM, PLAN, [], str(env.repo))
    assert outcome.malformed == 4 and outcome.steps == 1
    records = handoffs(env.store, ITEM.id)
    assert [h.valid for h in records] == [False, False, False, True, False, True]
    assert [h.tool for h in records] == [None, "delete_repo", "read_file", "list_files", "finish", "finish"]
    assert all(h.call_id is not None for h in records)
    requests = env.requests("coder")
    assert "the reply called no tool: I would change the minus" in last_user_text(requests[1])
    assert "unknown tool 'delete_repo'" in last_user_text(requests[2])
    assert "not valid JSON" in last_user_text(requests[3])
    assert "confidence: Extra inputs are not permitted" in last_user_text(requests[5])
    assert requests[1]["messages"][-2] == {
        "role": "assistant",
        "content": "I would change the minus to a plus.",
    }
    assert [e["valid"] for e in env.events("handoff")] == [False, False, False, True, False, True]


def test_too_many_malformed_replies_escalate(env: Env) -> None:
    env.script("coder", *[ScriptedReply(content="thinking...")] * 3)
    with pytest.raises(Escalate) as caught:
        coder(env, max_malformed=2).work(env.io, env.ctx("coder"), ITEM, PLAN, [], str(env.repo))
    assert caught.value.reason is EscalationReason.LOOP
    assert "3 malformed replies in a row" in caught.value.detail
    assert [h.valid for h in handoffs(env.store)] == [False, False, False]


def test_repeated_identical_calls_nudge_then_stop(env: Env) -> None:
    env.script("coder", *[call("read_file", path="calc.py")] * 4)
    with pytest.raises(LoopDetected) as caught:
        coder(env, loop_repeat_threshold=3).work(env.io, env.ctx("coder"), ITEM, PLAN, [], str(env.repo))
    assert "3 times in a row" in caught.value.detail
    requests = env.requests("coder")
    assert len(requests) == 4
    nudge = requests[3]["messages"][-1]
    assert nudge["role"] == "user" and nudge["content"].startswith("Loop warning: the same call repeated")
    assert requests[3]["messages"][-2]["role"] == "tool"  # the nudge follows the tool result
    assert len(env.events("tool.call")) == 3  # the fourth call was not executed


def test_step_cap_escalates(env: Env) -> None:
    env.script("coder", call("list_files"), call("read_file", path="calc.py"), call("search", pattern="add"))
    with pytest.raises(Escalate, match="step cap of 2 tool calls"):
        coder(env, max_steps=2).work(env.io, env.ctx("coder"), ITEM, PLAN, [], str(env.repo))
    assert len(env.events("tool.call")) == 2


def test_policy_blocks_are_results_and_events(env: Env) -> None:
    env.script(
        "coder",
        ScriptedReply(
            tool_calls=[
                tool_call("write_file", path="../escape.txt", content="x"),
                tool_call("run", command="rm -rf ."),
            ]
        ),
        call("finish", summary="gave up"),
    )
    coder(env).work(env.io, env.ctx("coder"), ITEM, PLAN, [], str(env.repo))
    assert not (env.repo.parent / "escape.txt").exists() and (env.repo / "calc.py").exists()
    assert [(e["tool"], e["kind"]) for e in env.events("policy.block")] == [
        ("write_file", "path"),
        ("run", "command"),
    ]
    results = [m["content"] for m in env.requests("coder")[1]["messages"] if m["role"] == "tool"]
    assert all(text.startswith("refused by policy") for text in results) and len(results) == 2


def test_qa_reads_then_approves(env: Env) -> None:
    env.script(
        "qa", call("read_file", path="calc.py"), call("submit_verdict", verdict="approve", reasons=["ok"])
    )
    verdict = qa.review(
        env.io,
        env.ctx("qa"),
        ITEM,
        PLAN,
        "-    return a - b\n+    return a + b\n",
        "tests: passed",
        str(env.repo),
        coder_summary="add now adds",
    )
    assert verdict.approved and verdict.reasons == ["ok"]
    first = env.requests("qa")[0]
    assert [t["function"]["name"] for t in first["tools"]] == [
        "list_files",
        "read_file",
        "search",
        "submit_verdict",
    ]
    user = first["messages"][1]["content"]
    assert "+    return a + b" in user and "tests: passed" in user and "add now adds" in user
    assert "add(2, 3) returns 5" in user


def test_qa_cannot_write_and_rejects_with_reasons(env: Env) -> None:
    env.script(
        "qa",
        call("write_file", path="calc.py", content="oops"),
        call("submit_verdict", verdict="reject", reasons=["add still subtracts"]),
    )
    verdict = qa.review(env.io, env.ctx("qa"), ITEM, PLAN, "", "tests: passed", str(env.repo))
    assert verdict.verdict == "reject" and verdict.reasons == ["add still subtracts"]
    assert (env.repo / "calc.py").read_text() == CALC
    assert [(h.tool, h.valid) for h in handoffs(env.store)] == [
        ("write_file", False),
        ("submit_verdict", True),
    ]


def test_security_reviewer_uses_its_own_prompt(env: Env) -> None:
    env.script(
        "security", call("submit_verdict", verdict="reject", reasons=["eval of user input in calc.py"])
    )
    verdict = qa.review(
        env.io, env.ctx("security"), ITEM, PLAN, "+eval(x)\n", "", str(env.repo), role="security"
    )
    assert verdict.reasons == ["eval of user input in calc.py"]
    system = env.requests("security")[0]["messages"][0]["content"]
    assert system.startswith("You are the security reviewer")


def test_budget_errors_propagate_unchanged(env: Env) -> None:
    env.io.gateway.ensure_budget(f"item:{ITEM.id}", tokens=50, usd=None)
    with pytest.raises(BudgetExhausted):
        supervisor.plan(env.io, env.ctx("supervisor"), ITEM, [], None)
    assert env.requests("supervisor") == [] and handoffs(env.store) == []
