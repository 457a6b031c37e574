"""Execution of the agents' tools inside a worktree.

`execute` is one plain call with serializable inputs and output (a durable step for the runner).
It never raises for a model's mistake (missing file, bad regex, refused path or command): those
come back as `ok=False` results the model can read and act on.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agentsprint import policy as pol
from agentsprint.agents import bounded, schemas
from agentsprint.config import Settings
from agentsprint.policy import PolicyViolation
from agentsprint.sandbox import Sandbox

SKIP_DIRS = frozenset({".git", "__pycache__", "node_modules", ".venv", ".mypy_cache", ".pytest_cache",
                       ".ruff_cache", ".agentsprint"})
MAX_LISTED = 1000
MAX_COUNTED = 100_000  # list_files counts files past the shown ones up to this
MAX_MATCHES = 200
MAX_MATCH_LINE = 300
MAX_SEARCH_FILE_BYTES = 2_000_000
MAX_EDIT_BYTES = 10_000_000  # edit_file loads the whole file


class ToolResult(BaseModel):
    """What one tool call produced, as shown to the model."""

    model_config = ConfigDict(frozen=True)

    output: str
    ok: bool = True
    policy_block: str | None = None  # "path" | "command" when policy refused the call


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
    max_file_bytes: int = 1_000_000
    """The largest file write_file and edit_file may leave ([policy] max_file_bytes)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ToolPolicy:
        """The tool policy of a project's settings."""
        return cls(
            allowed_commands=list(settings.policy.allowed_commands),
            command_timeout_s=settings.run.command_timeout_seconds,
            output_cap=settings.run.output_cap,
            protected_paths=list(settings.policy.protected_paths),
            sandbox=Sandbox.from_settings(settings),
            max_file_bytes=settings.policy.max_file_bytes,
        )


def _error(text: str) -> ToolResult:
    return ToolResult(output=f"error: {text}", ok=False)


def _resolve(worktree: str, rel: str) -> Path:
    """The confined absolute path of `rel` (PolicyViolation on escape or inside .git)."""
    try:
        return pol.resolve_path(Path(worktree), rel)
    except RuntimeError as exc:  # Path.resolve on a symlink loop (an agent's command can make one)
        raise OSError(errno.ELOOP, f"{rel}: symlink loop") from exc


def _inside(path: Path, root: Path) -> bool:
    """Whether `path` resolves inside `root`; a symlink loop or unreadable link counts as outside."""
    try:
        return path.resolve().is_relative_to(root)
    except (RuntimeError, OSError):
        return False


def _rel(worktree: str, path: Path) -> str:
    return path.relative_to(Path(worktree).resolve()).as_posix() or "."


def _walk(root: Path, worktree: str | None = None) -> Iterator[Path]:
    """Files under `root` (or `root` itself), sorted, skipping VCS and cache folders and .git files.

    With `worktree`, files (symlinks included) that resolve outside it are left out, as read_file
    refuses them: a repository symlink must not let search read what read_file may not. Lazy, so a
    caller can stop early on a huge tree.
    """
    inside = Path(worktree).resolve() if worktree is not None else None
    if root.is_file() or (root.exists() and not root.is_dir()):
        candidates: Iterator[Path] = iter([root])
    else:
        candidates = _walk_tree(root)
    for path in candidates:
        if inside is None or _inside(path, inside):
            yield path


