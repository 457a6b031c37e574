"""Execution of the agents' tools inside a worktree.

`execute` is one plain call with serializable inputs and output (a durable step for the runner).
It never raises for a model's mistake (missing file, bad regex, refused path or command): those
come back as `ok=False` results the model can read and act on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agentsprint import policy as pol
from agentsprint.agents import schemas
from agentsprint.config import Settings
from agentsprint.policy import PolicyViolation
from agentsprint.sandbox import Sandbox

SKIP_DIRS = frozenset({".git", "__pycache__", "node_modules", ".venv", ".mypy_cache", ".pytest_cache",
                       ".ruff_cache", ".agentsprint"})
MAX_LISTED = 1000
MAX_MATCHES = 200
MAX_MATCH_LINE = 300
MAX_SEARCH_FILE_BYTES = 2_000_000


class ToolResult(BaseModel):
    """What one tool call produced, as shown to the model."""

    model_config = ConfigDict(frozen=True)

    output: str
    ok: bool = True
    policy_block: str | None = None  # "path" | "command" when policy refused the call
    finished: bool = False  # the terminal `finish` tool was called


class ToolPolicy(BaseModel):
    """The limits tools run under (serializable: part of a durable step's input)."""

    model_config = ConfigDict(frozen=True)

    allowed_commands: list[str]
    command_timeout_s: float
    output_cap: int
    protected_paths: list[str] = []
    """Shown to the coder; enforced by the DoD gate on the diff, not by refusing writes."""
    sandbox: Sandbox = Sandbox()
    """Where `run` executes commands (default: bubblewrap, no network)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ToolPolicy:
        """The tool policy of a project's settings."""
        return cls(
            allowed_commands=list(settings.policy.allowed_commands),
            command_timeout_s=settings.run.command_timeout_seconds,
            output_cap=settings.run.output_cap,
            protected_paths=list(settings.policy.protected_paths),
            sandbox=Sandbox.from_settings(settings),
        )


def _error(text: str) -> ToolResult:
    return ToolResult(output=f"error: {text}", ok=False)


def _resolve(worktree: str, rel: str) -> Path:
    """The confined absolute path of `rel` (PolicyViolation on escape or inside .git)."""
    return pol.resolve_path(Path(worktree), rel)


def _rel(worktree: str, path: Path) -> str:
    return path.relative_to(Path(worktree).resolve()).as_posix() or "."


def _walk(root: Path, worktree: str | None = None) -> list[Path]:
    """Files under `root` (or `root` itself), sorted, skipping VCS and cache folders and .git files.

    With `worktree`, files (symlinks included) that resolve outside it are left out, as read_file
    refuses them: a repository symlink must not let search read what read_file may not.
    """
    if root.is_file():
        found = [root]
    else:
        found = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            found.extend(Path(folder) / name for name in sorted(files) if name not in SKIP_DIRS)
    if worktree is None:
        return found
    inside = Path(worktree).resolve()
    return [path for path in found if path.resolve().is_relative_to(inside)]


def list_files(worktree: str, args: schemas.ListFiles, limits: ToolPolicy) -> ToolResult:
    """Files under a folder, relative to the worktree root."""
    root = _resolve(worktree, args.path)
    if not root.exists():
        return _error(f"{args.path}: no such file or folder")
    files = [_rel(worktree, path) for path in _walk(root)]
    shown = files[:MAX_LISTED]
    if len(files) > MAX_LISTED:
        shown.append(f"[... {len(files) - MAX_LISTED} more files; list a sub-folder]")
    return ToolResult(output=pol.cap_text("\n".join(shown) or "(no files)", limits.output_cap))


def read_file(worktree: str, args: schemas.ReadFile, limits: ToolPolicy) -> ToolResult:
    """Lines start..end of a text file, whole lines up to the output cap."""
    path = _resolve(worktree, args.path)
    if path.is_dir():
        return _error(f"{args.path} is a folder; use list_files")
    if not path.is_file():
        return _error(f"{args.path}: no such file")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    first, last = args.start or 1, min(args.end or len(lines), len(lines))
    if lines and first > len(lines):
        return _error(f"{args.path} has {len(lines)} lines; start={first} is past the end")
    if last < first:
        return ToolResult(output=f"[{args.path}: no lines in {first}..{last} of {len(lines)}]")
    body, shown_to = "", first - 1
    for line in lines[first - 1 : last]:
        if body and len(body) + len(line) > limits.output_cap:
            break
        body, shown_to = body + line, shown_to + 1
    note = f"[{args.path}: lines {first}-{shown_to} of {len(lines)}]"
    if shown_to < last:
        note += f" [output cap reached; read on with start={shown_to + 1}]"
    return ToolResult(output=f"{note}\n{pol.cap_text(body, limits.output_cap)}")


def search(worktree: str, args: schemas.Search, limits: ToolPolicy) -> ToolResult:
    """Lines matching a regular expression, as `path:line: text`."""
    try:
        regex = re.compile(args.pattern)
    except re.error as exc:
        return _error(f"bad regular expression {args.pattern!r}: {exc}")
    root = _resolve(worktree, args.path)
    if not root.exists():
        return _error(f"{args.path}: no such file or folder")
    matches: list[str] = []
    for path in _walk(root, worktree):
        for number, line in _text_lines(path):
            if regex.search(line):
                matches.append(f"{_rel(worktree, path)}:{number}: {line[:MAX_MATCH_LINE]}")
                if len(matches) > MAX_MATCHES:
                    matches[-1] = f"[more than {MAX_MATCHES} matches; narrow the pattern or the path]"
                    return ToolResult(output=pol.cap_text("\n".join(matches), limits.output_cap))
    return ToolResult(output=pol.cap_text("\n".join(matches) or "(no matches)", limits.output_cap))


def _text_lines(path: Path) -> list[tuple[int, str]]:
    """Numbered lines of a text file; nothing for binary, huge or unreadable files."""
    try:
        if path.stat().st_size > MAX_SEARCH_FILE_BYTES:
            return []
        data = path.read_bytes()
    except OSError:
        return []
    if b"\0" in data[:8192]:
        return []
    return list(enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1))


