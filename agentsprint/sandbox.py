"""The OS sandbox for what an agent makes run (the coder's `run` tool, command gates): bubblewrap.

Inside: the working folder (the item's worktree or gate checkout) is the only writable place besides a
private /tmp; the rest of the file system is read-only, the repository's git folder included, and
agentsprint's state folder (database, other worktrees) and well-known credential files are hidden.
New PID, network, IPC and user namespaces without capabilities: the command cannot see agentsprint's
process, and every process it starts dies with it. `sandbox = "none"` (explicit) runs commands as is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from agentsprint.config import ConfigError

if TYPE_CHECKING:
    from agentsprint.config import Settings
    from agentsprint.domain import Item

BWRAP = "bwrap"
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora/RHEL: `dnf install bubblewrap`; "
    "Arch: `pacman -S bubblewrap`), or run agent commands without any sandbox by setting "
    '[policy] sandbox = "none" (or AGENTSPRINT_POLICY_SANDBOX=none)'
)
CREDENTIAL_PATHS = (
    ".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker", ".netrc", ".git-credentials",
    ".config/git/credentials", ".pypirc", ".npmrc", ".yarnrc.yml", ".config/gh", ".config/hub",
    ".cargo/credentials", ".cargo/credentials.toml", ".terraform.d/credentials.tfrc.json", ".vault-token",
    ".boto", ".s3cfg", ".pgpass", ".my.cnf", ".password-store", ".local/share/keyrings", ".config/op",
    ".claude", ".claude.json", ".codex", ".gemini", ".anthropic", ".config/anthropic", ".config/openai",
    ".cache/huggingface/token", ".huggingface/token", ".config/rclone", ".m2/settings.xml",
    ".gradle/gradle.properties",
)
"""Files and folders under $HOME hidden inside the sandbox (those that exist)."""
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/run")
"""Folders replaced by empty private ones inside the sandbox."""
_NAMESPACES = ["--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
_NO_NESTED_USERNS = "--disable-userns"
"""bubblewrap 0.8+ only (Ubuntu 22.04 ships 0.6): used where the installed one knows it."""
_PROBE_TIMEOUT_S = 15.0


class SandboxUnavailable(ConfigError):
    """The policy asks for bubblewrap and it is missing or does not work on this machine."""


class Sandbox(BaseModel):
    """How agent commands are confined (serializable: part of a durable step's input)."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["bwrap", "none"] = "bwrap"
    network: bool = False
    readable: list[str] = []
    """Folders kept readable when a private /tmp would hide them (the project root)."""
    writable: list[str] = []
    """Folders bound writable besides the working folder (an external agent's private home)."""
    hidden: list[str] = []
    """Absolute paths made invisible (empty folder, empty file): state folder, database, credentials."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Sandbox:
        """The sandbox of a project's `[policy]` settings."""
        return cls(mode=settings.policy.sandbox, network=settings.policy.network,
                   readable=[str(settings.root)], hidden=[str(path) for path in _hidden_paths(settings)])


def _hidden_paths(settings: Settings) -> list[Path]:
    """What exists of the state folder, database, dotenv files and credentials, symlinks resolved."""
    dotenv = [path for path in (*settings.root.glob(".env"), *settings.root.glob(".env.*")) if path.is_file()]
    paths = [settings.state_dir, *dotenv]
    url = settings.database_url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        database = Path(url.removeprefix("sqlite:///"))
        paths += [database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")]
    home = Path(os.environ.get("HOME") or Path.home())
    paths += [home / rel for rel in CREDENTIAL_PATHS]
    return list(dict.fromkeys(path.resolve() for path in paths if path.exists()))


# --- availability ----------------------------------------------------------------------------------


def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox commands here (not installed, namespaces refused); None if it can."""
    executable = shutil.which(BWRAP)
    if executable is None:
        return "bubblewrap (`bwrap`) is not installed (not found on PATH)"
    return _probe(executable)[0]


@lru_cache(maxsize=8)
def _probe(executable: str) -> tuple[str | None, tuple[str, ...]]:
    """Run `true` in the sandbox once per executable: (why it failed or None, the optional flags it knows)."""
    problem = None
    for optional in ((_NO_NESTED_USERNS,), ()):
        argv = [executable, *_NAMESPACES, *optional, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--", "true"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap at {executable} cannot be started: {exc}", ()
        if done.returncode == 0:
            return None, optional
        detail = (done.stderr.strip() or f"exit code {done.returncode}").splitlines()[-1]
        problem = problem or f"bubblewrap at {executable} does not work here ({detail}; are user namespaces disabled?)"
        if _NO_NESTED_USERNS not in done.stderr:
            break
    return problem, ()


def require(sandbox: Sandbox, source: str = "agentsprint.toml") -> None:
    """Raise SandboxUnavailable, saying how to fix it, when `sandbox` needs bubblewrap and it is unusable."""
    if sandbox.mode != "bwrap":
        return
    problem = bwrap_problem()
    if problem is not None:
        raise SandboxUnavailable(f"{source}: policy.sandbox = \"bwrap\": agent commands run only in a sandbox, "
                                 f"and {problem}. To fix it, {INSTALL_HINT}.")


def needs_commands(settings: Settings, items: Sequence[Item]) -> bool:
    """Whether running `items` may start agent commands: command gates, a coder allowed to `run`, or an
    external agent as the coder."""
    external = settings.model_for("coder").backend != "builtin"
    return external or bool(settings.policy.allowed_commands) or any(item.command_gates for item in items)


def preflight(settings: Settings, items: Sequence[Item]) -> None:
    """Before any model call: refuse a run whose agent commands would have no working sandbox."""
    if needs_commands(settings, items):
        require(Sandbox.from_settings(settings), settings.source)


# --- the command line ------------------------------------------------------------------------------


def wrap(argv: Sequence[str], cwd: Path, sandbox: Sandbox, search_path: str = "") -> list[str]:
    """`argv` as run under `sandbox` in `cwd` (unchanged for mode "none"); SandboxUnavailable if unusable.

    `search_path` is the command's PATH: tools it names under a private folder stay readable."""
    if sandbox.mode == "none":
        return list(argv)
    require(sandbox)
    executable = shutil.which(BWRAP)
    assert executable is not None, "require() found it"
    kept = [*tool_dirs(search_path), *command_dirs(argv[0] if argv else "", cwd)]
    tools = sandbox.model_copy(update={"readable": [*sandbox.readable, *kept]})
    return [executable, *bwrap_args(cwd.resolve(), tools, _probe(executable)[1]), "--", *argv]


def tool_dirs(search_path: str) -> list[str]:
    """PATH folders a private /tmp, /var/tmp or /run would hide, with their prefix (`<venv>/bin` -> `<venv>`)."""
    return [folder for entry in filter(None, search_path.split(os.pathsep))
            if (folder := _private_prefix(Path(entry).resolve()))]


def command_dirs(command: str, cwd: Path) -> list[str]:
    """For a command named by path (`/tmp/ci/.venv/bin/python`) under a private folder: its prefix, and
    that of the file it links to, so a private /tmp does not hide the program a gate names."""
    if "/" not in command:
        return []
    named = cwd / command  # an absolute `command` replaces cwd
    candidates = [named.parent.resolve(), named.resolve().parent]
    return [folder for candidate in dict.fromkeys(candidates) if (folder := _private_prefix(candidate))]


def _private_prefix(folder: Path) -> str | None:
    """`folder` (or its parent for a `bin` folder) when a private folder of the sandbox would hide it."""
    if not any(folder.is_relative_to(private) for private in PRIVATE_DIRS):
        return None
    return str(folder.parent if folder.name == "bin" else folder)


def bwrap_args(cwd: Path, sandbox: Sandbox, optional: Sequence[str] = (_NO_NESTED_USERNS,)) -> list[str]:
    """bubblewrap's options: namespaces, then mounts in order (later mounts cover earlier ones)."""
    args = [*_NAMESPACES, *optional, *(["--share-net"] if sandbox.network else [])]
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for private in PRIVATE_DIRS:
        args += ["--tmpfs", private]
    if sandbox.network:
        args += ["--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve"]
    for folder in [*sandbox.readable, *(str(path) for path in git_dirs(cwd))]:
        args += ["--ro-bind-try", folder, folder]
    for folder in sandbox.writable:
        args += ["--bind", folder, folder]
    hidden_dirs = [path for path in sandbox.hidden if Path(path).is_dir() and not Path(path).is_symlink()]
    for folder in hidden_dirs:
        args += ["--tmpfs", folder]
    for file in sandbox.hidden:
        if file not in hidden_dirs and Path(file).exists() and not _inside_any(file, hidden_dirs):
            args += ["--ro-bind", "/dev/null", file]
    args += ["--bind", str(cwd), str(cwd)]
    if (cwd / ".git").exists():
        args += ["--ro-bind", str(cwd / ".git"), str(cwd / ".git")]
    for folder in hidden_dirs:  # after the binds: their mount points are made in these folders first
        args += ["--remount-ro", folder]
    return [*args, "--chdir", str(cwd)]


def _inside_any(path: str, folders: Sequence[str]) -> bool:
    return any(Path(path).is_relative_to(folder) for folder in folders)


def git_dirs(worktree: Path) -> list[Path]:
    """The git folders a checkout uses: its `.git` folder, or for a linked worktree the common git folder."""
    dot_git = worktree / ".git"
    if dot_git.is_dir():
        return [dot_git]
    try:
        text = dot_git.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return []
    if not text.startswith("gitdir:"):
        return []
    admin = (worktree / text.removeprefix("gitdir:").strip()).resolve()
    try:
        common = (admin / (admin / "commondir").read_text(encoding="utf-8").strip()).resolve()
    except (OSError, UnicodeDecodeError):
        return [admin]
    return [common]
