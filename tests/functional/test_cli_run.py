"""The run, demo, review and escalations commands through the installed `agentsprint` script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_support import item, make_project

from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")


def cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_demo_runs_the_whole_flow_offline_in_under_a_minute(tmp_path: Path) -> None:
    started = time.monotonic()
    done = cli(tmp_path, "demo", "--dir", str(tmp_path / "demo"))
    seconds = time.monotonic() - started

    assert done.returncode == 0, done.stdout + done.stderr
    assert seconds < 60
    for expected in ("AS-1: done", "AS-2: done", "AS-3: escalated", "AS-4: awaiting_review", "Worktrees:",
                     "Review inbox:", "Events:"):
        assert expected in done.stdout
    demo = tmp_path / "demo"
    inbox = json.loads(cli(demo, "review", "list", "--json").stdout)
    assert [e["id"] for e in inbox] == ["AS-4"]
    package = json.loads(cli(demo, "escalations", "show", "AS-3", "--json").stdout)
    assert package["reason"] == "budget" and package["package"]["spend"]
    assert cli(tmp_path, "demo", "--dir", str(demo)).returncode == 2, "a non-empty folder is refused"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    book = ScriptBook({"AS-1": PLANS["AS-1"], "AS-2": PLANS["AS-1"]},
                      {("AS-1", 1): CODER[("AS-1", 1)],
                       ("AS-2", 1): [tool_call("write_file", path="shop/x.py", content="X = 1\n"),
                                     tool_call("finish", summary="x")]},
                      {("AS-2", 1): tool_call("submit_verdict", verdict="reject", reasons=["no"])})
    with ScriptedServer() as server:
        items = [item("AS-1", dod=[{"tests": "python -m unittest -q"}, {"review": "human"}]),
                 item("AS-2", dod=[], scope=["shop/x.py"], rounds=1)]
        yield make_project(tmp_path / "p", server, items, book).root


def test_run_json_junit_review_and_escalations(project: Path, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    done = cli(project, "run", "--ci", "--json", "--junit", str(junit), "--parallel", "2")

    assert done.returncode == 1, "an escalated item means work not done"
    report = json.loads(done.stdout)
    assert report["results"] == {"AS-1": "awaiting_review", "AS-2": "escalated"} and report["ok"] is False
    assert 'failures="1"' in junit.read_text() and 'name="AS-2"' in junit.read_text()

    shown = json.loads(cli(project, "review", "show", "AS-1", "--json").stdout)
    assert shown["added"] == 1 and shown["removed"] == 1 and "page - 1" in shown["diff"]
    assert cli(project, "review", "reject", "AS-1", "-m", "  ").returncode == 1, "a rejection needs a comment"
    assert cli(project, "review", "approve", "AS-1").returncode == 0
    assert cli(project, "review", "approve", "AS-1").returncode == 1, "approving twice is refused"

    listed = json.loads(cli(project, "escalations", "list", "--json").stdout)
    assert [(e["id"], e["reason"]) for e in listed] == [("AS-2", "rounds")]
    assert cli(project, "escalations", "retry", "AS-2", "--add-rounds", "2", "--add-tokens", "1000").returncode == 0
    again = json.loads(cli(project, "run", "--ci", "--json", "--item", "AS-2").stdout)
    assert again["results"] == {"AS-2": "done"}, "QA approves round 2 (it rejected only round 1)"
    shown = json.loads(cli(project, "show", "AS-2", "--json").stdout)
    assert shown["status"] == "done" and shown["rounds"] == 2, "the retry continued from round 1's work"
    assert json.loads(cli(project, "escalations", "list", "--json").stdout) == []


def test_run_with_unknown_item_is_a_usage_error(project: Path) -> None:
    done = cli(project, "run", "--item", "AS-99")
    assert done.returncode == 2 and "AS-99" in done.stderr


def test_stop_with_nothing_running(project: Path) -> None:
    done = cli(project, "stop")
    assert done.returncode == 0 and "nothing was running" in done.stdout


def test_demo_on_a_terminal_draws_the_live_board(tmp_path: Path) -> None:
    """On a TTY the run shows a rich Live board (the path CI logs and pipes never take)."""
    import pty

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")} | {"COLUMNS": "140",
                                                                                         "TERM": "xterm"}
    proc = subprocess.Popen([AGENTSPRINT, "demo", "--dir", str(tmp_path / "demo")], stdin=follower,
                            stdout=follower, stderr=follower, env=env, cwd=tmp_path, close_fds=True)
    os.close(follower)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            output += chunk
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
        os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode("utf-8", errors="replace")).replace("\r", "")
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and "tokens / budget" in text and "AS-2: done (ok)" in text


def test_a_base_branch_that_does_not_exist_is_a_config_error(project: Path) -> None:
    config = project / "agentsprint.toml"
    config.write_text(config.read_text().replace('base_branch = "main"', 'base_branch = "trunk"'))
    done = cli(project, "run", "--item", "AS-1")
    assert done.returncode == 2 and "run.base_branch" in done.stderr and "trunk" in done.stderr
    assert json.loads(cli(project, "show", "AS-1", "--json").stdout)["status"] == "todo", "no item was touched"


def test_run_with_nothing_to_do_says_so(tmp_path: Path) -> None:
    from agentsprint.runner.demo import create_sample

    create_sample(tmp_path / "p", "http://127.0.0.1:9/v1", items=[])
    done = cli(tmp_path / "p", "run", "--ci")
    assert done.returncode == 0 and "nothing to run" in done.stdout
