"""Policy as code: path confinement, allowed commands, command execution, env scrubbing, precedence.

Standard library only. Commands are never run through a shell: what the coder asks for is split with
shlex and executed directly, in its own process group, so a timeout can kill everything it started.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

from agentsprint.domain import PRIORITY_RANK, Item, ItemType
from agentsprint.process import CommandResult, cap_text, run_process
from agentsprint.redaction import CHILD_ENV_DEFAULTS, redact, scrubbed_env
from agentsprint.sandbox import Sandbox, wrap

__all__ = [
    "CHILD_ENV_DEFAULTS",
    "CommandResult",
    "PolicyViolation",
    "Sandbox",
    "cap_text",
    "check_command",
    "matches_any",
    "precedence_key",
    "redact",
    "resolve_path",
    "run_command",
    "scrubbed_env",
]


class PolicyViolation(Exception):
    """A path or command the policy refuses; `detail` is written for the agent that asked."""

    def __init__(self, kind: Literal["path", "command"], detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


# --- paths -----------------------------------------------------------------------------------------


def resolve_path(worktree: Path, rel: str) -> Path:
    """The absolute, symlink-free path of `rel` inside `worktree`; PolicyViolation if it leaves it."""
    if not isinstance(rel, str) or "\x00" in rel:
        raise PolicyViolation("path", f"not a valid path: {rel!r}")
    candidate = Path(rel.strip() or ".")
    if candidate.is_absolute() or rel.strip().startswith("~"):
        raise PolicyViolation("path", f"{rel}: absolute paths are refused; use a worktree-relative path")
    if ".." in candidate.parts:
        raise PolicyViolation("path", f"{rel}: '..' is refused; paths must stay inside the worktree")
    root = worktree.resolve()
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise PolicyViolation("path", f"{rel}: resolves outside the worktree (symlink)")
    inside = resolved.relative_to(root).parts
    if any(part.lower() == ".git" for part in (*candidate.parts, *inside)):
        raise PolicyViolation("path", f"{rel}: the .git folder is off limits")
    return resolved


# --- commands --------------------------------------------------------------------------------------

_OPERATOR_CHARS = set("();<>|&")
_EXPANSIONS = ("`", "$(", "${")


def _shell_tokens(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _refuse_shell_syntax(command: str) -> None:
    if any(ch in command for ch in "\n\r\x00"):
        raise PolicyViolation("command", "one command per call: newlines are refused (there is no shell)")
    if any(marker in command for marker in _EXPANSIONS):
        raise PolicyViolation("command", "command substitution and ${...} are refused (there is no shell)")
    operators = [token for token in _shell_tokens(command) if token and set(token) <= _OPERATOR_CHARS]
    if operators:
        raise PolicyViolation(
            "command",
            f"shell operators are refused ({' '.join(operators)}): commands run without a shell, "
            "so pipes, redirections, ';' and '&&' do not work; run one command per call",
        )


def check_command(command: str, allowed: Sequence[str]) -> list[str]:
    """The argv of `command` if it starts with one of the `allowed` prefixes; PolicyViolation otherwise."""
    try:
        _refuse_shell_syntax(command)
        argv = shlex.split(command)
    except ValueError as exc:
        raise PolicyViolation("command", f"cannot parse the command: {exc}") from exc
    if not argv:
        raise PolicyViolation("command", "empty command")
    for prefix in allowed:
        words = shlex.split(prefix)
        if words and argv[: len(words)] == words:
            return argv
    shown = ", ".join(repr(p) for p in allowed) or "(none)"
    raise PolicyViolation("command", f"{argv[0]!r} is not an allowed command; allowed prefixes: {shown}")


def run_command(
    argv_or_command: str | Sequence[str],
    cwd: Path,
    timeout_s: float,
    output_cap: int,
    env: Mapping[str, str] | None = None,
    sandbox: Sandbox | None = None,
) -> CommandResult:
    """Run a command without a shell, in `sandbox` (default: bubblewrap, no network), with a scrubbed env;
    on timeout everything it started is killed. SandboxUnavailable when bubblewrap is needed and unusable.

    No policy check here: the coder's `run` tool calls check_command first; DoD gates are the human's.
    """
    if isinstance(argv_or_command, str):
        try:
            argv = shlex.split(argv_or_command)
        except ValueError as exc:
            return CommandResult(exit_code=2, output=f"cannot parse the command: {exc}")
    else:
        argv = list(argv_or_command)
    if not argv:
        return CommandResult(exit_code=2, output="empty command")
    child_env = scrubbed_env() if env is None else dict(env)
    sandbox = sandbox or Sandbox()
    if sandbox.mode != "none" and not _findable(argv[0], cwd, child_env):
        return CommandResult(exit_code=127, output=f"command not found: {argv[0]}")
    return run_process(wrap(argv, cwd, sandbox, child_env.get("PATH", "")), cwd, timeout_s, output_cap, child_env)


def _findable(program: str, cwd: Path, env: Mapping[str, str]) -> bool:
    """Whether `program` names an executable (via PATH, or relative to `cwd` when it holds a slash)."""
    if "/" in program:
        return os.access(cwd / program, os.X_OK)
    return shutil.which(program, path=env.get("PATH", os.defpath)) is not None


# --- patterns and precedence -----------------------------------------------------------------------


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for an anchored glob: `*` and `?` stay within one folder, `**` crosses folders."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = (body[1:] if negate else body).replace("\\", "\\\\").replace("[", "\\[")
            body = "\\" + body if body.startswith("^") else body
            out.append("[" + ("^" if negate else "") + body + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _clean(path: str) -> str:
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


def matches_any(path: str, patterns: Sequence[str]) -> bool:
    """True when repo-relative `path` matches one gitignore-like, root-anchored pattern.

    A pattern that names a folder (`tests`, `tests/`) covers everything under it.
    """
    clean = _clean(path)
    parts = clean.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for raw in patterns:
        pattern = _clean(raw).rstrip("/")
        if not pattern:
            continue
        regex = _glob_regex(pattern)
        if any(regex.fullmatch(candidate) for candidate in candidates):
            return True
    return False


def _id_key(item_id: str) -> tuple[str, int]:
    prefix, _, number = item_id.rpartition("-")
    return (prefix, int(number)) if number.isdigit() else (item_id, 0)


def precedence_key(item: Item, precedence: Sequence[ItemType]) -> tuple[int, int, str, int]:
    """Sort key for merge order: type rank in `precedence`, then priority, then id (AS-9 before AS-10)."""
    order = list(precedence)
    type_rank = order.index(item.type) if item.type in order else len(order)
    return (type_rank, PRIORITY_RANK[item.priority], *_id_key(item.id))
