"""agentsprint's own git calls never run code planted in the repository's git folder (finding 1).

An attacker who could write the main repository's `.git` (a coder following its worktree's `.git`
file, before the sandbox existed) plants hooks, `core.hooksPath`, `core.fsmonitor`, filter and merge
drivers. Each planted program records that it ran and dumps its environment. A real
run through the installed CLI (commit, gate checkout) and `review approve` (a merge commit into the
checked-out base) must run none of them; then plain git, as the user runs it, shows the plants work.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runner_support import git, item, make_project

from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.workspace import Workspace

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
KEY = "sk-" + "live0hooks0123456789abcdefghij0123"
HOOKS = ("reference-transaction", "post-commit", "post-checkout", "post-merge", "pre-commit",
         "pre-merge-commit", "prepare-commit-msg", "commit-msg", "post-rewrite", "pre-auto-gc",
         "post-index-change")
NOTES = "".join(f"line {n}\n" for n in range(1, 11))


def _script(path: Path, markers: Path, label: str, tail: str = "exit 0") -> Path:
    """An executable that leaves `<markers>/<label>-<pid>` holding its environment, then runs `tail`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nenv > "{markers}/{label}-$$"\n{tail}\n', encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _plant_hooks(root: Path, markers: Path) -> None:
    for hook in HOOKS:
        _script(root / ".git" / "hooks" / hook, markers, hook, "cat >/dev/null 2>&1 </dev/null; exit 0")


def _plant_hooks_path(root: Path, markers: Path) -> None:
    folder = root.parent / "attacker-hooks"
    for hook in HOOKS:
        _script(folder / hook, markers, f"hookspath-{hook}")
    git(root, "config", "core.hooksPath", str(folder))


def _plant_fsmonitor(root: Path, markers: Path) -> None:
    monitor = _script(root.parent / "attacker" / "fsmonitor", markers, "fsmonitor", "exit 1")
    git(root, "config", "core.fsmonitor", str(monitor))


def _plant_attributes(root: Path, line: str) -> None:
    info = root / ".git" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "attributes").write_text(line + "\n", encoding="utf-8")


def _plant_filter(root: Path, markers: Path) -> None:
    driver = _script(root.parent / "attacker" / "filter", markers, "filter", "cat")
    for key in ("clean", "smudge"):
        git(root, "config", f"filter.evil.{key}", str(driver))
    git(root, "config", "filter.evil.required", "true")
    _plant_attributes(root, "* filter=evil")


def _plant_branch_filter(root: Path, markers: Path) -> None:
    """A filter that only exists on item branches, through a conditional include."""
    driver = _script(root.parent / "attacker" / "filter", markers, "branch-filter", "cat")
    included = root.parent / "attacker" / "items.cfg"
    included.write_text(f'[filter "evil"]\n\tclean = {driver}\n\tsmudge = {driver}\n', encoding="utf-8")
    git(root, "config", "includeIf.onbranch:agentsprint/**.path", str(included))
    _plant_attributes(root, "* filter=evil")


def _plant_merge_driver(root: Path, markers: Path) -> None:
    driver = _script(root.parent / "attacker" / "merge", markers, "merge-driver", "exit 0")
    git(root, "config", "merge.evil.driver", f"{driver} %O %A %B")
    _plant_attributes(root, "* merge=evil")


PLANTS: dict[str, Callable[[Path, Path], None]] = {
    "hooks": _plant_hooks, "hooks_path": _plant_hooks_path, "fsmonitor": _plant_fsmonitor,
    "filter": _plant_filter, "branch_filter": _plant_branch_filter, "merge_driver": _plant_merge_driver,
}


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI with provider keys and a secret in its environment, as a user's shell has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    env.update(OPENAI_API_KEY=KEY, ANTHROPIC_API_KEY=KEY, DEPLOY_TOKEN=KEY)
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def dumps(markers: Path) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8", errors="replace") for path in sorted(markers.iterdir())}


def _clear(markers: Path) -> None:
    for path in markers.iterdir():
        path.unlink()


