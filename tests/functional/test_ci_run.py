"""Scripted runs in CI: `run --ci` / CI=true, `--json`, `--junit`, $GITHUB_STEP_SUMMARY and the exit codes.

Each exit code comes from a real run through the installed script against the scripted model server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_support import git, item, make_project, query

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.money import usd_text
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
ESC = "\x1b"
FAILING_TEST = '''import unittest


class Total(unittest.TestCase):
    def test_total(self):
        self.assertEqual(41, 42, "THE REAL ERROR: total is 41")
'''


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_") and k != "CI"
            and k != "GITHUB_STEP_SUMMARY"}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env=base | env)


def book() -> ScriptBook:
    return ScriptBook({"AS-1": PLANS["AS-1"]},
                      {("AS-1", 1): CODER[("AS-1", 1)],
                       ("AS-2", 1): [tool_call("write_file", path="shop/test_total.py", content=FAILING_TEST),
                                     tool_call("finish", summary="added the total check")],
                       ("AS-3", 1): [tool_call("write_file", path="shop/three.py", content="THREE = 3\n"),
                                     tool_call("finish", summary="three")]})


# a run of the installed script, and the folder holding its JUnit file and step summary
CiRun = tuple[subprocess.CompletedProcess[str], Path]
ITEMS = [item("AS-1", dod=[{"tests": "python -m unittest -q"}, {"review": "human"}]),
         item("AS-2", dod=[{"tests": "python -m unittest -q shop.test_total"}], rounds=1,
              scope=["shop/test_total.py"]),
         item("AS-3", dod=[], scope=["shop/three.py"])]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("ci") / "p"
    with ScriptedServer() as server:
        yield make_project(root, server, ITEMS, book())


@pytest.fixture(scope="module")
def good_run(project: Settings, tmp_path_factory: pytest.TempPathFactory) -> CiRun:
    """CI=true (no --ci flag), colours forced: AS-1 awaits review, AS-3 is done -> exit 0."""
    out = tmp_path_factory.mktemp("good")
    summary = out / "summary.md"
    summary.write_text("# earlier step\n")
    done = cli(project.root, "run", "--item", "AS-1", "--item", "AS-3", "--junit", str(out / "junit.xml"),
               CI="true", GITHUB_STEP_SUMMARY=str(summary), FORCE_COLOR="1", TERM="xterm-256color")
    return done, out


@pytest.fixture(scope="module")
def bad_run(good_run: CiRun, project: Settings, tmp_path_factory: pytest.TempPathFactory) -> CiRun:
    """--ci --json: AS-2's gate fails its only round -> escalated -> exit 1."""
    out = tmp_path_factory.mktemp("bad")
    done = cli(project.root, "run", "--ci", "--json", "--item", "AS-2", "--junit", str(out / "junit.xml"),
               GITHUB_STEP_SUMMARY=str(out / "summary.md"))
    return done, out


def test_every_item_done_or_awaiting_review_exits_0(good_run: CiRun) -> None:
    done, _ = good_run
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_output_is_plain_lines_and_a_summary_table_without_colours(good_run: CiRun) -> None:
    done, _ = good_run
    assert ESC not in done.stdout and ESC not in done.stderr, "CI=true means no colours, even if forced"
    events = done.stderr.splitlines()
    assert "AS-1: running round 1 coder" in events and "AS-1: awaiting_review round 1 qa" in events, events
    assert all(line.startswith(("AS-1: ", "AS-3: ", "warning: ")) for line in events), events
    table = done.stdout.splitlines()
    assert any("AS-1" in line and "awaiting_review" in line for line in table), done.stdout
    assert any("AS-3" in line and "done" in line for line in table), done.stdout


def test_junit_has_one_passing_testcase_per_item(good_run: CiRun) -> None:
    _, out = good_run
    suite = ET.parse(out / "junit.xml").getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures")) == ("testsuite", "2", "0")
    cases = {str(case.get("name")): case for case in suite.iter("testcase")}
    assert sorted(cases) == ["AS-1", "AS-3"] and not list(suite.iter("failure"))
    assert "AS-1 Item AS-1: awaiting_review" in (cases["AS-1"].findtext("system-out") or "")


def test_step_summary_is_appended_with_outcomes_spend_and_review_queue(good_run: CiRun) -> None:
    _, out = good_run
    text = (out / "summary.md").read_text()
    assert text.startswith("# earlier step\n## agentsprint run "), "appended, not overwritten"
    assert "**All 2 item(s) done or awaiting review**" in text
    assert "| AS-1 Item AS-1 | awaiting_review |" in text and "| AS-3 Item AS-3 | done |" in text
    assert " / 60k |" in text and " / $0.50 |" in text, "spend against each item's budget"
    queue = text.split("### Review queue", 1)[1]
    assert "**AS-1** Item AS-1: `agentsprint review show AS-1`" in queue and "AS-3" not in queue


