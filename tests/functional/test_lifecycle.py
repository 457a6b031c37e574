"""Item files and runs that tell the truth: shadow spend, drop, run selection, blocked merges, top-ups.

Real git repositories, the scripted HTTP model server, real SQLite, DBOS and the installed CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runner_support import git, item, make_project, query, state_of

from agentsprint.config import Settings
from agentsprint.domain import Item, ItemType, Status
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner import actions
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook
from agentsprint.runner.service import RunReport, run_items
from agentsprint.store.items import transition

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
FIX = CODER[("AS-1", 1)]
REJECT = tool_call("submit_verdict", verdict="reject", reasons=["not good enough yet"])


def cli(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def requests_made(server: ScriptedServer) -> int:
    return sum(len(bodies) for bodies in server.requests.values())


def item_file(root: Path, item_id: str) -> Path:
    return next((root / "backlog").glob(f"{item_id}-*.md"))


def note_writer(name: str) -> list[dict[str, object]]:
    return [tool_call("write_file", path=f"shop/{name}.py", content="X = 1\n"), tool_call("finish", summary="x")]



# --- promise 3: shadow runs ---------------------------------------------------------------------------


def test_shadow_spend_has_its_own_scope_and_the_real_run_starts_at_round_one(
        tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX})
    settings = make_project(tmp_path / "p", server, [item("AS-1")], book)

    shadow = run_items(settings, ["AS-1"], shadow=True)

    assert shadow.results == {"AS-1": "done"}
    branch = f"agentsprint-shadow/AS-1/{shadow.run_id}"
    assert branch in shadow.notes["AS-1"], "the note names the archived branch"
    charged = dict(query(settings, "SELECT scope, spent_tokens FROM budgets"))
    assert charged.get("item:AS-1", 0) == 0, f"the shadow run charged the item's real budget: {charged}"
    shadow_scope = f"shadow:{shadow.run_id}:item:AS-1"
    assert charged.get(shadow_scope, 0) > 0, "the shadow spend is recorded under its own scope"
    limit = query(settings, "SELECT limit_tokens FROM budgets WHERE scope = ?", shadow_scope)[0][0]
    assert limit == 60000, "the shadow scope has the item's limits"
    shown = json.loads(cli(settings.root, "show", "AS-1", "--json").stdout)
    assert shown["spent"]["tokens"] == 0 and shown["shadow_spent"]["tokens"] == charged[shadow_scope]

    real = run_items(settings, ["AS-1"])

    assert real.results == {"AS-1": "done"}
    assert state_of(actions.open_project(settings).store, "AS-1").round == 1, \
        "the real run starts at round 1, not after the shadow's rounds"


def test_shadow_run_stops_at_the_items_budget_without_charging_it(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): [tool_call("read_file", path="shop/pagination.py"),
                                                               tool_call("list_files", path="."),
                                                               tool_call("list_files", path="shop"),
                                                               tool_call("finish", summary="x")]})
    settings = make_project(tmp_path / "p", server, [item("AS-1", tokens=2600)], book)

    shadow = run_items(settings, ["AS-1"], shadow=True)

    assert shadow.results == {"AS-1": "escalated"}, "a shadow run still stops at the item's budget"
    (limit, spent, reserved), = query(settings, "SELECT limit_tokens, spent_tokens, reserved_tokens FROM budgets "
                                                "WHERE scope = ?", f"shadow:{shadow.run_id}:item:AS-1")
    assert limit == 2600 and 0 < spent + reserved <= limit
    real_rows = query(settings, "SELECT spent_tokens FROM budgets WHERE scope = 'item:AS-1'")
    assert real_rows in ([], [(0,)]), "nothing charged to the real item budget"


def test_shadow_note_in_json_and_junit_names_the_branch(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX})
    settings = make_project(tmp_path / "p", server, [item("AS-1")], book)
    junit = tmp_path / "report.xml"

    done = cli(settings.root, "run", "--ci", "--json", "--shadow", "--item", "AS-1", "--junit", str(junit))

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    branch = f"agentsprint-shadow/AS-1/{report['run_id']}"
    assert branch in report["notes"]["AS-1"]
    assert branch in junit.read_text()
    assert branch in git(settings.root, "branch", "--list", "agentsprint-shadow/*")


# --- promise 4: drop, selection by live status, overlap warnings, exit code ---------------------------


def _escalating_project(
        tmp_path: Path, server: ScriptedServer, ids: list[str], extra: list[Item] | None = None) -> Settings:
    book = ScriptBook({i: PLANS["AS-1"] for i in ids}, {(i, 1): note_writer(i.lower().replace("-", "")) for i in ids},
                      {(i, 1): REJECT for i in ids})
    items = [item(i, dod=[], rounds=1, type_=ItemType.FEATURE) for i in ids] + (extra or [])
    return make_project(tmp_path / "p", server, items, book)


def test_drop_writes_dropped_into_the_committed_item_file(tmp_path: Path, server: ScriptedServer) -> None:
    settings = _escalating_project(tmp_path, server, ["AS-1"])
    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    done = cli(settings.root, "escalations", "drop", "AS-1")

    assert done.returncode == 0, done.stderr
    path = item_file(settings.root, "AS-1").relative_to(settings.root).as_posix()
    assert "status: dropped" in git(settings.root, "show", f"main:{path}"), "committed on the base branch"
    assert "status: dropped" in (settings.root / path).read_text(), "and in the checked-out file"
    assert git(settings.root, "status", "--porcelain") == "", "nothing left uncommitted"
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(settings.root), str(clone))
    listed = json.loads(cli(clone, "list", "--json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [("AS-1", "dropped")], "a fresh clone does not run it"


def test_drop_refuses_when_the_item_file_has_uncommitted_changes(tmp_path: Path, server: ScriptedServer) -> None:
    settings = _escalating_project(tmp_path, server, ["AS-1"])
    run_items(settings, ["AS-1"])
    path = item_file(settings.root, "AS-1")
    path.write_text(path.read_text() + "\nmy unsaved note\n")

    done = cli(settings.root, "escalations", "drop", "AS-1")

    assert done.returncode == 1 and "uncommitted" in done.stderr and "Traceback" not in done.stderr
    assert "my unsaved note" in path.read_text(), "nothing lost"
    assert json.loads(cli(settings.root, "show", "AS-1", "--json").stdout)["status"] == "escalated"


def test_bare_run_takes_only_runnable_items_and_exits_by_what_it_ran(tmp_path: Path, server: ScriptedServer) -> None:
    settings = _escalating_project(tmp_path, server, ["AS-1", "AS-2", "AS-3"])
    assert run_items(settings, ["AS-1", "AS-2", "AS-3"]).results == {i: "escalated" for i in ("AS-1", "AS-2",
                                                                                                "AS-3")}
    assert cli(settings.root, "escalations", "drop", "AS-1").returncode == 0
    before = requests_made(server)

    done = cli(settings.root, "run", "--ci", "--json")

    assert done.returncode == 0, "nothing was executed, so nothing failed: " + done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["results"] == {}, "escalated and dropped items are not run or reported again"
    assert report["skipped"] == {"AS-1": "dropped", "AS-2": "escalated", "AS-3": "escalated"}
    assert requests_made(server) == before
    plain = cli(settings.root, "run", "--ci")
    assert plain.returncode == 0
    lines = [line for line in (plain.stdout + plain.stderr).splitlines() if "skipped" in line]
    assert lines == ["skipped 3 items: 2 escalated, 1 dropped"], plain.stdout + plain.stderr


def test_bare_run_uses_the_live_status_not_the_file(tmp_path: Path, server: ScriptedServer) -> None:
    settings = _escalating_project(tmp_path, server, ["AS-1", "AS-2"])
    svc = actions.open_project(settings)
    with svc.store.session() as session:  # dropped in the store; the file (not yet updated) says todo
        transition(session, "AS-1", Status.DROPPED, item=actions.load_item(svc, "AS-1"))
    assert "status: todo" in item_file(settings.root, "AS-1").read_text()

    report = run_items(settings)

    assert report.results == {"AS-2": "escalated"} and report.skipped == {"AS-1": "dropped"}


def test_overlap_warnings_are_one_grouped_line_among_this_runs_items(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({i: PLANS["AS-1"] for i in ("AS-1", "AS-2", "AS-3", "AS-4")},
                      {(i, 1): note_writer(i.lower().replace("-", "")) for i in ("AS-1", "AS-2", "AS-3", "AS-4")},
                      {("AS-4", 1): REJECT})
    items = [item(i, dod=[], rounds=1, type_=ItemType.FEATURE) for i in ("AS-1", "AS-2", "AS-3", "AS-4")]
    settings = make_project(tmp_path / "p", server, items, book)
    assert run_items(settings, ["AS-4"]).results == {"AS-4": "escalated"}

    report = run_items(settings)

    assert report.results == {"AS-1": "done", "AS-2": "done", "AS-3": "done"}
    overlap = [w for w in report.warnings if "overlap" in w]
    assert len(overlap) == 1, report.warnings
    assert "AS-1, AS-2, AS-3" in overlap[0] and "AS-4" not in overlap[0]


def test_the_cli_prints_the_overlap_warning_once_before_any_item_starts(tmp_path: Path, server: ScriptedServer) -> None:
    ids = ("AS-1", "AS-2", "AS-3")
    book = ScriptBook({i: PLANS["AS-1"] for i in ids}, {(i, 1): note_writer(i.lower().replace("-", "")) for i in ids})
    settings = make_project(tmp_path / "p", server, [item(i, dod=[], type_=ItemType.FEATURE) for i in ids], book)

    done = cli(settings.root, "run", "--ci")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    warned = [n for n, line in enumerate(lines) if "overlapping scopes" in line]
    assert len(warned) == 1, done.stderr
    first_item = next(n for n, line in enumerate(lines) if line.startswith(ids))
    assert warned[0] < first_item, "the warning comes when the run starts"


# --- promise 5: a merge refused for the user's uncommitted file --------------------------------------


def _blocked_merge(tmp_path: Path, server: ScriptedServer) -> tuple[Settings, Path, RunReport]:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): FIX})
    settings = make_project(tmp_path / "p", server, [item("AS-1")], book)
    user_file = settings.root / "shop" / "pagination.py"
    user_file.write_text(user_file.read_text() + "# my local experiment\n")
    report = run_items(settings, ["AS-1"])
    return settings, user_file, report


def test_a_merge_refused_for_an_uncommitted_file_waits_and_the_next_run_merges_without_a_model_call(
        tmp_path: Path, server: ScriptedServer) -> None:
    settings, user_file, report = _blocked_merge(tmp_path, server)

    assert report.results == {"AS-1": "awaiting_review"}, report.notes
    assert "uncommitted" in report.notes["AS-1"] and "shop/pagination.py" in report.notes["AS-1"]
    state = state_of(actions.open_project(settings).store, "AS-1")
    assert state.reason == "merge_blocked"
    assert "# my local experiment" in user_file.read_text(), "the user's change is untouched"
    paid = requests_made(server)

    still = run_items(settings)
    assert still.results == {"AS-1": "awaiting_review"}, "still dirty: still waiting"
    git(settings.root, "checkout", "--", "shop/pagination.py")
    merged = run_items(settings)

    assert merged.results == {"AS-1": "done"}, merged.notes
    assert requests_made(server) == paid, "merging approved work makes no model call"
    assert "(page - 1) * per_page" in user_file.read_text()
    assert "status: done" in item_file(settings.root, "AS-1").read_text()


def test_review_approve_merges_a_blocked_item_once_the_tree_is_clean(tmp_path: Path, server: ScriptedServer) -> None:
    settings, _, report = _blocked_merge(tmp_path, server)
    assert report.results == {"AS-1": "awaiting_review"}
    paid = requests_made(server)

    refused = cli(settings.root, "review", "approve", "AS-1")
    assert refused.returncode == 1 and "uncommitted" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
    git(settings.root, "checkout", "--", "shop/pagination.py")
    approved = cli(settings.root, "review", "approve", "AS-1")

    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert json.loads(cli(settings.root, "show", "AS-1", "--json").stdout)["status"] == "done"
    assert requests_made(server) == paid


# --- promise 8: budget top-ups in show and list ------------------------------------------------------


def test_show_and_list_report_the_effective_budget_after_a_top_up(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): [tool_call("read_file", path="shop/pagination.py"),
                                                               tool_call("list_files", path="."),
                                                               tool_call("list_files", path="shop"),
                                                               tool_call("finish", summary="x")]})
    settings = make_project(tmp_path / "p", server, [item("AS-1", tokens=2600, usd=None)], book)
    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    assert cli(settings.root, "escalations", "retry", "AS-1", "--add-tokens", "30000").returncode == 0

    shown = json.loads(cli(settings.root, "show", "AS-1", "--json").stdout)
    assert shown["budget"]["tokens"] == 32600, "the effective limit"
    assert shown["budget_original"]["tokens"] == 2600 and shown["budget_added"]["tokens"] == 30000
    assert shown["spent"]["tokens"] <= shown["budget"]["tokens"]
    listed = json.loads(cli(settings.root, "list", "--json").stdout)
    assert listed[0]["budget"]["tokens"] == 32600 and listed[0]["budget_added"]["tokens"] == 30000
    page = cli(settings.root, "show", "AS-1").stdout
    assert "32.6k tok" in page and "+30k tok" in page and "2.6k tok" in page
    table = cli(settings.root, "list").stdout
    assert "32.6k tok" in table and "+30k" in table