def _assert_nothing_ran(markers: Path, when: str) -> None:
    ran = dumps(markers)
    leaked = sorted(name for name, text in ran.items() if KEY in text)
    assert not ran, f"{when}: repository-controlled programs ran: {sorted(ran)}; with the provider key: {leaked}"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    steps = [tool_call("edit_file", path="shop/notes.txt", old="line 1\n", new="line one\n"),
             tool_call("finish", summary="first line spelled out")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    with ScriptedServer() as server:
        gates = [{"tests": "python -m unittest -q tests.test_pricing"}, {"review": "human"}]
        root = make_project(tmp_path / "p", server, [item("AS-1", dod=gates)], book).root
        (root / "shop" / "notes.txt").write_text(NOTES, encoding="utf-8")
        git(root, "add", "shop/notes.txt")
        git(root, "commit", "-q", "-m", "notes")
        yield root


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_agentsprint_git_calls_run_no_repository_controlled_code(project: Path, tmp_path: Path, plant: str) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    PLANTS[plant](project, markers)

    done = cli(project, "run", "--item", "AS-1")
    shown = json.loads(cli(project, "show", "AS-1", "--json").stdout)
    assert shown["status"] == "awaiting_review", done.stdout + done.stderr
    _assert_nothing_ran(markers, "agentsprint run (worktree, commits, gate checkout)")

    notes = project / "shop" / "notes.txt"  # the user moves main on: approving needs a real merge
    notes.write_text(NOTES.replace("line 10\n", "line ten\n"), encoding="utf-8")
    git(project, "commit", "-q", "-am", "user: last line spelled out")
    user_tip = git(project, "rev-parse", "main").strip()
    item_tip = git(project, "rev-parse", "agentsprint/AS-1").strip()
    _clear(markers)

    approved = cli(project, "review", "approve", "AS-1")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    _assert_nothing_ran(markers, "agentsprint review approve (merge commit into the checked-out main)")
    assert notes.read_text(encoding="utf-8") == NOTES.replace("line 1\n", "line one\n").replace(
        "line 10\n", "line ten\n"), "both sides' changes are merged"

    _control(project, user_tip, item_tip)
    assert dumps(markers), f"the planted {plant} never runs even under plain git: the test proves nothing"


def _control(root: Path, user_tip: str, item_tip: str) -> None:
    """Plain git, as the user runs it: commit, status, checkout and merge (the plants fire)."""
    plain = dict(os.environ)
    for args in (("status",), ("commit", "-q", "--allow-empty", "-m", "control"),
                 ("merge-tree", "--write-tree", user_tip, item_tip)):
        subprocess.run(["git", *args], cwd=root, capture_output=True, env=plain, check=False)
    for branch in ("main", "agentsprint/control"):  # a checkout on main and on an item-like branch
        subprocess.run(["git", "checkout", "-q", "-B", branch], cwd=root, capture_output=True, env=plain, check=False)
        (root / "shop" / "notes.txt").unlink()
        subprocess.run(["git", "checkout", "--", "shop/notes.txt"], cwd=root, capture_output=True, env=plain,
                       check=False)


def test_git_gets_no_provider_key_even_where_the_users_own_config_runs_a_program(git_repo: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter in the user's global config (as `git lfs install` writes) still runs, without the keys."""
    markers = tmp_path / "markers"
    markers.mkdir()
    driver = _script(tmp_path / "user" / "filter", markers, "user-filter", "cat")
    subprocess.run(["git", "config", "--global", "filter.mine.clean", str(driver)], check=True)
    (git_repo / ".gitattributes").write_text("*.txt filter=mine\n", encoding="utf-8")
    git(git_repo, "add", ".gitattributes")
    git(git_repo, "commit", "-q", "-m", "attributes")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("DEPLOY_TOKEN", KEY)
    ws = Workspace(git_repo, tmp_path / "worktrees", "main")
    worktree = ws.create_worktree("AS-1")
    (worktree / "a.txt").write_text("text\n", encoding="utf-8")

    ws.commit_all("AS-1", "a text file")

    ran = dumps(markers)
    assert ran, "the user's own filter ran"
    assert all(KEY not in text for text in ran.values()), "but git's environment held no provider key"
