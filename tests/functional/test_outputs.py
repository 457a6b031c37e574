"""What a person reads: review and escalation pages, gate output, `show`/`list`, `init`, `clean`, `worker`.

Real runs through the installed `agentsprint` script against the scripted model server, real git
repositories and the real SQLite store.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_support import git, item, make_project, query

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
ESC = "\x1b"
# A test module the coder adds under shop/ (its scope): unittest finds it, prints 60 coloured lines,
# and fails with the one line that matters at the very end.
NOISY_TEST = '''import sys
import unittest


class Noisy(unittest.TestCase):
    def test_noise(self):
        esc = chr(27)
        for n in range(60):
            sys.stderr.write(esc + "[32mprogress line %d" % n + esc + "[0m\\n")
        self.fail(esc + "[31mTHE REAL ERROR: total is 41, expected 42" + esc + "[0m")
'''


def cli(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One run: AS-1 awaits review, AS-2 escalates on a noisy coloured gate, AS-3 is done."""
    book = ScriptBook({"AS-1": PLANS["AS-1"]},
                      {("AS-1", 1): CODER[("AS-1", 1)],
                       ("AS-2", 1): [tool_call("write_file", path="shop/test_noisy.py", content=NOISY_TEST),
                                     tool_call("finish", summary="added a check")],
                       ("AS-3", 1): [tool_call("write_file", path="shop/three.py", content="THREE = 3\n"),
                                     tool_call("finish", summary="three")]})
    root = tmp_path_factory.mktemp("outputs") / "p"
    with ScriptedServer() as server:
        items = [item("AS-1", dod=[{"tests": "python -m unittest -q"}, {"review": "human"}]),
                 item("AS-2", dod=[{"tests": "python -m unittest -q shop.test_noisy"}], rounds=1,
                      scope=["shop/test_noisy.py"]),
                 item("AS-3", dod=[], scope=["shop/three.py"])]
        settings = make_project(root, server, items, book)
        done = cli(root, "run", "--ci", "--json")
        report = json.loads(done.stdout)
        assert report["results"] == {"AS-1": "awaiting_review", "AS-2": "escalated", "AS-3": "done"}, done.stderr
        yield settings


def test_gate_output_is_stored_without_colour_codes(ran: Settings) -> None:
    packages = [json.loads(row[0]) for row in query(ran, "SELECT package_json FROM escalations WHERE item_id = 'AS-2'")]
    outputs = [gate["output"] for rnd in packages[0]["rounds"] for gate in rnd["gates"] if gate["name"] == "tests"]
    assert outputs and "THE REAL ERROR" in outputs[0], "the gate's output is in the package"
    assert ESC not in outputs[0] and not re.search(r"(^|: )\[[0-9;]*m", outputs[0], re.M), "colour codes stored"
    shown = cli(ran.root, "escalations", "show", "AS-2")
    assert ESC not in shown.stdout and "[32m" not in shown.stdout


def test_escalations_show_prints_the_end_of_the_gate_output_and_plain_plurals_and_money(ran: Settings) -> None:
    shown = cli(ran.root, "escalations", "show", "AS-2")

    assert shown.returncode == 0, shown.stderr
    assert "THE REAL ERROR: total is 41, expected 42" in shown.stdout, "the error at the end is shown"
    assert "progress line 59" in shown.stdout and "progress line 0\n" not in shown.stdout
    assert not re.search(r"\b1 calls\b", shown.stdout)
    assert re.search(r"in \d+ calls?\b", shown.stdout)
    amounts = re.findall(r"\$\d[\d,]*\.(\d+)", shown.stdout)
    assert amounts and all(len(decimals) in (2, 3, 4) for decimals in amounts), shown.stdout
    package = json.loads(cli(ran.root, "escalations", "show", "AS-2", "--json").stdout)["package"]
    assert all(len(repr(s["usd"]).split(".")[-1]) <= 6 for s in package["spend"]), package["spend"]


