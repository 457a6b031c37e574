"""The sprint runner end to end: real git, real HTTP scripted models through litellm, real SQLite, DBOS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import postgres_url  # at import: tests/security/conftest.py later takes the name
from runner_support import TEST_CONFIG, git, item, make_project, query, state_of

from agentsprint.domain import ItemType
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner import actions
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook
from agentsprint.runner.service import run_items
from agentsprint.store import runs

FIX = CODER[("AS-1", 1)]
REJECT = tool_call("submit_verdict", verdict="reject", reasons=["not good enough yet"])



def _unittest_passes(root: Path) -> bool:
    done = subprocess.run([sys.executable, "-m", "unittest", "-q"], cwd=root, capture_output=True, text=True)
    return done.returncode == 0


def test_success_awaits_review_then_approve_merges_and_tests_pass_on_base(
        tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX})
    root = tmp_path / "p"
    settings = make_project(root, server, [item("AS-1", dod=[{"tests": "python -m unittest -q"}, "secrets",
                                                             {"review": "human"}])], book)
    assert not _unittest_passes(root), "the sample must start with a failing test"

    report = run_items(settings, ["AS-1"])

    assert report.results == {"AS-1": "awaiting_review"}
    gates_dir = settings.worktrees_dir / ".gates"
    assert gates_dir.is_dir() and not any(gates_dir.iterdir()), "the gate checkout went when the item ended"
    svc = actions.open_project(settings)
    inbox = actions.review_inbox(svc)
    assert [e["id"] for e in inbox] == ["AS-1"] and inbox[0]["changed_lines"] == 2
    assert actions.approve(svc, "AS-1", reviewer="lead").value == "done"
    assert _unittest_passes(root), "after the merge the base branch's tests pass"
    assert "status: done" in (root / "backlog").glob("AS-1-*.md").__next__().read_text()
    log = git(root, "log", "--oneline", "-3", "main")
    assert "AS-1 round 1" in log and "backlog/AS-1" in log, "the work and the item file land on main"
    reviews = query(settings, "SELECT decision, reviewer, requested_at, decided_at FROM reviews")
    assert reviews[0][0] == "approve" and reviews[0][1] == "lead" and reviews[0][2] <= reviews[0][3]


def test_three_rejections_escalate_with_the_package(tmp_path: Path, server: ScriptedServer) -> None:
    coder = {("AS-1", r): [tool_call("write_file", path="shop/note.py", content=f"ROUND = {r}\n"),
                           tool_call("finish", summary=f"round {r}")] for r in (1, 2, 3)}
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, coder, {("AS-1", r): REJECT for r in (1, 2, 3)})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], rounds=3)], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "rounds"
    rounds = package["package"]["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert all(r["verdict"] == "reject" and r["reasons"] == ["not good enough yet"] for r in rounds)
    assert "ROUND = 3" in rounds[2]["diff"]
    assert {s["role"] for s in package["package"]["spend"]} == {"supervisor", "coder", "qa"}
    assert package["package"]["plan"]["steps"], "the plan is in the package"
    branch_files = git(settings.root, "show", f"{package['package']['branch']}:shop/note.py")
    assert branch_files == "ROUND = 3\n", "the work is preserved on the item branch"


def test_budget_exhaustion_escalates_without_overspending(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): [tool_call("read_file", path="shop/pagination.py"),
                                                               tool_call("list_files", path="."),
                                                               tool_call("list_files", path="shop"),
                                                               tool_call("finish", summary="x")]})
    settings = make_project(tmp_path / "p", server, [item("AS-1", tokens=2600)], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    (limit, spent, reserved), = query(settings, "SELECT limit_tokens, spent_tokens, reserved_tokens FROM budgets "
                                                "WHERE scope = 'item:AS-1'")
    assert limit == 2600 and spent + reserved <= limit
    assert query(settings, "SELECT reason FROM escalations") == [("budget",)]
    refused = query(settings, "SELECT count(*) FROM model_calls WHERE outcome = 'refused'")[0][0]
    assert refused == 1


def test_protected_test_edit_fails_the_gate(tmp_path: Path, server: ScriptedServer) -> None:
    cheat = [tool_call("write_file", path="tests/test_pagination.py", content="# all good\n"),
             tool_call("finish", summary="tests fixed")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): cheat})
    settings = make_project(tmp_path / "p", server, [item("AS-1", scope=[], rounds=1)], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    rounds = runs.rounds_of(actions.open_project(settings).store, "AS-1")
    gates = {g["name"]: g for g in rounds[0].gates}
    assert not gates["protected"]["passed"]
    assert "tests/test_pagination.py" in gates["protected"]["output"]
    assert not server.requests.get("t-qa"), "a failing gate rejects without a QA model call"


def test_path_escape_and_disallowed_command_are_refused_and_recorded(tmp_path: Path, server: ScriptedServer) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret")
    steps = [tool_call("read_file", path="../../secret.txt"), tool_call("read_file", path=str(outside)),
             tool_call("run", command="curl http://127.0.0.1:9/"), *FIX]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    settings = make_project(tmp_path / "p", server, [item("AS-1")], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

    blocks = query(settings, "SELECT data_json FROM events WHERE kind = 'policy.block'")
    kinds = sorted(json.loads(d)["kind"] for (d,) in blocks)
    assert kinds == ["command", "path", "path"]
    tool_messages = [m for m in server.requests["t-coder"][-1]["messages"] if m.get("role") == "tool"]
    assert all("top secret" not in (m.get("content") or "") for m in tool_messages)


def test_malformed_handoff_is_counted_and_recovered(tmp_path: Path, server: ScriptedServer) -> None:
    steps = [ScriptedReply(content="I will now fix the bug by editing the file."),
             tool_call("teleport", where="prod"),
             ScriptedReply(tool_calls=[tool_call("read_file", path="shop/pagination.py")], malformed_json=True),
             *FIX]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    settings = make_project(tmp_path / "p", server, [item("AS-1")], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

    malformed = query(settings, "SELECT role, error FROM handoffs WHERE valid = 0")
    assert len(malformed) == 3 and {r[0] for r in malformed} == {"coder"}
    assert query(settings, "SELECT count(*) FROM handoffs WHERE valid = 1")[0][0] >= 6
    replies_to_model = json.dumps(server.requests["t-coder"][-1]["messages"])
    assert "teleport" in replies_to_model, "the validation error was sent back to the model"


def test_provider_500s_are_retried(tmp_path: Path, server: ScriptedServer) -> None:
    server.add("t-supervisor", ScriptedReply(status=500), ScriptedReply(status=500))
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX})
    settings = make_project(tmp_path / "p", server, [item("AS-1")], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

    (retries,), = query(settings, "SELECT retries FROM model_calls WHERE role = 'supervisor' ORDER BY id LIMIT 1")
    assert retries == 2


def test_provider_down_dead_letters_the_item_with_a_clear_reason(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX})
    settings = make_project(tmp_path / "p", server, [item("AS-1")], book,
                            config=TEST_CONFIG.replace("{base}", "http://127.0.0.1:9/v1"))

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    failed = runs.open_escalations(actions.open_project(settings).store, failed=True)
    assert [e.item_id for e in failed] == ["AS-1"]
    assert "connection" in failed[0].detail.lower() or "127.0.0.1:9" in failed[0].detail


def test_a_provider_failure_reaches_the_item_with_its_kind_and_retry_count(
        tmp_path: Path, server: ScriptedServer) -> None:
    server.add("t-supervisor", *[ScriptedReply(status=500)] * 3)  # num_retries = 2: three attempts, all fail
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX})
    settings = make_project(tmp_path / "p", server, [item("AS-1")], book)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    (failed,) = runs.open_escalations(actions.open_project(settings).store, failed=True)
    assert failed.detail.startswith("server: ") and "server: server:" not in failed.detail, failed.detail
    assert failed.detail.endswith("(after 2 retries)"), failed.detail


def test_depends_on_waits_for_the_dependency(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX, ("AS-2", 1): [
        tool_call("write_file", path="shop/extra.py", content="X = 1\n"), tool_call("finish", summary="x")]})
    items = [item("AS-2", depends_on=["AS-1"], type_=ItemType.FEATURE),
             item("AS-1")]
    settings = make_project(tmp_path / "p", server, items, book)

    report = run_items(settings, ["AS-2", "AS-1"], parallel=2)

    assert report.results == {"AS-1": "done", "AS-2": "done"}
    starts = query(settings, "SELECT item_id, min(at) FROM item_transitions WHERE to_status = 'running' "
                             "GROUP BY item_id ORDER BY 2")
    ends = dict(query(settings, "SELECT item_id, max(at) FROM item_transitions WHERE to_status = 'done' "
                                "GROUP BY item_id"))
    assert [s[0] for s in starts] == ["AS-1", "AS-2"] and starts[1][1] >= ends["AS-1"]


def test_human_reject_starts_a_new_round_with_the_comment_as_finding(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX, ("AS-1", 2): [
        tool_call("write_file", path="shop/notes.py", content="NOTE = 'pages start at 1'\n"),
        tool_call("finish", summary="documented")]})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[{"review": "human"}])], book)
    assert run_items(settings, ["AS-1"]).results == {"AS-1": "awaiting_review"}

    actions.reject(actions.open_project(settings), "AS-1", "Document that pages start at 1", reviewer="lead")
    assert state_of(actions.open_project(settings).store, "AS-1").status.value == "planned"
    assert run_items(settings, ["AS-1"]).results == {"AS-1": "awaiting_review"}

    supervisor_round_2 = json.dumps(server.requests["t-supervisor"][-1]["messages"])
    assert "Document that pages start at 1" in supervisor_round_2 and "round 2" in supervisor_round_2
    detail = actions.review_detail(actions.open_project(settings), "AS-1")
    assert detail["round"] == 2 and "pages start at 1" in detail["diff"] and "page - 1" in detail["diff"]
    (decision, comment), = query(settings, "SELECT decision, comment FROM reviews")
    assert (decision, comment) == ("reject", "Document that pages start at 1")


@pytest.mark.postgres
def test_run_on_postgres_uses_its_own_executor_and_retires_it(tmp_path: Path, server: ScriptedServer) -> None:
    from worker_support import fresh_database

    base = postgres_url()
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX})
    with fresh_database(base) as url:
        config = TEST_CONFIG + f'\n[database]\nurl = "{url}"\n'
        settings = make_project(tmp_path / "p", server, [item("AS-1")], book, config=config)

        assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

        store = actions.open_project(settings).store
        with store.session() as session:
            from sqlmodel import select

            from agentsprint.store.tables import WorkerRow

            rows = session.exec(select(WorkerRow)).all()
        assert len(rows) == 1 and rows[0].executor_id != "local" and rows[0].stopped_at is not None
        store.close()


def test_shadow_run_measures_but_leaves_the_item_and_the_base_untouched(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"], "AS-2": PLANS["AS-1"]},
                      {("AS-1", 1): FIX, ("AS-2", 1): [
                          tool_call("write_file", path="shop/extra.py", content="X = 1\n"),
                          tool_call("finish", summary="x")]})
    items = [item("AS-1"), item("AS-2", depends_on=["AS-1"], dod=[], type_=ItemType.FEATURE)]
    settings = make_project(tmp_path / "p", server, items, book)
    base_before = git(settings.root, "rev-parse", "main")

    shadow = run_items(settings, ["AS-1"], shadow=True)

    assert shadow.results == {"AS-1": "done"} and "shadow" in shadow.notes["AS-1"]
    assert git(settings.root, "rev-parse", "main") == base_before, "a shadow run never merges"
    assert "status: todo" in next((settings.root / "backlog").glob("AS-1-*.md")).read_text()
    assert state_of(actions.open_project(settings).store, "AS-1").status.value == "todo"
    assert f"agentsprint-shadow/AS-1/{shadow.run_id}" in git(settings.root, "branch", "--list", "agentsprint-shadow/*")
    spent = query(settings, "SELECT count(*) FROM model_calls WHERE item_id = 'AS-1' AND outcome = 'ok'")[0][0]
    assert spent >= 6, "the shadow run's spend is recorded"

    real = run_items(settings, ["AS-1", "AS-2"])

    assert real.results == {"AS-1": "done", "AS-2": "done"}, "the real run is not blocked by the shadow one"
    assert "(page - 1) * per_page" in (settings.root / "shop" / "pagination.py").read_text()
