"""Who made a human decision, and whether `[review] approvers` lets them make it.

A person is named by their git identity in the project ("Name <email>"), or by `--as NAME` where
that is allowed, or by their login name when git has no identity. The name is as trustworthy as the
git configuration it comes from: it records who said they decided, for segregation of duties between
honest colleagues, not against someone who can edit the database.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from agentsprint.config import Settings
from agentsprint.gitcmd import run_git

GUARDED = ("approve", "top-up")
"""Decisions `[review] approvers` restricts: approving a merge and raising a budget."""


def _git_value(root: Path, key: str) -> str:
    try:
        done = run_git(root, ["config", "--get", key])
    except OSError:
        return ""
    return done.stdout.decode("utf-8", errors="replace").strip() if done.returncode == 0 else ""


def git_identity(root: Path) -> str | None:
    """"Name <email>" (or whichever of the two is set) from git's configuration in `root`; None if neither."""
    name, email = _git_value(root, "user.name"), _git_value(root, "user.email")
    if name and email:
        return f"{name} <{email}>"
    return name or email or None


def person(settings: Settings, claimed: str | None = None) -> str:
    """The person deciding: `claimed` (from --as or a front end), else the git identity, else the login."""
    if claimed and claimed.strip():
        return claimed.strip()
    return git_identity(settings.root) or getpass.getuser()


def matches(entry: str, who: str) -> bool:
    """Whether an approvers entry names `who`: the whole "Name <email>", the name, or the email."""
    entry = entry.strip().lower()
    name, _, rest = who.partition("<")
    return entry in {who.strip().lower(), name.strip().lower(), rest.rstrip(">").strip().lower()} - {""}


def refusal(settings: Settings, action: str, who: str) -> str | None:
    """Why `who` may not make decision `action`, or None when they may."""
    approvers = settings.review.approvers
    if action not in GUARDED or not approvers or any(matches(entry, who) for entry in approvers):
        return None
    return f"{who} is not among [review] approvers ({', '.join(approvers)}) and may not {action}"