def test_an_escalated_item_exits_1(bad_run: CiRun) -> None:
    done, _ = bad_run
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["results"] == {"AS-2": "escalated"} and report["ok"] is False


def test_json_summary_carries_spend_budget_escalation_and_review_queue(bad_run: CiRun) -> None:
    done, _ = bad_run
    report = json.loads(done.stdout)
    (outcome,) = report["items"]
    assert outcome["id"] == "AS-2" and outcome["ok"] is False and outcome["budget"]["tokens"] == 60000
    assert outcome["spent"]["tokens"] > 0 and outcome["escalation"].startswith("escalated: rounds")
    assert report["review_queue"] == ["AS-1"], "AS-1 still waits from the earlier run"


def test_junit_failure_carries_reason_and_escalation_summary(bad_run: CiRun) -> None:
    _, out = bad_run
    suite = ET.parse(out / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    failure = suite.find("testcase[@name='AS-2']/failure")
    assert failure is not None and failure.get("type") == "escalated"
    assert (failure.get("message") or "").startswith("escalated:")
    body = failure.text or ""
    assert "escalated: rounds" in body and "gates failed: tests" in body
    assert "THE REAL ERROR: total is 41" in body, "the end of the failed gate's output"
    assert "spent by coder" in body


def test_step_summary_names_what_was_not_done(bad_run: CiRun) -> None:
    _, out = bad_run
    text = (out / "summary.md").read_text()
    assert "**1 of 1 item(s) not done** (AS-2 escalated)" in text
    assert "| AS-2 Item AS-2 | escalated |" in text and "escalated: rounds" in text


@pytest.fixture(scope="module")
def sprint_run(tmp_path_factory: pytest.TempPathFactory) -> CiRun:
    """`run --sprint S1 --ci --json --junit` of a fresh project whose committed sprint file holds AS-3."""
    root, out = tmp_path_factory.mktemp("sprint") / "p", tmp_path_factory.mktemp("sprint-out")
    with ScriptedServer() as server:
        project = make_project(root, server, ITEMS, book()).root
        for args in (["sprint", "new", "S1", "--tokens", "400000", "--usd", "2", "--review-hours", "6"],
                     ["sprint", "plan", "S1", "--add", "AS-3"]):
            assert cli(project, *args).returncode == 0
        git(project, "add", "backlog/sprints/S1.yml")
        git(project, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "Plan S1")
        done = cli(project, "run", "--sprint", "S1", "--ci", "--json", "--junit", str(out / "junit.xml"),
                   GITHUB_STEP_SUMMARY=str(out / "summary.md"))
    return done, out


def test_a_sprint_run_reports_its_spend_against_the_sprint_capacity(sprint_run: CiRun) -> None:
    done, out = sprint_run
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["results"] == {"AS-3": "done"}
    assert report["capacity"] == {"tokens": 400000, "usd": 2.0, "review_hours": 6.0}
    spent = report["items"][0]["spent"]
    assert spent["tokens"] > 0 and spent["usd"] > 0
    capacity = f"{spent['tokens']:,} of 400,000 tokens, {usd_text(spent['usd'])} of $2.00, 6 review hours."
    assert f"**Sprint capacity**: {capacity}" in (out / "summary.md").read_text()
    suite = ET.parse(out / "junit.xml").getroot()
    assert [(case.get("name"), list(case.iter("failure"))) for case in suite.iter("testcase")] == [("AS-3", [])]


@pytest.mark.parametrize("args", [["--item", "AS-99"], ["--sprint", "nope"], ["--item", "AS-1", "--sprint", "x"]])
def test_a_usage_error_exits_2_before_any_spend_and_writes_no_report(
        bad_run: CiRun, project: Settings, tmp_path: Path, args: list[str]) -> None:
    calls = query(project, "SELECT COUNT(*) FROM model_calls")
    done = cli(project.root, "run", "--ci", "--junit", str(tmp_path / "junit.xml"), *args,
               GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "junit.xml").exists() and not (tmp_path / "summary.md").exists()
    assert query(project, "SELECT COUNT(*) FROM model_calls") == calls, "nothing was spent"


def test_a_configuration_error_exits_2(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-3", dod=[], scope=["shop/three.py"])], book())
    config = settings.root / "agentsprint.toml"
    config.write_text(config.read_text().replace('base_branch = "main"', 'base_branch = "trunk"'))
    done = cli(settings.root, "run", "--ci", "--json", "--junit", str(tmp_path / "junit.xml"))
    assert done.returncode == 2 and "run.base_branch" in done.stderr and done.stdout == ""
    assert not (tmp_path / "junit.xml").exists()
