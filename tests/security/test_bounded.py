"""Finding 8: one hostile backlog file ("billion laughs" YAML, huge values) stops no backlog command:
`validate`, `list` and `show` finish at once, name the bad file and still show the good items."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentsprint.backlog.epics import epic_budget
from agentsprint.backlog.errors import BacklogError

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
LAUGHS = "\n".join(
    [f'{chr(97)}: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{chr(97 + n)}: &{chr(97 + n)} [{', '.join([f'*{chr(96 + n)}'] * 9)}]" for n in range(1, 9)]
)  # nine lines; the last one stands for 9**9 (387 million) strings
BAD_ITEM = f"---\nid: AS-9\n{LAUGHS}\ntitle: [{', '.join(['*i'] * 9)}]\n---\nBoom.\n"
GOOD_ITEM = """---
id: AS-1
title: A good item
type: bug
priority: high
value: 3
---
Still listed.
"""


def cli(cwd: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    try:
        return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`agentsprint {' '.join(args)}` still running after {timeout}s")


@pytest.fixture
def backlog(git_repo: Path) -> Path:
    assert cli(git_repo, "init").returncode == 0
    (git_repo / "backlog" / "AS-1-good.md").write_text(GOOD_ITEM)
    (git_repo / "backlog" / "AS-9-laughs.md").write_text(BAD_ITEM)
    return git_repo


@pytest.mark.parametrize("command", [["validate"], ["list"], ["list", "--json"], ["show", "AS-1"]])
def test_a_billion_laughs_file_stops_no_backlog_command(backlog: Path, command: list[str]) -> None:
    started = time.monotonic()
    done = cli(backlog, *command)

    assert time.monotonic() - started < 10
    assert "Traceback" not in done.stderr and len(done.stdout + done.stderr) < 5000
    out = done.stdout + done.stderr
    if command != ["show", "AS-1"]:
        assert "backlog/AS-9-laughs.md:3: YAML anchors and aliases (&name, *name) are not allowed" in out
    if command == ["validate"]:
        assert "1 problem(s) in 1 file(s)" in out, "the good file has none"
    else:
        assert "A good item" in out and done.returncode == 0


def test_validate_fails_with_the_bad_file_named(backlog: Path) -> None:
    done = cli(backlog, "validate")

    assert done.returncode == 1 and "AS-9-laughs.md:3" in done.stdout and "lol" not in done.stdout


def test_an_epic_file_with_aliases_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "epics").mkdir()
    (tmp_path / "epics" / "billing.yml").write_text(f"title: Billing\n{LAUGHS}\nbudget: *i\n")

    started = time.monotonic()
    with pytest.raises(BacklogError, match=r"billing\.yml:2: YAML anchors and aliases") as caught:
        epic_budget(tmp_path, "billing")

    assert time.monotonic() - started < 5 and len(str(caught.value)) < 500


def test_a_huge_value_in_a_file_is_never_quoted_whole(backlog: Path) -> None:
    (backlog / "backlog" / "AS-9-laughs.md").write_text(
        "---\nid: AS-9\ntitle: T\nvalue: [" + ", ".join(["123456789"] * 80_000) + "]\n"
        "status: [" + ", ".join(["x"] * 50_000) + "]\n---\n")

    done = cli(backlog, "validate")

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stdout) < 2000 and "AS-9-laughs.md:5: status in a file is todo" in done.stdout
    assert "AS-9-laughs.md:4: value:" in done.stdout


def test_a_fifo_or_a_huge_file_in_the_backlog_stops_no_command(backlog: Path) -> None:
    (backlog / "backlog" / "AS-9-laughs.md").unlink()
    os.mkfifo(backlog / "backlog" / "AS-7-pipe.md")  # opening it to read blocks until a writer comes
    huge = backlog / "backlog" / "AS-8-huge.md"
    huge.write_text("---\nid: AS-8\ntitle: x\n---\n")
    os.truncate(huge, 600 * 1024 * 1024)

    for command in (["validate"], ["list"], ["show", "AS-1"]):
        done = cli(backlog, *command)
        out = done.stdout + done.stderr
        assert "AS-7-pipe.md:1: cannot read: [Errno 22] not a regular file" in out or command == ["show", "AS-1"]
        assert "AS-8-huge.md:1: cannot read: [Errno 27] larger than 32 MiB" in out or command == ["show", "AS-1"]
        assert "Traceback" not in done.stderr and len(out) < 5000
        assert command == ["validate"] or "A good item" in out


def test_an_epic_file_that_is_a_fifo_is_no_budget(tmp_path: Path) -> None:
    (tmp_path / "epics").mkdir()
    os.mkfifo(tmp_path / "epics" / "billing.yml")

    assert epic_budget(tmp_path, "billing") == (None, None)
