"""Pre-flight of `agentsprint run`: everything that can be known wrong before the first model call.

Each check adds the problems it finds to one list; `run` refuses with the whole list (exit 2), so a
user fixes everything at once instead of paying for calls that were bound to fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agentsprint.config import CONFIG_FILE, ConfigError, Settings
from agentsprint.domain import Item

if TYPE_CHECKING:
    from agentsprint.backlog.loader import Backlog

CORE_ROLES = ("supervisor", "coder", "qa")


class PreflightFailed(ConfigError):
    """`run` cannot start; `problems` says every reason, each naming the file, setting or item."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("run not started (no model was called):\n" + "\n".join(f"  - {p}" for p in problems))


def preflight(settings: Settings, items: Sequence[Item], ids: Sequence[str] | None = None,
              sprint: str | None = None) -> None:
    """Raise PreflightFailed listing every problem found with running `items`; return when there is none."""
    from agentsprint.backlog import load_backlog

    loaded = load_backlog(settings.backlog_dir)
    selected = [loaded.paths[i.id] for i in items if i.id in loaded.paths]
    problems = [*_sandbox(settings, items), *_keys(settings, roles_of(items)),
                *_prices(settings, roles_of(items), usd_budgets=_usd_budgets(items, sprint)),
                *_base_branch(settings), *_backlog(settings, loaded, selected, bare=not ids and not sprint),
                *_uncommitted(settings, selected)]
    if problems:
        raise PreflightFailed(problems)


def roles_of(items: Sequence[Item]) -> list[str]:
    """The model roles running `items` calls (none when there is nothing to run): security only when an
    item asks for its review."""
    if not items:
        return []
    return [*CORE_ROLES, *(["security"] if any(i.needs_security_review for i in items) else [])]


def _usd_budgets(items: Sequence[Item], sprint: str | None) -> bool:
    return any(i.budget.usd is not None for i in items) or bool(sprint)


def _sandbox(settings: Settings, items: Sequence[Item]) -> list[str]:
    from agentsprint import sandbox

    if not items:
        return []
    try:
        sandbox.preflight(settings, items)
    except ConfigError as exc:
        return [str(exc)]
    return []


def _keys(settings: Settings, roles: Sequence[str]) -> list[str]:
    """A role whose provider needs a key that is not in the environment (as `llm test` finds it)."""
    from agentsprint.llm.check import missing_key

    problems = []
    for role in roles:
        model = settings.model_for(role)
        missing = missing_key(model)
        if missing:
            problems.append(f"{settings.source}: models.{role} ({model.model}): no API key: "
                            f"environment variable {missing} is not set")
    return problems


def _prices(settings: Settings, roles: Sequence[str], *, usd_budgets: bool) -> list[str]:
    from agentsprint.llm.errors import PriceUnknown
    from agentsprint.llm.prices import check_prices

    if not usd_budgets:
        return []
    try:
        check_prices(settings, roles)
    except PriceUnknown as exc:
        return [f"{settings.source}: {exc} (an item or the sprint has a USD budget)"]
    return []


def _base_branch(settings: Settings) -> list[str]:
    from agentsprint.gitrepo import WorkspaceError
    from agentsprint.workspace import Workspace

    try:
        Workspace(settings.root, settings.worktrees_dir, settings.run.base_branch).base_head()
    except WorkspaceError as exc:
        return [f"{settings.source}: run.base_branch: {settings.run.base_branch!r} is not a branch of "
                f"{settings.root} ({exc})"]
    return []


def _backlog(settings: Settings, loaded: Backlog, selected: Sequence[Path], *, bare: bool) -> list[str]:
    """Problems in the selected items' files; in a bare run also every file that did not parse (a candidate)."""
    parsed = {path for path, _ in loaded.entries}
    return [p.shown_from(settings.root) for p in loaded.problems
            if p.path in selected or (bare and p.path not in parsed)]


def _uncommitted(settings: Settings, selected: Sequence[Path]) -> list[str]:
    """Files the run's merges would write that differ from the last commit: the merge would refuse them.

    Those are the selected items' files (their status is written on the base branch) and
    agentsprint.toml when the policy does not protect it (an agent may change it); a config that is
    protected, as by default, may be edited between runs."""
    from agentsprint.policy import matches_any

    wanted = list(selected)
    if not matches_any(CONFIG_FILE, settings.policy.protected_paths):
        wanted.append(settings.root / CONFIG_FILE)
    return [f"{name}: not committed (commit it before `agentsprint run`: the run writes item status "
            "and merges agents' work onto the base branch)" for name in _dirty(settings.root, wanted)]


def _dirty(root: Path, paths: Sequence[Path]) -> list[str]:
    """Those of `paths` (that exist) git reports as modified, added or untracked, relative to `root`."""
    from agentsprint.gitcmd import run_git

    relative = [str(p.resolve().relative_to(root.resolve())) for p in paths if p.exists()]
    if not relative:
        return []
    done = run_git(root, ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *relative])
    if done.returncode != 0:
        return []  # not a work tree: the base-branch check says what is wrong
    entries = done.stdout.decode("utf-8", "replace").split("\0")
    return sorted({entry[3:] for entry in entries if len(entry) > 3})
