"""Running one command without a shell, in its own process group, with a timeout and capped output.

Re-exported by `agentsprint.policy`; kept apart so policy stays a page of rules.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agentsprint.redaction import redact

KILL_GRACE_SECONDS = 1.0
"""Time between SIGTERM and SIGKILL when a command times out."""
_POLL_SECONDS = 0.05


# Terminal control sequences (colours, cursor moves, titles): CSI, OSC (ended by BEL or ST) and
# two-character escapes. Tools colour their output even without a terminal (FORCE_COLOR, pytest
# --color=yes); the codes mean nothing in the store, the review page or a model's prompt.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()*+][0-9A-Za-z]|[@-Z\\-_])"
                   r"|\x9b[0-?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """`text` without terminal colour and control sequences."""
    return _ANSI.sub("", text)


class CommandResult(BaseModel):
    """What a command did: exit code (negative = killed by that signal), capped output, time."""

    model_config = ConfigDict(frozen=True)

    exit_code: int
    output: str
    timed_out: bool = False
    seconds: float = 0.0


def cap_text(text: str, cap: int) -> str:
    """`text` cut to about `cap` characters, keeping its head and tail around a marker."""
    if len(text) <= cap:
        return text
    head = cap // 2
    tail = cap - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[len(text) - tail:] if tail else ''}"


class _Capture:
    """Keeps the first and last `cap` bytes of a stream and counts what it drops."""

    def __init__(self, cap: int) -> None:
        self.cap = max(cap, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        room = self.cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        excess = len(self.tail) - self.cap
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        if not self.dropped:
            return cap_text((self.head + self.tail).decode("utf-8", "replace"), self.cap)
        head = self.head.decode("utf-8", "replace")[: self.cap // 2]
        tail_text = self.tail.decode("utf-8", "replace")
        tail = tail_text[len(tail_text) - (self.cap - self.cap // 2):]
        cut = self.dropped + len(self.head) + len(self.tail) - len(head) - len(tail)
        return f"{head}\n[... {cut} characters cut ...]\n{tail}"


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the leader has exited, without reaping it (its pid keeps the group id reserved)."""
    if hasattr(os, "waitid"):
        try:
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True
    return proc.poll() is not None


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole group, give it a grace period, then SIGKILL whatever is left."""
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while time.monotonic() < deadline and not _exited(proc):
        time.sleep(_POLL_SECONDS / 2)
    _signal_group(proc.pid, signal.SIGKILL)


def _pump(proc: subprocess.Popen[bytes], capture: _Capture, deadline: float,
          stop: threading.Event | None = None) -> bool:
    """Read output until EOF, the deadline or `stop`; True when cut short with the leader running."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        drain_until: float | None = None
        while True:
            now = time.monotonic()
            if drain_until is None and _exited(proc):
                drain_until = min(deadline, now + KILL_GRACE_SECONDS)  # a background child may hold the pipe
            limit = deadline if drain_until is None else drain_until
            if now >= limit or (stop is not None and stop.is_set()):
                return drain_until is None
            if selector.select(timeout=min(_POLL_SECONDS, limit - now)):
                chunk = os.read(fd, 65536)
                if not chunk:
                    return False
                capture.feed(chunk)


def _drain(proc: subprocess.Popen[bytes], capture: _Capture) -> None:
    assert proc.stdout is not None
    try:
        while chunk := os.read(proc.stdout.fileno(), 65536):
            capture.feed(chunk)
    except BlockingIOError:
        pass


def run_process(argv: Sequence[str], cwd: Path, timeout_s: float, output_cap: int,
                env: Mapping[str, str], stop: threading.Event | None = None) -> CommandResult:
    """Run `argv` (never through a shell) in its own process group; kill the whole group on timeout
    (or when `stop` is set: `timed_out` is then True and the caller says why)."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=dict(env), start_new_session=True,
        )
    except FileNotFoundError:
        return CommandResult(exit_code=127, output=f"command not found: {argv[0] if argv else '(empty)'}")
    except (PermissionError, NotADirectoryError) as exc:
        return CommandResult(exit_code=126, output=f"cannot run {argv[0]}: {exc.strerror}")
    capture = _Capture(output_cap)
    with proc:
        timed_out = _pump(proc, capture, started + timeout_s, stop)
        if timed_out:
            _stop_group(proc)
        else:
            _signal_group(proc.pid, signal.SIGKILL)  # leftovers of a finished command
        exit_code = proc.wait()
        _drain(proc, capture)
    output = strip_ansi(capture.text())
    if timed_out:
        cause = "stopped" if stop is not None and stop.is_set() else f"timed out after {timeout_s:g}s"
        output += f"\n[{cause}: process group killed]"
    seconds = round(time.monotonic() - started, 3)
    return CommandResult(exit_code=exit_code, output=redact(output), timed_out=timed_out, seconds=seconds)