def _walk_tree(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        yield from (Path(folder) / name for name in sorted(files) if name not in SKIP_DIRS)


def list_files(worktree: str, args: schemas.ListFiles, limits: ToolPolicy) -> ToolResult:
    """Files under a folder, relative to the worktree root (a huge tree is counted up to a bound)."""
    root = _resolve(worktree, args.path)
    if not root.exists():
        return _error(f"{args.path}: no such file or folder")
    deadline = time.monotonic() + limits.command_timeout_s
    shown: list[str] = []
    more = 0
    for path in _walk(root):
        if len(shown) < MAX_LISTED:
            shown.append(_rel(worktree, path))
            continue
        more += 1
        if more >= MAX_COUNTED or (more % 1000 == 0 and time.monotonic() > deadline):
            shown.append(f"[... at least {more} more files; list a sub-folder]")
            break
    else:
        if more:
            shown.append(f"[... {more} more files; list a sub-folder]")
    return ToolResult(output=pol.cap_text("\n".join(shown) or "(no files)", limits.output_cap))


def read_file(worktree: str, args: schemas.ReadFile, limits: ToolPolicy) -> ToolResult:
    """Lines start..end of a text file, whole lines up to the output cap, read as a bounded stream."""
    path = _resolve(worktree, args.path)
    if path.is_dir():
        return _error(f"{args.path} is a folder; use list_files")
    if not path.exists():
        return _error(f"{args.path}: no such file")
    try:
        stream = bounded.open_regular(path)
    except bounded.NotRegularFile as exc:
        return _error(f"{args.path} is a {exc.kind}, not a regular file; it is never opened")
    with stream:
        excerpt = _excerpt(stream, args.start or 1, args.end, limits.output_cap)
    return _shown(args, excerpt, limits.output_cap)


class _Excerpt(BaseModel):
    """What read_file took from a file: the lines shown and how many lines the file has."""

    first: int
    last: int  # the last line asked for (the end of the file when none was)
    body: str = ""
    shown_to: int
    total: int  # lines seen; the file's line count when `complete`
    complete: bool = True  # False when READ_SCAN_BYTES ended the read before the end of the file


def _excerpt(stream: IO[bytes], first: int, end: int | None, cap: int) -> _Excerpt:
    """Lines first..end of `stream` that fit `cap`, then a bounded count of the rest."""
    body, shown_to, total = "", first - 1, 0
    for total, (raw, cut) in enumerate(bounded.lines(stream, bounded.READ_SCAN_BYTES), start=1):
        if total < first:
            continue
        line = bounded.decode(raw, cut)
        if body and len(body) + len(line) > cap:
            break
        body, shown_to = body + line, total
        if end is not None and total >= end:
            break
    rest, complete = bounded.count_lines(stream, bounded.READ_SCAN_BYTES - stream.tell())
    total += rest
    return _Excerpt(first=first, last=min(end or total, total), body=body, shown_to=shown_to, total=total,
                    complete=complete)


def _shown(args: schemas.ReadFile, got: _Excerpt, cap: int) -> ToolResult:
    """The read_file result for an excerpt: a header line, then the lines."""
    scanned = f"the first {bounded.READ_SCAN_BYTES // 2**20} MiB"
    of = f"{got.total}" if got.complete else f"at least {got.total} (only {scanned} are read)"
    if got.total and got.first > got.total:
        if not got.complete:
            return _error(f"start={got.first} lies beyond {scanned} of {args.path}, which read_file does not "
                          "read past; use search to find the lines you need")
        return _error(f"{args.path} has {of} lines; start={got.first} is past the end")
    if got.last < got.first:
        return ToolResult(output=f"[{args.path}: no lines in {got.first}..{got.last} of {of}]")
    note = f"[{args.path}: lines {got.first}-{got.shown_to} of {of}]"
    if got.shown_to < got.last:
        note += f" [output cap reached; read on with start={got.shown_to + 1}]"
    return ToolResult(output=f"{note}\n{pol.cap_text(got.body, cap)}")


def search(worktree: str, args: schemas.Search, limits: ToolPolicy) -> ToolResult:
    """Lines matching a regular expression (RE2 syntax: linear time), as `path:line: text`."""
    try:
        matcher = bounded.compile_pattern(args.pattern)
    except bounded.PatternError as exc:
        return _error(f"bad regular expression {args.pattern!r}: {exc}")
    root = _resolve(worktree, args.path)
    if not root.exists():
        return _error(f"{args.path}: no such file or folder")
    matches = _matches(worktree, root, matcher, time.monotonic() + limits.command_timeout_s)
    return ToolResult(output=pol.cap_text("\n".join(matches) or "(no matches)", limits.output_cap))


def _matches(worktree: str, root: Path, matcher: bounded.Matcher, deadline: float) -> list[str]:
    """`path:line: text` of matching lines, ending with a note when a cap or the deadline stopped it."""
    matches: list[str] = []
    partial: list[Path] = []
    for path in _walk(root, worktree):
        if time.monotonic() > deadline:
            return [*matches, "[search stopped at its time limit; narrow the path]"]
        for number, line in _text_lines(path, partial):
            if matcher.search(line):
                matches.append(f"{_rel(worktree, path)}:{number}: {line[:MAX_MATCH_LINE]}")
                if len(matches) > MAX_MATCHES:
                    matches[-1] = f"[more than {MAX_MATCHES} matches; narrow the pattern or the path]"
                    return matches
    if partial:
        limit = f"{MAX_SEARCH_FILE_BYTES // 1_000_000} MB"
        named = ", ".join(_rel(worktree, p) for p in partial[:10])
        matches = [*(matches or ["(no matches)"]), f"[only the first {limit} searched of: {named}]"]
    return matches


def _text_lines(path: Path, partial: list[Path]) -> Iterator[tuple[int, str]]:
    """Numbered lines of a regular text file, up to MAX_SEARCH_FILE_BYTES (`path` added to `partial`
    when it is longer); nothing for binary, special (FIFO, device, socket) or unreadable files."""
    if not bounded.is_regular(path):
        return
    try:
        with bounded.open_regular(path) as stream:
            if b"\0" in stream.read(8192):
                return
            stream.seek(0)
            for number, (raw, cut) in enumerate(bounded.lines(stream, MAX_SEARCH_FILE_BYTES), start=1):
                yield number, bounded.decode(raw, cut).rstrip("\r\n")
            if stream.read(1):
                partial.append(path)
    except OSError:
        return


def _check_size(rel: str, content: str, limits: ToolPolicy) -> None:
    """PolicyViolation when `content` is larger than [policy] max_file_bytes (nothing is written)."""
    size = len(content.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_file_bytes:
        raise PolicyViolation("path", f"{rel} would be {size} bytes; [policy] max_file_bytes allows "
                                      f"{limits.max_file_bytes}")


def write_file(worktree: str, args: schemas.WriteFile, limits: ToolPolicy) -> ToolResult:
    """Create or overwrite a file (parent folders are created)."""
    path = _resolve(worktree, args.path)
    if path.is_dir():
        return _error(f"{args.path} is a folder")
    if path.exists() and not bounded.is_regular(path):  # opening a FIFO to write blocks until a reader comes
        kind = bounded.file_kind(path.stat().st_mode)
        return _error(f"{args.path} is a {kind}, not a regular file; it is never opened")
    _check_size(args.path, args.content, limits)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(args.content, encoding="utf-8")
    return ToolResult(output=f"wrote {_rel(worktree, path)} ({len(args.content.splitlines())} lines)")


def edit_file(worktree: str, args: schemas.EditFile, limits: ToolPolicy) -> ToolResult:
    """Replace the single occurrence of `old` by `new`."""
    path = _resolve(worktree, args.path)
    if not path.is_file():
        return _error(f"{args.path}: no such file")
    if path.stat().st_size > MAX_EDIT_BYTES:
        return _error(f"{args.path} is larger than {MAX_EDIT_BYTES // 1_000_000} MB; edit_file does not load it "
                      "(use write_file to replace it)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return _error(f"{args.path} is not a UTF-8 text file")
    count = text.count(args.old)
    if count != 1:
        hint = "copy it exactly from read_file" if count == 0 else "include more surrounding lines"
        return _error(f"`old` occurs {count} times in {args.path}; it must occur exactly once ({hint})")
    edited = text.replace(args.old, args.new, 1)
    _check_size(args.path, edited, limits)
    path.write_text(edited, encoding="utf-8")
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


Handler = Callable[[str, Any, ToolPolicy], ToolResult]
HANDLERS: dict[str, Handler] = {
    "list_files": list_files,
    "read_file": read_file,
    "search": search,
    "write_file": write_file,
    "edit_file": edit_file,
    "run": run,
}  # the terminal tools (`finish`, `submit_plan`, `submit_verdict`) are never executed: their arguments end the loop


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
    except UnicodeError:  # a lone surrogate ("\ud800") in a path or pattern cannot become a file name or bytes
        return _error(f"{name}: the arguments hold characters that are not valid Unicode")
    # Secrets never reach a model, an event or a recorded step through what a tool read or printed.
    return result.model_copy(update={"output": pol.redact(result.output)})
