"""Starting `agentsprint run` as a detached process (the TUI starts runs this way and never owns them)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from agentsprint.config import Settings


def launch_run(settings: Settings, item_ids: list[str] | None = None,
               sprint: str | None = None) -> tuple[int, Path]:
    """Start `agentsprint run --ci` (`--sprint NAME` when given) in its own session, output to a log file.

    Returns (pid, log path).

    The process outlives whoever started it: closing the TUI never affects the run."""
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    args = [sys.executable, "-m", "agentsprint", "run", "--ci"]
    for item_id in item_ids or []:
        args += ["--item", item_id]
    args += ["--sprint", sprint] if sprint else []
    with log.open("ab") as out:
        proc = subprocess.Popen(args, cwd=settings.root, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid, log