def write_file(worktree: str, args: schemas.WriteFile, limits: ToolPolicy) -> ToolResult:
    """Create or overwrite a file (parent folders are created)."""
    path = _resolve(worktree, args.path)
    if path.is_dir():
        return _error(f"{args.path} is a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(args.content, encoding="utf-8")
    return ToolResult(output=f"wrote {_rel(worktree, path)} ({len(args.content.splitlines())} lines)")


def edit_file(worktree: str, args: schemas.EditFile, limits: ToolPolicy) -> ToolResult:
    """Replace the single occurrence of `old` by `new`."""
    path = _resolve(worktree, args.path)
    if not path.is_file():
        return _error(f"{args.path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return _error(f"{args.path} is not a UTF-8 text file")
    count = text.count(args.old)
    if count != 1:
        hint = "copy it exactly from read_file" if count == 0 else "include more surrounding lines"
        return _error(f"`old` occurs {count} times in {args.path}; it must occur exactly once ({hint})")
    path.write_text(text.replace(args.old, args.new, 1), encoding="utf-8")
    return ToolResult(output=f"edited {_rel(worktree, path)}")


def run(worktree: str, args: schemas.Run, limits: ToolPolicy) -> ToolResult:
    """An allowed command in the worktree's sandbox, with a timeout, a scrubbed environment and capped output.

    No sandbox is no command: SandboxUnavailable propagates (the item fails; `run` refuses to start first).
    """
    argv = pol.check_command(args.command, limits.allowed_commands)
    result = pol.run_command(argv, cwd=Path(worktree), timeout_s=limits.command_timeout_s,
                             output_cap=limits.output_cap, env=pol.scrubbed_env(), sandbox=limits.sandbox)
    status = f"exit code {result.exit_code}"
    if result.timed_out:
        status += f" (timed out after {limits.command_timeout_s:g}s; the process group was killed)"
    ok = result.exit_code == 0 and not result.timed_out
    return ToolResult(output=f"$ {args.command}\n{status}\n{result.output}", ok=ok)


def finish(worktree: str, args: schemas.Finish, limits: ToolPolicy) -> ToolResult:
    """The terminal tool: nothing to do but report the summary."""
    return ToolResult(output=args.summary, finished=True)


Handler = Callable[[str, Any, ToolPolicy], ToolResult]
HANDLERS: dict[str, Handler] = {
    "list_files": list_files,
    "read_file": read_file,
    "search": search,
    "write_file": write_file,
    "edit_file": edit_file,
    "run": run,
    "finish": finish,
}


def execute(worktree: str, name: str, args: dict[str, Any], policy: ToolPolicy) -> ToolResult:
    """Run tool `name` with `args` in `worktree`; refusals and mistakes become ok=False results."""
    handler, model = HANDLERS.get(name), schemas.ALL_TOOLS.get(name)
    if handler is None or model is None:
        return _error(f"no executable tool named {name!r}")
    try:
        parsed = model.model_validate(args)
    except ValidationError as exc:
        return _error(f"bad arguments for {name}:\n{schemas.describe_errors(exc)}")
    try:
        result = handler(worktree, parsed, policy)
    except PolicyViolation as exc:
        kind = "command" if name == "run" else "path"
        return ToolResult(output=f"refused by policy: {exc}", ok=False, policy_block=kind)
    except OSError as exc:
        return _error(f"{name}: {exc.strerror or exc}")
    # Secrets never reach a model, an event or a recorded step through what a tool read or printed.
    return result.model_copy(update={"output": pol.redact(result.output)})
