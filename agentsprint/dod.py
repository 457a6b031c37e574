"""The deterministic DoD gates: protected paths, scope, secret scan, and command gates.

They run before the QA model and judge the item's diff; a failing gate is a rejection with its
output. The review (`review: human`) and security (`security: agent`) gates belong to the runner.
"""

from __future__ import annotations

import re
import shlex
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from agentsprint import policy
from agentsprint.config import Settings
from agentsprint.domain import Gate, GateKind, Item
from agentsprint.gitparse import ChangedContent
from agentsprint.redaction import find_secret_values, find_secrets

if TYPE_CHECKING:
    from agentsprint.workspace import Workspace

PROTECTED = "protected"
SCOPE = "scope"
SECRETS = GateKind.SECRETS.value
COMMAND = GateKind.COMMAND.value

SUMMARY_CHARS = 4000
"""Rough size of `summarize`'s text: what a prompt gets about the gates."""

# detect-secrets plugins left out: entropy and public-IP detectors flag hashes, UUIDs and fixtures,
# and a false positive in a blocking gate costs a whole round.
_NOISY_PLUGINS = {"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"}
# The allowlist filter is left out too: a `pragma: allowlist secret` comment would let the coder
# tick the gate itself.
_ALLOWLIST_FILTER = "detect_secrets.filters.allowlist.is_line_allowlisted"
_DETECT_SECRETS_LOCK = threading.Lock()  # detect-secrets keeps its settings in module globals
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class GateResult(BaseModel):
    """Outcome of one gate: passed or not, its output for people and prompts, and the time it took."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    """protected | scope | secrets | command"""
    passed: bool
    output: str = ""
    seconds: float = 0.0
    details: list[str] = Field(default_factory=list)
    """One line per finding: a file, `file:line: kind of secret`, or a command's exit status."""


# --- paths -----------------------------------------------------------------------------------------


def check_protected(changed_files: list[str], protected_paths: list[str]) -> GateResult:
    """Fail naming each changed file that matches a protected pattern."""
    touched = [path for path in changed_files if policy.matches_any(path, protected_paths)]
    if not touched:
        return GateResult(name=PROTECTED, kind=PROTECTED, passed=True, output="no protected path changed")
    listing = "\n".join(f"- {path}" for path in touched)
    output = f"the change touches protected paths (only a human may change them; revert these):\n{listing}"
    return GateResult(name=PROTECTED, kind=PROTECTED, passed=False, output=output, details=touched)


def check_scope(changed_files: list[str], scope: list[str]) -> GateResult:
    """Fail naming each changed file outside the item's scope patterns."""
    outside = [path for path in changed_files if not policy.matches_any(path, scope)]
    if not outside:
        return GateResult(name=SCOPE, kind=SCOPE, passed=True, output=f"all changes in {', '.join(scope)}")
    listing = "\n".join(f"- {path}" for path in outside)
    output = f"the change leaves the item's scope ({', '.join(scope)}); revert these:\n{listing}"
    return GateResult(name=SCOPE, kind=SCOPE, passed=False, output=output, details=outside)


# --- secrets ---------------------------------------------------------------------------------------


def _unquote(name: str) -> str:
    """A path as git wrote it, C-quoted when it holds quotes, backslashes or control characters."""
    if not (len(name) >= 2 and name[0] == name[-1] == '"'):
        return name
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    return re.sub(r'\\(.)', lambda m: escapes.get(m[1], m[1]), name[1:-1])


def added_lines(diff: str) -> dict[str, list[tuple[int, str]]]:
    """The lines a unified diff adds, per new file path, with their line numbers in the new file."""
    found: dict[str, list[tuple[int, str]]] = {}
    path: str | None = None
    old_left = new_left = 0
    number = 0
    for line in diff.split("\n"):  # not splitlines(): a CR inside a line is content
        if old_left > 0 or new_left > 0:
            tag, text = line[:1] or " ", line[1:]
            if tag in ("+", " ") and path is not None:
                if tag == "+":
                    found.setdefault(path, []).append((number, text))
                number += 1
                new_left -= 1
            if tag in ("-", " "):
                old_left -= 1
            continue
        if line.startswith("+++ "):
            target = _unquote(line[4:].rstrip("\t"))
            path = target[2:] if target.startswith("b/") else None
        elif hunk := _HUNK.match(line):
            old_left = int(hunk[1] or 1)
            number, new_left = int(hunk[2]), int(hunk[3] or 1)
    return found


SCAN_CAP_BYTES = 5_000_000
"""A changed file larger than this is not scanned and fails the secrets gate: it cannot be vouched for."""

