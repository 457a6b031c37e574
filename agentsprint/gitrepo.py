"""What `workspace.py` and `merging.py` share: git calls that report failure as `WorkspaceError`, their
results, and the identity agentsprint commits as.

Below both, so the merge mechanics need not import the workspace that calls them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from agentsprint.gitcmd import run_git

IDENTITY = {
    "GIT_AUTHOR_NAME": "agentsprint",
    "GIT_AUTHOR_EMAIL": "agentsprint@localhost",
    "GIT_COMMITTER_NAME": "agentsprint",
    "GIT_COMMITTER_EMAIL": "agentsprint@localhost",
}
"""Who agentsprint's commits are by: explicit, so it works on machines without a git identity."""
# Per-call config so a user's git config cannot change paths in output or stash behind our back.
STABLE_OUTPUT = ("core.quotePath=false", "rebase.autoStash=false", "merge.autoStash=false",
                 "advice.detachedHead=false", "diff.noprefix=false")


class WorkspaceError(Exception):
    """A git operation failed or was refused; the message says what and where."""


class MergeBlocked(WorkspaceError):
    """The base branch's checked-out tree has uncommitted changes to files a merge would change."""


class MergeResult(BaseModel):
    """Outcome of a merge or rebase: merged (sha = new head) or conflicting (files listed)."""

    model_config = ConfigDict(frozen=True)

    merged: bool
    sha: str | None = None
    conflicts: list[str] = Field(default_factory=list)
    fast_forward: bool = False


def git_bytes(cwd: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True,
              stdin: bytes | None = None, config: Sequence[str] = STABLE_OUTPUT) -> tuple[int, bytes, str]:
    """Run git in `cwd`: (status, stdout bytes, stderr); WorkspaceError on failure when `check`."""
    if not cwd.is_dir():
        raise WorkspaceError(f"{cwd}: no such folder")
    try:
        done = run_git(cwd, args, env=env, config=config, stdin=stdin)
    except FileNotFoundError as exc:
        raise WorkspaceError("git is not installed or not on PATH") from exc
    except OSError as exc:
        raise WorkspaceError(f"git {' '.join(args)}: {exc}") from exc
    stderr = done.stderr.decode("utf-8", "replace")
    if check and done.returncode != 0:
        raise WorkspaceError(f"git {' '.join(args)} failed in {cwd}: {stderr.strip()}")
    return done.returncode, done.stdout, stderr
