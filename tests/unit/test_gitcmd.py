"""The hardened git invocation: environment, command line, and which drivers are switched off."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agentsprint.gitcmd import SAFE_MERGE_DRIVER, git_argv, git_env, run_git


def test_the_environment_of_a_git_call_holds_no_secret_and_no_inherited_repository(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("DEPLOY_TOKEN", "t0ken")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.hooksPath'='/tmp/evil'")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.fsmonitor")

    env = git_env({"GIT_AUTHOR_NAME": "agentsprint"})

    assert not {"OPENAI_API_KEY", "DEPLOY_TOKEN", "GIT_DIR", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_KEY_0"} & set(env)
    assert env["GIT_AUTHOR_NAME"] == "agentsprint" and env["GIT_CONFIG_GLOBAL"], "identity and user config kept"


def test_hooks_and_fsmonitor_are_off_and_diffs_never_use_drivers() -> None:
    argv = git_argv(["diff", "--name-only", "a", "b"], config=["core.quotePath=false"])

    assert argv[:2] == ["git", "--no-pager"]
    assert "core.hooksPath=/dev/null" in argv and "core.fsmonitor=false" in argv
    assert argv[argv.index("diff") + 1 : argv.index("diff") + 3] == ["--no-ext-diff", "--no-textconv"]
    assert git_argv(["status"])[-1] == "status"


def _config(repo: Path, *args: str) -> None:
    subprocess.run(["git", "config", *args], cwd=repo, check=True)


def _effective(repo: Path, key: str) -> str:
    """The value git uses for `key` under agentsprint's hardening."""
    return run_git(repo, ["config", key]).stdout.decode().strip()


@pytest.mark.parametrize("scope", ["--local", "--worktree"])
def test_the_repositorys_own_filters_are_blanked_the_users_global_ones_stay(git_repo: Path, scope: str) -> None:
    if scope == "--worktree":
        _config(git_repo, "extensions.worktreeConfig", "true")
    _config(git_repo, "--global", "filter.lfs.clean", "git-lfs clean -- %f")
    _config(git_repo, scope, "filter.evil.clean", "/tmp/evil")
    _config(git_repo, scope, "merge.mine.driver", "/tmp/evil %A")

    assert _effective(git_repo, "filter.lfs.clean") == "git-lfs clean -- %f"
    assert _effective(git_repo, "filter.evil.clean") == ""
    assert _effective(git_repo, "filter.evil.required") == "false"
    assert _effective(git_repo, "merge.mine.driver") == SAFE_MERGE_DRIVER
