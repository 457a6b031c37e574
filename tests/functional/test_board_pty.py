"""The live run board on a real pseudo-terminal: `agentsprint run` against the scripted server, read back
through a terminal emulator (pyte) at 80x24 and 120x40.

A frame is the screen each time the process pauses writing (a whole refresh has been drawn). In
every frame the board must show whole ids and statuses, the same header (stable columns), active
items above finished ones, and account for every item it has seen (rows drawn plus the folded
summary), never cropping rows off the screen.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pyte
import pytest
from runner_support import item, make_project

from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner.demo_script import Reply, ScriptBook

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
IDS = [f"WIDGET-{n}" for n in range(1, 23)]
SLOW = IDS[-4:]
"""These do real, slow work; the others escalate at once (the supervisor hands them to a person), so
most of the board is finished while these still run."""
STATUSES = {"queued", "todo", "planned", "running", "done", "awaiting_review", "escalated", "failed", "stopped"}
ACTIVE = {"queued", "todo", "planned", "running"}
FOLDED = re.compile(r"^\+ (\d+) finished: ")


def _book() -> ScriptBook:
    slow = ScriptedReply(tool_calls=[tool_call("list_files", path="shop")], latency=1.5)
    coder: dict[tuple[str, int], list[Reply]] = {
        (item_id, 1): [slow, slow, tool_call("write_file", path=f"shop/{item_id.lower().replace('-', '_')}.py",
                                             content=f"NAME = {item_id!r}\n"),
                       tool_call("finish", summary="added")] for item_id in SLOW}
    plans = {item_id: tool_call("submit_plan", steps=[], acceptance=[], escalate="a person must decide this")
             for item_id in IDS if item_id not in SLOW}
    return ScriptBook(plans, coder)


def run_on_pty(root: Path, columns: int, lines: int) -> tuple[int, list[list[str]]]:
    """Run `agentsprint run` on a pty of this size; (exit code, every screen it drew)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_") and k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([AGENTSPRINT, "run", "--parallel", "8"], cwd=root, stdin=slave, stdout=slave,
                            stderr=slave, env=env | {"TERM": "xterm-256color"}, close_fds=True)
    os.close(slave)
    screen = pyte.Screen(columns, lines)
    stream = pyte.ByteStream(screen)
    frames: list[list[str]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the pty
                break
            if not chunk:
                break
            stream.feed(chunk)
            if not select.select([master], [], [], 0.05)[0]:  # the terminal is quiet: a whole frame is drawn
                frames.append(list(screen.display))
        elif proc.poll() is not None:
            break
    os.close(master)
    if proc.poll() is None:
        proc.kill()
    return proc.wait(timeout=30), frames


def board_of(frame: list[str]) -> tuple[str, list[list[str]], int] | None:
    """(header line, the cells of each item row, items folded into the summary) of a frame's board."""
    titles = [i for i, line in enumerate(frame) if line.strip() == "agentsprint run"]
    starts = [i for i in range(titles[-1] + 1, min(titles[-1] + 4, len(frame)))
              if re.search(r"\bitem\b", frame[i]) and re.search(r"\bstatus\b", frame[i])] if titles else []
    if not starts:
        return None
    header = starts[0]
    rows: list[list[str]] = []
    folded = 0
    for line in frame[header + 1:]:
        cells = line.replace("│", " ").replace("┃", " ").split()
        if not cells or all("\u2500" <= ch <= "\u257f" for ch in "".join(cells)):  # a border line
            continue
        found = FOLDED.match(line.strip())
        if found:
            folded = int(found.group(1))
            break
        if not cells[0].startswith("W") and not cells[0].endswith("…"):
            break
        rows.append(cells)
    return frame[header].rstrip(), rows, folded


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    with ScriptedServer() as server:
        items = [item(item_id, dod=[], scope=["shop/**"]) for item_id in IDS]
        yield make_project(tmp_path / "p", server, items, _book()).root


@pytest.mark.parametrize(("columns", "lines"), [(80, 24), (120, 40)])
def test_board_keeps_ids_statuses_and_columns_and_running_items_on_screen(project: Path, columns: int,
                                                                          lines: int) -> None:
    code, frames = run_on_pty(project, columns, lines)
    boards = [b for b in (board_of(f) for f in frames) if b is not None and b[1]]

    assert code == 1 and boards, "\n".join(frames[-1] if frames else [])  # 1: escalated items
    headers = {header for header, _, _ in boards}
    assert len(headers) == 1, f"the columns moved between frames: {headers}"
    header = headers.pop()
    for name in ("item", "status", "round", "role", "tokens", "usd"):
        assert re.search(rf"\b{name}\b", header), f"column {name!r} missing or cut at {columns}: {header!r}"
    most = 0
    for _, rows, folded in boards:
        ids = [cells[0] for cells in rows]
        assert set(ids) <= set(IDS), f"an id was cut: {ids}"
        statuses = [cells[1] for cells in rows]
        assert set(statuses) <= STATUSES, f"a status was cut: {statuses}"
        active = [s in ACTIVE for s in statuses]
        assert active == sorted(active, reverse=True), f"a running item under a finished one: {statuses}"
        assert len(rows) + 2 <= lines, "the board is taller than the terminal"
        most = max(most, len(rows) + folded)
    assert most == len(IDS), "every item is on the board, drawn or counted in the summary line"
    assert any(folded for _, _, folded in boards) is (len(IDS) + 2 > lines), "finished items fold only when needed"
