"""A bare `agentsprint` on a real pseudo-terminal opens the app (80x24, as over plain SSH or in tmux), and
`q` quits it; read back through a terminal emulator (pyte)."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pyte
import pytest
from durability_support import AGENTSPRINT, new_project
from runner_support import item

from agentsprint.llm.scripted import ScriptedServer


def screen_after(proc: subprocess.Popen[bytes], master: int, screen: pyte.Screen, want: list[str],
                 timeout: float = 60) -> str:
    """Feed the emulator until all of `want` is on the screen (or the process ends, or time is up)."""
    stream = pyte.ByteStream(screen)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if select.select([master], [], [], 0.2)[0]:
            try:
                stream.feed(os.read(master, 65536))
            except OSError:
                break
        if all(text in "\n".join(screen.display) for text in want):
            break
    return "\n".join(screen.display)


@pytest.mark.parametrize("term", ["xterm-256color", "tmux-256color"])
def test_bare_agentsprint_on_a_terminal_opens_the_app_at_80x24_and_q_quits(tmp_path: Path, term: str) -> None:
    with ScriptedServer() as server:
        root = new_project(tmp_path / "p", server.base_url, [item("AS-1", dod=["secrets"])]).root
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_") and k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([AGENTSPRINT], cwd=root, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            env=env | {"TERM": term, "NO_COLOR": "1"}, start_new_session=True)
    os.close(slave)
    try:
        shown = screen_after(proc, master, pyte.Screen(80, 24), ["Item AS-1", "q Quit"])
        os.write(master, b"q")
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert "agentsprint" in shown and "Backlog" in shown and "Item AS-1" in shown, shown
    assert "q Quit" in shown, shown
    assert code == 0