def test_review_show_piped_to_a_file_applies_with_git(ran: Settings, tmp_path: Path) -> None:
    patch = tmp_path / "AS-1.patch"
    with patch.open("w") as out:
        done = subprocess.run([AGENTSPRINT, "review", "show", "AS-1"], cwd=ran.root, stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = patch.read_text()
    assert "page - 1" in text and "│" not in text and ESC not in text
    check = subprocess.run(["git", "apply", "--check", str(patch)], cwd=ran.root, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr + text


def test_show_finds_ids_in_any_case_and_says_not_found(ran: Settings) -> None:
    lower = cli(ran.root, "show", "as-3", "--json")
    assert lower.returncode == 0 and json.loads(lower.stdout)["id"] == "AS-3"
    missing = cli(ran.root, "show", "AS-99")
    assert missing.returncode == 2 and "AS-99 not found" in missing.stderr and "valid" not in missing.stderr
    spent = json.loads(lower.stdout)["spent"]["usd"]
    assert spent > 0 and spent == round(spent, 6), "USD in JSON is rounded to a millionth"


def test_list_accepts_the_board_status_queued(ran: Settings) -> None:
    listed = cli(ran.root, "list", "--status", "queued", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [], "nothing waits to start after the run"


def test_a_resolved_escalation_is_not_shown_as_open(ran: Settings, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(ran.root), str(copy)], check=True)
    assert cli(copy, "escalations", "retry", "AS-2", "--add-rounds", "1").returncode == 0
    shown = cli(copy, "escalations", "show", "AS-2")
    assert "resolved" in shown.stdout.splitlines()[0], shown.stdout
    assert not shown.stdout.startswith("AS-2 escalated:")


def test_clean_removes_done_and_keeps_waiting_and_escalated_work(ran: Settings) -> None:
    """Last of the tests on `ran`: it removes AS-3's work."""
    root = ran.root
    before = git(root, "branch", "--list", "agentsprint/*")
    assert all(f"agentsprint/AS-{n}" in before for n in (1, 2, 3)), before

    dry = cli(root, "clean", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove AS-3" in dry.stdout and "kept AS-1: awaiting_review" in dry.stdout
    assert "kept AS-2: escalated" in dry.stdout
    assert git(root, "branch", "--list", "agentsprint/*") == before, "--dry-run changed nothing"

    done = cli(root, "clean")
    assert done.returncode == 0 and "removed AS-3" in done.stdout, done.stdout + done.stderr
    after = git(root, "branch", "--list", "agentsprint/*")
    assert "agentsprint/AS-3" not in after and "agentsprint/AS-1" in after and "agentsprint/AS-2" in after
    assert "AS-3" not in git(root, "worktree", "list")
    assert (root / ".agentsprint" / "worktrees" / "AS-1").is_dir()


def test_clean_keeps_a_done_item_whose_worktree_has_uncommitted_changes(tmp_path: Path) -> None:
    book = ScriptBook({}, {("AS-3", 1): [tool_call("write_file", path="shop/three.py", content="THREE = 3\n"),
                                         tool_call("finish", summary="three")]})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-3", dod=[], scope=["shop/three.py"])], book)
        assert json.loads(cli(settings.root, "run", "--ci", "--json").stdout)["results"] == {"AS-3": "done"}
    worktree = settings.worktrees_dir / "AS-3"
    if not worktree.is_dir():
        git(settings.root, "worktree", "add", "-q", str(worktree), "agentsprint/AS-3")
    (worktree / "notes.txt").write_text("mine, not committed\n")

    done = cli(settings.root, "clean")
    assert "kept AS-3: done, but its worktree has uncommitted changes" in done.stdout, done.stdout + done.stderr
    assert (worktree / "notes.txt").is_file() and "agentsprint/AS-3" in git(settings.root, "branch")


class TestInit:
    def test_init_on_master_writes_master_and_run_accepts_it(self, tmp_path: Path) -> None:
        repo = tmp_path / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "master")
        (repo / "README.md").write_text("x\n")
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "first")

        done = cli(repo, "init")
        assert done.returncode == 0, done.stderr
        assert re.search(r'^base_branch = "master"$', (repo / "agentsprint.toml").read_text(), re.M)
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "init")
        ran = cli(repo, "run", "--ci")
        assert ran.returncode == 0 and "base" not in ran.stderr, ran.stdout + ran.stderr

    def test_init_outside_a_git_repository_says_so(self, tmp_path: Path) -> None:
        done = cli(tmp_path, "init")
        assert done.returncode == 2 and "not a git repository" in done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / "agentsprint.toml").exists()


def test_worker_prints_a_start_line_a_line_per_item_and_a_summary(tmp_path: Path) -> None:
    from worker_support import logs, start_worker, stop_all

    book = ScriptBook({"AS-2": tool_call("submit_plan", steps=[], acceptance=[], escalate="a person decides")},
                      {("AS-1", 1): [tool_call("write_file", path="shop/one.py", content="ONE = 1\n"),
                                     tool_call("finish", summary="one")]})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], scope=["shop/one.py"]),
                                                          item("AS-2", dod=[], scope=["shop/two.py"])], book)
        assert cli(settings.root, "run", "--submit", "--item", "AS-1", "--item", "AS-2").returncode == 0
        log = tmp_path / "worker.log"
        worker = start_worker(settings.root, log, "--idle-exit", "2")
        try:
            assert worker.wait(timeout=180) == 0, logs([log])
        finally:
            stop_all([worker])
    lines = log.read_text().splitlines()
    started = r"worker \S+ serving the queue, 2 item\(s\) at once; exits after 2 s idle"
    assert lines and re.match(started, lines[0]), lines
    assert "AS-1: done (round 1)" in lines and any(line.startswith("AS-2: escalated (round") for line in lines), lines
    assert re.match(r"worker \S+ stopped: 2 items ended here \(1 done, 1 escalated\)", lines[-1]), lines


@pytest.mark.parametrize("name", ["bug", "feature", "refactor", "security"])
def test_item_templates_ask_the_coder_for_nothing_the_default_policy_forbids(name: str) -> None:
    """The default policy protects tests/**: a criterion the coder must meet cannot be "write a test"."""
    from agentsprint.backlog.service import load_template, template_path
    from agentsprint.config import Settings, templates_dir

    assert "tests/**" in Settings().policy.protected_paths
    _, body = load_template(template_path([templates_dir() / "items"], name))
    criteria = body.split("## Acceptance criteria", 1)[1].strip().splitlines()
    for criterion in criteria:
        if re.search(r"\btests?\b", criterion) and not re.search(r"\bexisting tests\b", criterion):
            assert "committed under tests/ before the run" in criterion, f"{name}: {criterion!r}"


def test_a_yaml_error_names_one_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "--allow-empty", "-m", "first")
    assert cli(repo, "init").returncode == 0
    (repo / "backlog" / "AS-1-x.md").write_text("---\nid: AS-1\ntitle: x\nbudget:\n  tokens: [1, 2\n  usd: 1\n---\nx\n")

    done = cli(repo, "validate")
    assert done.returncode == 1
    problem = done.stdout.strip().splitlines()[0]
    assert problem.startswith("backlog/AS-1-x.md:5: YAML syntax error"), problem
    assert len(re.findall(r"\bline\b \d+|:\d+:", problem)) == 1, f"two line numbers: {problem}"
