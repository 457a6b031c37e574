"""`policy show | check` through the installed script, and [policy] max_file_bytes enforced by the coder's tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentsprint.agents.tools import ToolPolicy, execute
from agentsprint.config import load_settings

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert cli(tmp_path, "init").returncode == 0
    config = tmp_path / "agentsprint.toml"
    config.write_text(config.read_text().replace("# max_file_bytes = 1000000", "max_file_bytes = 64"))
    assert cli(tmp_path, "add", "Fix pagination", "--scope", "src/**").returncode == 0
    return tmp_path


def rulings(done: subprocess.CompletedProcess[str]) -> dict[str, tuple[bool, str]]:
    return {r["rule"]: (r["allowed"], r["detail"]) for r in json.loads(done.stdout)}


def test_show_prints_the_effective_policy(project: Path) -> None:
    shown = json.loads(cli(project, "policy", "show", "--json").stdout)
    assert shown["max_file_bytes"] == 64 and shown["allowed_commands"] == ["pytest", "python", "ruff"]
    assert shown["sandbox"] == "bwrap" and shown["approvers"] == [] and "tests/**" in shown["protected_paths"]
    assert "max_file_bytes    64" in cli(project, "policy", "show").stdout


def test_an_allowed_command_and_path_say_which_rules_allow_them(project: Path) -> None:
    done = cli(project, "policy", "check", "--command", "pytest -q", "--path", "src/x.py", "--item", "as-1", "--json")
    assert done.returncode == 0, done.stderr
    found = rulings(done)
    assert found["allowed_commands"] == (True, "starts with the allowed prefix 'pytest'")
    assert found["sandbox"][0] and "bubblewrap" in found["sandbox"][1]
    assert found["scope of AS-1"] == (True, "inside src/**")
    assert found["max_file_bytes"] == (True, "files up to 64 bytes")


def test_refusals_name_the_rule_that_decides(project: Path) -> None:
    done = cli(project, "policy", "check", "--command", "curl x", "--path", "tests/t.py", "--item", "AS-1")
    assert done.returncode == 1
    assert "REFUSED  command  allowed_commands: 'curl' is not an allowed command" in done.stdout
    assert "REFUSED  path     protected_paths: matches 'tests/**'" in done.stdout
    assert "REFUSED  path     scope of AS-1: outside src/**" in done.stdout
    escape = cli(project, "policy", "check", "--path", "../outside.py")
    assert escape.returncode == 1 and "REFUSED  path     confinement:" in escape.stdout


def test_usage_errors_exit_2(project: Path) -> None:
    assert cli(project, "policy", "check").returncode == 2
    unknown = cli(project, "policy", "check", "--path", "a.py", "--item", "AS-404")
    assert unknown.returncode == 2 and "AS-404: no such item" in unknown.stderr and "Traceback" not in unknown.stderr


def test_the_coder_cannot_write_a_file_over_max_file_bytes(project: Path) -> None:
    limits = ToolPolicy.from_settings(load_settings(project, environ={}))
    worktree = str(project)
    big = execute(worktree, "write_file", {"path": "src/big.py", "content": "x" * 65}, limits)
    assert not big.ok and big.policy_block == "path" and "max_file_bytes allows 64" in big.output
    assert not (project / "src" / "big.py").exists(), "nothing was written"
    assert execute(worktree, "write_file", {"path": "src/ok.py", "content": "x" * 64}, limits).ok
    grown = execute(worktree, "edit_file", {"path": "src/ok.py", "old": "x" * 64, "new": "y" * 65}, limits)
    assert not grown.ok and grown.policy_block == "path"
    assert (project / "src" / "ok.py").read_text() == "x" * 64, "the edit was not applied"
