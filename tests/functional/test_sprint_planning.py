"""Sprints end to end through the CLI: new -> plan --auto -> commit -> run --sprint --ci, close, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_support import git, query
from sprint_support import plan_and_commit, sprint_project
from test_cli_run import cli

from agentsprint.config import load_settings
from agentsprint.llm.scripted import ScriptedServer


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    with ScriptedServer() as server:
        yield sprint_project(tmp_path / "p", server)


def test_plan_commit_and_run_a_sprint_in_ci(project: Path) -> None:
    plan = plan_and_commit(project, "S1", "--tokens", "200000", "--usd", "2", "--review-hours", "1")

    assert [i["id"] for i in plan["items"]] == ["AS-1", "AS-2"]
    assert plan["left_out"] == [{"id": "AS-3", "reason": "USD capacity: would be $50.00 of $2.00"},
                                {"id": "AS-4", "reason": "waits for AS-3 (not done, not in this sprint)"}]
    assert plan["capacity"]["usd"] == {"planned": 1.0, "capacity": 2.0}
    assert plan["overlaps"] == [["AS-1", "AS-2"]], "shop/** and shop/x.py may conflict"
    assert git(project, "status", "--porcelain") == "", "the plan is committed: a clean clone can run it"

    done = cli(project, "run", "--sprint", "S1", "--ci", "--json")

    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["results"] == {"AS-1": "done", "AS-2": "escalated"}
    settings = load_settings(project, environ={})
    assert query(settings, "SELECT limit_tokens, limit_usd FROM budgets WHERE scope = 'sprint:S1'") == [(200000, 2.0)]
    listed = json.loads(cli(project, "list", "--sprint", "S1", "--json").stdout)
    assert [(i["id"], i["status"]) for i in listed] == [("AS-1", "done"), ("AS-2", "escalated")]

    shown = json.loads(cli(project, "sprint", "show", "S1", "--json").stdout)
    assert [(i["id"], i["status"]) for i in shown["items"]] == [("AS-1", "done"), ("AS-2", "escalated")]
    assert shown["spent"]["tokens"] > 0 and shown["by_status"] == {"done": 1, "escalated": 1}

    assert cli(project, "sprint", "new", "S2", "--tokens", "1", "--usd", "1").returncode == 0
    closed = cli(project, "sprint", "close", "S1", "--carry-over", "S2", "--json")
    assert closed.returncode == 0, closed.stderr
    summary = json.loads(closed.stdout)
    assert (summary["items_done"], summary["unfinished"]) == (1, {"AS-2": "escalated"})
    retro = json.loads(cli(project, "retro", "--sprint", "S1", "--format", "json").stdout)
    assert summary["retro"] == {"cost_per_done_item_usd": retro["cost_per_done_item"]["usd"],
                                "first_pass_rate": retro["first_pass_rate"],
                                "handoff_validity": retro["handoff_validity"],
                                "review_wait_p90": retro["review_wait"]["p90"],
                                "wasted_usd": retro["wasted_spend"]["usd"]}, "the closing summary: the retro's headline"
    assert summary["retro"]["cost_per_done_item_usd"] > 0
    assert summary["retro"]["wasted_usd"] == 0, "AS-2 was carried over: S1 now holds only AS-1, which is done"
    assert "items: [AS-1]" in (project / "backlog/sprints/S1.yml").read_text()
    assert "state: closed" in (project / "backlog/sprints/S1.yml").read_text()
    assert "items: [AS-2]" in (project / "backlog/sprints/S2.yml").read_text()


def test_a_sprint_of_items_that_pass_exits_0(project: Path) -> None:
    plan_and_commit(project, "S1", "--tokens", "200000", "--usd", "0.6")
    assert json.loads(cli(project, "sprint", "show", "S1", "--json").stdout)["items"][0]["id"] == "AS-1"

    done = cli(project, "run", "--sprint", "S1", "--ci", "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["results"] == {"AS-1": "done"}
    closed = cli(project, "sprint", "close", "S1")
    assert closed.returncode == 0, closed.stderr
    assert "retro: cost per done item $" in closed.stdout and "first-pass rate 100" in closed.stdout, closed.stdout


def test_a_sprint_file_naming_an_unknown_item_or_a_negative_capacity_is_refused_at_its_line(project: Path) -> None:
    path = project / "backlog/sprints/S9.yml"
    path.parent.mkdir()
    text = "name: S9\ncapacity: {tokens: 100}\nitems:\n  - AS-1\n  - AS-77\n"
    path.write_text(text)

    for args in (("run", "--sprint", "S9", "--ci"), ("sprint", "plan", "S9", "--auto")):
        refused = cli(project, *args)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert "S9.yml:5: unknown item AS-77" in refused.stderr and "Traceback" not in refused.stderr
    assert path.read_text() == text, "nothing rewritten"
    listed = cli(project, "list", "--sprint", "S9", "--json")
    assert listed.returncode == 0 and "S9.yml:5: unknown item AS-77" in listed.stderr, "list reports, lists the rest"
    assert [i["id"] for i in json.loads(listed.stdout)] == ["AS-1"]
    checked = cli(project, "validate")
    assert checked.returncode == 1 and "backlog/sprints/S9.yml:5: unknown item AS-77" in checked.stdout

    path.write_text("name: S9\ncapacity:\n  tokens: 10\n  usd: -1\n")
    refused = cli(project, "sprint", "plan", "S9", "--auto")
    assert refused.returncode == 2 and "S9.yml:4: capacity.usd: must not be negative (got -1)" in refused.stderr

    made = cli(project, "sprint", "new", "S8", "--tokens", "-5", "--usd", "1")
    assert made.returncode == 2 and not (project / "backlog/sprints/S8.yml").exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["S9.yml"], "no temp file left behind"
    unknown = cli(project, "sprint", "plan", "S9", "--add", "AS-55")
    assert unknown.returncode == 2


def test_forecast_apply_rewrites_the_budget_from_history(project: Path) -> None:
    plan_and_commit(project, "S1", "--tokens", "200000", "--usd", "0.6")
    assert cli(project, "run", "--sprint", "S1", "--ci").returncode == 0
    table = json.loads(cli(project, "forecast", "--type", "bug", "--json").stdout)
    assert table[0]["type"] == "bug" and table[0]["sample"] == 1 and table[0]["tokens"]["p50"] > 0

    applied = cli(project, "forecast", "--apply", "AS-2", "--json")

    assert applied.returncode == 0, applied.stderr
    tokens = json.loads(applied.stdout)["budget"]["tokens"]
    assert tokens == -(-table[0]["tokens"]["p90"] * 12 // 10)
    assert f"tokens: {tokens}" in next((project / "backlog").glob("AS-2-*.md")).read_text()
    shown = json.loads(cli(project, "show", "AS-3", "--json").stdout)
    assert shown["forecast"]["basis"] == "type" and shown["forecast"]["sample"] == 1
    assert shown["budget_risks"] == [], "AS-3's $50 budget is far above what AS-1 cost"

    listed = cli(project, "list")
    assert listed.stdout.splitlines()[0].split()[-2:] == ["FORECAST", "p50"]
    starved = next((project / "backlog").glob("AS-4-*.md"))
    starved.write_text(starved.read_text().replace("tokens: 60000", "tokens: 10"))
    warned = cli(project, "list")
    assert "likely to escalate on budget): AS-4" in warned.stderr
    page = cli(project, "show", "AS-4").stdout
    assert "forecast  p50" in page and "budget below the forecast p50 (tokens)" in page


def test_sprint_show_has_the_review_queue_against_review_hours(tmp_path: Path) -> None:
    from runner_support import item

    with ScriptedServer() as server:
        root = sprint_project(tmp_path / "p", server,
                              [item("AS-1", dod=[{"tests": "python -m unittest -q"}, {"review": "human"}])])
        plan_and_commit(root, "S1", "--tokens", "200000", "--usd", "1", "--review-hours", "0.5")
        assert cli(root, "sprint", "start", "S1").returncode == 0
        assert cli(root, "sprint", "start", "S1").returncode == 2, "only a planned sprint starts"

        assert cli(root, "run", "--sprint", "S1", "--ci").returncode == 0

        shown = json.loads(cli(root, "sprint", "show", "S1", "--json").stdout)
        (waiting,) = shown["review_queue"]["items"]
        assert waiting["id"] == "AS-1" and waiting["changed_lines"] > 0
        assert shown["review_queue"]["hours"] == round(waiting["changed_lines"] / 400, 2)
        assert shown["review_queue"]["capacity"] == 0.5 and shown["state"] == "active"
        listed = json.loads(cli(root, "sprint", "list", "--json").stdout)
        assert [(s["name"], s["by_status"]) for s in listed] == [("S1", {"awaiting_review": 1})]


def test_epics_are_files_with_their_items_and_spend(project: Path) -> None:
    made = cli(project, "epic", "new", "billing", "--tokens", "1000", "--usd", "2", "--title", "Billing")
    assert made.returncode == 0 and (project / "backlog/epics/billing.yml").is_file()
    assert cli(project, "epic", "new", "billing", "--tokens", "1", "--usd", "1").returncode == 2
    for path in (project / "backlog").glob("AS-[12]-*.md"):
        path.write_text(path.read_text().replace("status: todo", "status: todo\nepic: billing"))

    (shown,) = json.loads(cli(project, "epic", "list", "--json").stdout)
    assert shown["budget"] == {"tokens": 1000, "usd": 2.0} and [i["id"] for i in shown["items"]] == ["AS-1", "AS-2"]
    assert json.loads(cli(project, "epic", "show", "billing", "--json").stdout) == shown
    assert cli(project, "epic", "show", "nope").returncode == 2

    assert cli(project, "sprint", "new", "S1", "--tokens", "999999", "--usd", "99").returncode == 0
    plan = json.loads(cli(project, "sprint", "plan", "S1", "--auto", "--json").stdout)
    (epic,) = plan["epics"]
    assert epic["epic"] == "billing" and epic["items"] == ["AS-1", "AS-2"]
    assert any(w.startswith("epic billing: spent plus this plan's forecast is 120,000 of 1,000 tokens")
               for w in plan["warnings"])