Finding = tuple[int, str, str]
"""(line number, kind of secret, the line's text): the text only tells old findings from new ones."""


def decoded(data: bytes) -> str:
    """`data` as text, leniently: NUL bytes dropped (which also reveals UTF-16 text of ASCII), invalid
    UTF-8 replaced."""
    return data.replace(b"\0", b"").decode("utf-8", "replace")


def _own_findings(text: str) -> set[Finding]:
    """Key shapes and secret env values (plain or disguised) in `text`, per line."""
    if not (find_secrets(text) or find_secret_values(text)):
        return set()  # the common case: one pass over the whole text, no per-line work
    found: set[Finding] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        found.update((number, kind, line) for kind in (*find_secrets(line), *find_secret_values(line)))
    return found


def _detect_secrets(files: dict[str, list[tuple[int, str]]]) -> set[tuple[str, int, str]]:
    """detect-secrets findings as (path, line, type), scanning copies of the given lines on disk."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import Settings as DetectSettings
    from detect_secrets.settings import transient_settings

    known: dict[str, type] = get_mapping_from_secret_type_to_class()
    plugins = [{"name": cls.__name__} for cls in known.values() if cls.__name__ not in _NOISY_PLUGINS]
    filters = [{"path": name} for name in DetectSettings().filters
               if name not in DetectSettings.DEFAULT_FILTERS and name != _ALLOWLIST_FILTER]
    findings: set[tuple[str, int, str]] = set()
    with _DETECT_SECRETS_LOCK, tempfile.TemporaryDirectory(prefix="agentsprint-secrets-") as tmp, \
            transient_settings({"plugins_used": plugins, "filters_used": filters}):
        for index, (path, lines) in enumerate(files.items()):
            copy = Path(tmp) / str(index) / Path(path).name  # same name: plugins look at the extension
            copy.parent.mkdir()
            copy.write_text("\n".join(text for _, text in lines) + "\n", encoding="utf-8", errors="replace")
            for secret in scan_file(str(copy)):
                findings.add((path, lines[secret.line_number - 1][0], secret.type))
    return findings


def new_lines(entry: ChangedContent) -> tuple[str, list[tuple[int, str]]]:
    """(the new content as text, its lines the old content did not have, numbered).

    Comparing the full contents, not git's text diff: a file git calls binary has lines too.
    """
    text = decoded(entry.content or b"")
    old = set(decoded(entry.before or b"").split("\n"))
    added = [(number, line) for number, line in enumerate(text.split("\n"), start=1)
             if line not in old and line.strip()]
    return text, added


def _findings(contents: list[ChangedContent]) -> tuple[list[str], list[str]]:
    """(`path:line: kind` of each secret a change adds, paths too large to scan).

    Every line of the new content is looked at; a finding on a line the old content already had is
    not the change's doing. detect-secrets (slower: ~25 detectors a line) reads only the new lines.
    """
    details: set[tuple[str, int, str]] = set()
    added_by_path: dict[str, list[tuple[int, str]]] = {}
    for entry in contents:
        if entry.content is None:
            continue
        text, added = new_lines(entry)
        fresh = {line for _, line in added}
        details.update((entry.path, number, kind) for number, kind, line in _own_findings(text) if line in fresh)
        if added:
            added_by_path[entry.path] = added
    if added_by_path:
        details.update(_detect_secrets(added_by_path))
    too_large = [entry.path for entry in contents if entry.content is None]
    return [f"{path}:{number}: {kind}" for path, number, kind in sorted(details)], too_large


def check_secrets(contents: list[ChangedContent]) -> GateResult:
    """Fail naming `file:line` and the kind of each secret the change adds (never the secret itself).

    Reads the full content of every added or changed file (binary, NUL bytes and all), and looks for
    key shapes, detect-secrets' detectors and the values of this process's secret env vars, plain or
    disguised. A secret the file already held before the change is not the change's doing.
    """
    started = time.monotonic()
    details, too_large = _findings(contents)
    details += [f"{path}: too large to scan (over {SCAN_CAP_BYTES:,} bytes); a human must check it"
                for path in too_large]
    seconds = round(time.monotonic() - started, 3)
    if not details:
        return GateResult(name=SECRETS, kind=SECRETS, passed=True,
                          output=f"no secrets in the {len(contents)} changed files", seconds=seconds)
    output = "the change adds what looks like secrets; remove them (read keys from the environment):\n"
    output += "\n".join(f"- {line}" for line in details)
    return GateResult(name=SECRETS, kind=SECRETS, passed=False, output=output, seconds=seconds,
                      details=details)


def worktree_contents(worktree: Path, changed_files: list[str]) -> list[ChangedContent]:
    """What `check_secrets` reads when no Workspace is at hand: the changed files as they are on disk."""
    contents = []
    for path in changed_files:
        file = worktree / path
        if file.is_file() and not file.is_symlink():
            size = file.stat().st_size
            data = file.read_bytes() if size <= SCAN_CAP_BYTES else None
            contents.append(ChangedContent(path=path, size=size, content=data, before=b""))
    return contents


# --- commands --------------------------------------------------------------------------------------


def run_command_gate(gate: Gate, worktree: Path, settings: Settings) -> GateResult:
    """Run a `name: command` gate in the worktree's sandbox (no shell); exit code 0 passes.

    It runs code the coder wrote: the same sandbox as the coder's `run` tool (SandboxUnavailable if none).
    """
    command = gate.command or ""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        argv, problem = [], f"cannot parse the command: {exc}"
    else:
        problem = "empty command"
    if not argv:
        return GateResult(name=gate.name, kind=COMMAND, passed=False, output=f"$ {command}\n{problem}",
                          details=["not run"])
    timeout = settings.run.command_timeout_seconds
    result = policy.run_command(argv, worktree, timeout, settings.run.output_cap, env=policy.scrubbed_env(),
                                sandbox=policy.Sandbox.from_settings(settings))
    status = f"timed out after {timeout:g}s" if result.timed_out else f"exit code {result.exit_code}"
    passed = result.exit_code == 0 and not result.timed_out
    return GateResult(name=gate.name, kind=COMMAND, passed=passed, output=f"$ {command}\n{result.output}",
                      seconds=result.seconds, details=[status])


def run_gates(item: Item, worktree: Path, changed_files: list[str], diff: str,
              settings: Settings, contents: list[ChangedContent] | None = None) -> list[GateResult]:
    """Protected paths, scope (if set), secrets (if in the DoD), then each command gate, in that order.

    The secrets gate reads `contents` (the change's files from git), else the changed files on disk.
    """
    results = [check_protected(changed_files, list(settings.policy.protected_paths))]
    if item.scope:
        results.append(check_scope(changed_files, item.scope))
    if needs_secret_scan(item):
        results.append(check_secrets(contents if contents is not None else worktree_contents(worktree, changed_files)))
    results.extend(run_command_gate(gate, worktree, settings) for gate in item.command_gates)
    return results


def run_item_gates(item: Item, workspace: Workspace, changed_files: list[str], diff: str,
                   settings: Settings) -> list[GateResult]:
    """`run_gates` for an item's committed work: command gates in a clean checkout of its branch tip
    (`run.gate_checkout = "clean"`, the default; kept for the next round) or in its worktree."""
    contents = workspace.changed_contents(item.id, SCAN_CAP_BYTES) if needs_secret_scan(item) else None
    if item.command_gates and settings.run.gate_checkout == "clean":
        return run_gates(item, workspace.gate_checkout(item.id), changed_files, diff, settings, contents)
    return run_gates(item, workspace.worktree_path(item.id), changed_files, diff, settings, contents)


def needs_secret_scan(item: Item) -> bool:
    return any(gate.kind is GateKind.SECRETS for gate in item.dod)


def summarize(results: list[GateResult], limit: int = SUMMARY_CHARS) -> str:
    """The gates' results for a prompt: failed gates first with their output, passed ones in a line each."""
    if not results:
        return "no deterministic gates ran"
    failed = [r for r in results if not r.passed]
    passed_lines = [_header(r) for r in results if r.passed]
    if not failed:
        return "\n".join(["all deterministic gates passed", *passed_lines])
    headers = [_header(r) for r in failed]
    room = max(200, (limit - sum(len(text) + 1 for text in [*passed_lines, *headers])) // len(failed))
    blocks = [f"{head}\n{policy.cap_text(r.output.strip(), room)}"
              for head, r in zip(headers, failed, strict=True)]
    return "\n\n".join([*blocks, "\n".join(passed_lines)] if passed_lines else blocks)


def _header(result: GateResult) -> str:
    """No duration: a prompt holds only what the model needs, and the same result must make the same
    prompt (a gate taking 0.1 s instead of 0.0 s under load changed QA's token count)."""
    status = "PASSED" if result.passed else "FAILED"
    facts = [result.kind, *(result.details[:1] if result.kind == COMMAND else [])]
    return f"{status} {result.name} ({', '.join(facts)})"
