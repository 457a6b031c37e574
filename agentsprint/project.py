"""Setting a project up: the folders and files `agentsprint init` creates, each only once."""

from __future__ import annotations

import tomllib
from pathlib import Path

from agentsprint.config import BACKLOG_DIR, CONFIG_FILE, STATE_DIR, templates_dir
from agentsprint.gitcmd import run_git

IGNORE_LINE = f"{STATE_DIR}/"
_IGNORE_FORMS = {STATE_DIR, f"{STATE_DIR}/", f"/{STATE_DIR}", f"/{STATE_DIR}/"}


class NotARepository(Exception):
    """`init` was run outside a git work tree."""


def current_branch(root: Path) -> str:
    """The branch checked out at `root` (the base branch `init` writes); NotARepository outside git."""
    try:
        inside = run_git(root, ["rev-parse", "--is-inside-work-tree"])
    except OSError as exc:
        raise NotARepository(f"git cannot run here: {exc}") from exc
    if inside.returncode != 0 or inside.stdout.strip() != b"true":
        raise NotARepository(f"{root} is not a git repository: run `git init` (and commit once) first")
    found = run_git(root, ["symbolic-ref", "--short", "-q", "HEAD"])
    if found.returncode != 0:
        raise NotARepository(f"{root}: HEAD is detached: check out the branch approved work should merge into")
    return found.stdout.decode("utf-8", "replace").strip()


def init_project(root: Path, base_branch: str = "main") -> list[str]:
    """Create what is missing at `root`; returns one line per change (empty when nothing changed)."""
    changes = [*_backlog_dir(root), *_config_file(root, base_branch)]
    state = root / STATE_DIR
    if not state.is_dir():
        state.mkdir(parents=True)
        changes.append(f"created {STATE_DIR}/ (local state: database, worktrees; git-ignored)")
    changes += _ignore_state(root / ".gitignore")
    return changes


def _backlog_dir(root: Path) -> list[str]:
    backlog = root / BACKLOG_DIR
    if backlog.is_dir():
        return []
    backlog.mkdir(parents=True)
    (backlog / ".gitkeep").touch()
    return [f"created {BACKLOG_DIR}/ (one Markdown file per item)"]


def _config_file(root: Path, base_branch: str) -> list[str]:
    if (root / CONFIG_FILE).exists() or _has_pyproject_section(root / "pyproject.toml"):
        return []
    text = (templates_dir() / CONFIG_FILE).read_text(encoding="utf-8")
    text = text.replace('# base_branch = "main"', f'base_branch = "{base_branch}"', 1)
    (root / CONFIG_FILE).write_text(text, encoding="utf-8")
    return [f"created {CONFIG_FILE} (every setting, commented, with its default; base_branch = {base_branch})"]


def _has_pyproject_section(pyproject: Path) -> bool:
    """True when settings already live under [tool.agentsprint] (a new toml file would shadow them)."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("tool", {}).get("agentsprint"), dict)


def _ignore_state(gitignore: Path) -> list[str]:
    if not gitignore.exists():
        gitignore.write_text(IGNORE_LINE + "\n", encoding="utf-8")
        return [f"created .gitignore ignoring {IGNORE_LINE}"]
    text = gitignore.read_text(encoding="utf-8")
    if any(line.strip() in _IGNORE_FORMS for line in text.splitlines()):
        return []
    separator = "" if text.endswith("\n") or not text else "\n"
    gitignore.write_text(text + separator + IGNORE_LINE + "\n", encoding="utf-8")
    return [f"added {IGNORE_LINE} to .gitignore"]
