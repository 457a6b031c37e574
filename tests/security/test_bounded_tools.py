"""Finding 7: a model-written pattern or file cannot hang a tool, and a huge file cannot fill memory.

Every attack runs in a child process with a hard timeout, so a regression fails the test instead of
hanging the suite; memory is the child's peak RSS (`resource.getrusage`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from runner_support import item, make_project, query

from agentsprint.agents.tools import ToolPolicy, execute
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import PLANS, ScriptBook

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
POLICY = ToolPolicy(allowed_commands=[], command_timeout_s=10, output_cap=4000)
EVIL = "(a+)+$"
EVIL_LINE = "a" * 40 + "!\n"  # Python's re backtracks 2**40 ways before it gives up on this line

CHILD = """
import json, resource, sys, time
from agentsprint.agents.tools import ToolPolicy, execute
worktree, name, args, policy = json.loads(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
result = execute(worktree, name, args, ToolPolicy(**policy))
seconds = time.monotonic() - started
grew_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"result": result.model_dump(), "seconds": seconds, "grew_mib": grew_kib / 1024}))
"""


def in_child(worktree: Path, name: str, args: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    """`execute(...)` in a fresh interpreter killed after `timeout` seconds (the test then fails)."""
    payload = json.dumps([str(worktree), name, args, POLICY.model_dump()])
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, payload], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}({args}) still running after {timeout}s")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "src").mkdir(parents=True)
    (root / "src" / "evil.txt").write_text(EVIL_LINE)
    (root / "src" / "app.py").write_text("needle = 1\n")
    return root


def test_a_catastrophic_pattern_finishes_in_linear_time(worktree: Path) -> None:
    (worktree / "src" / "long.txt").write_text(("a" * 5000 + "!\n") * 200)

    done = in_child(worktree, "search", {"pattern": EVIL}, timeout=20)

    assert done["result"]["ok"] and done["result"]["output"] == "(no matches)"
    assert done["seconds"] < 2


@pytest.mark.parametrize(("pattern", "advice"), [
    (r"(a)\1", "backreferences"),
    (r"foo(?=bar)", "lookaround"),
    (r"(?<!x)y", "lookaround"),
    (r"(?>a+)b", "atomic groups"),
])
def test_python_only_syntax_is_refused_with_advice(worktree: Path, pattern: str, advice: str) -> None:
    result = execute(str(worktree), "search", {"pattern": pattern}, POLICY)

    assert not result.ok and "bad regular expression" in result.output
    assert advice in result.output and "RE2" in result.output


def test_python_end_of_text_anchor_still_works(worktree: Path) -> None:
    result = execute(str(worktree), "search", {"pattern": r"needle = 1\Z"}, POLICY)

    assert result.output == "src/app.py:1: needle = 1"


def test_a_fifo_in_the_worktree_blocks_no_tool(worktree: Path) -> None:
    os.mkfifo(worktree / "src" / "pipe")

    found = in_child(worktree, "search", {"pattern": "needle"}, timeout=20)
    assert found["result"]["output"] == "src/app.py:1: needle = 1"
    direct = in_child(worktree, "search", {"pattern": "x", "path": "src/pipe"}, timeout=20)
    assert direct["result"]["output"] == "(no matches)"
    read = in_child(worktree, "read_file", {"path": "src/pipe"}, timeout=20)
    assert not read["result"]["ok"] and "FIFO, not a regular file" in read["result"]["output"]
    wrote = in_child(worktree, "write_file", {"path": "src/pipe", "content": "x"}, timeout=20)
    assert not wrote["result"]["ok"] and "FIFO" in wrote["result"]["output"]
    listed = in_child(worktree, "list_files", {"path": "src"}, timeout=20)
    assert "src/pipe" in listed["result"]["output"]


def test_reading_two_lines_of_a_600_mb_file_stays_small(worktree: Path) -> None:
    big = worktree / "big.log"
    big.write_text("first line\nsecond line\n")
    os.truncate(big, 600 * 1024 * 1024)  # sparse: no disk used, but 600 MB to read

    done = in_child(worktree, "read_file", {"path": "big.log", "start": 1, "end": 2}, timeout=60)

    out = done["result"]["output"]
    assert done["result"]["ok"] and out.splitlines()[1:] == ["first line", "second line"]
    assert out.startswith("[big.log: lines 1-2 of at least 3 (only the first 64 MiB are read)]")
    assert done["grew_mib"] < 32, f"peak memory grew by {done['grew_mib']:.0f} MiB"
    assert done["seconds"] < 10


def test_a_600_mb_line_is_cut_not_loaded(worktree: Path) -> None:
    big = worktree / "one-line.txt"
    big.write_text("y" * 10_000)  # text, not binary: search reads it
    os.truncate(big, 600 * 1024 * 1024)

    read = in_child(worktree, "read_file", {"path": "one-line.txt"}, timeout=60)
    found = in_child(worktree, "search", {"pattern": "x"}, timeout=60)

    assert read["result"]["ok"] and "[... line cut]" in read["result"]["output"]
    assert len(read["result"]["output"]) <= POLICY.output_cap + 200
    assert found["result"]["output"] == "(no matches)\n[only the first 2 MB searched of: one-line.txt]"
    assert read["grew_mib"] < 32 and found["grew_mib"] < 32


def test_read_file_beyond_the_scanned_part_says_what_to_do(worktree: Path) -> None:
    big = worktree / "big.log"
    big.write_text("x\n" * 10)
    with big.open("ab") as stream:
        stream.truncate(100 * 1024 * 1024)

    result = in_child(worktree, "read_file", {"path": "big.log", "start": 50}, timeout=60)["result"]

    assert not result["ok"] and "beyond the first 64 MiB" in result["output"] and "search" in result["output"]


def test_a_symlink_loop_is_an_error_result_for_every_tool(worktree: Path) -> None:
    os.symlink("b", worktree / "src" / "a")
    os.symlink("a", worktree / "src" / "b")

    assert execute(str(worktree), "search", {"pattern": "needle"}, POLICY).output == "src/app.py:1: needle = 1"
    for name, args in [("read_file", {"path": "src/a"}), ("write_file", {"path": "src/a", "content": "x"}),
                       ("edit_file", {"path": "src/b", "old": "x", "new": "y"})]:
        result = execute(str(worktree), name, args, POLICY)
        assert not result.ok and "symlink loop" in result.output, result


@pytest.mark.parametrize(("name", "args"), [("read_file", {"path": "x\ud800"}), ("search", {"pattern": "\ud800"}),
                                            ("list_files", {"path": "\udfff"}),
                                            ("write_file", {"path": "a.txt", "content": "\ud800"})])
def test_lone_surrogates_are_an_error_result(worktree: Path, name: str, args: dict[str, Any]) -> None:
    result = execute(str(worktree), name, args, POLICY)

    assert not result.ok and "not valid Unicode" in result.output


def test_edit_file_does_not_load_a_huge_file(worktree: Path) -> None:
    big = worktree / "big.log"
    big.write_text("old\n")
    os.truncate(big, 600 * 1024 * 1024)

    result = in_child(worktree, "edit_file", {"path": "big.log", "old": "old", "new": "new"}, timeout=60)

    assert not result["result"]["ok"] and "larger than 10 MB" in result["result"]["output"]
    assert result["grew_mib"] < 32


def test_list_files_of_a_huge_tree_is_bounded(tmp_path: Path) -> None:
    for folder in range(30):
        sub = tmp_path / "wt" / f"d{folder:02d}"
        sub.mkdir(parents=True)
        for name in range(100):
            (sub / f"f{name:03d}").touch()

    result = execute(str(tmp_path / "wt"), "list_files", {}, POLICY.model_copy(update={"output_cap": 10**6}))

    lines = result.output.splitlines()
    assert len(lines) == 1001 and lines[-1] == "[... 2000 more files; list a sub-folder]"


FIFO_TEST = """import os
import unittest


class T(unittest.TestCase):
    def test_fifo(self):
        os.mkfifo("shop/pipe")
        os.symlink("loop", "shop/loop")
"""


def test_a_run_with_a_catastrophic_search_and_a_fifo_ends_within_its_time_budget(tmp_path: Path) -> None:
    """Through the real CLI: the coder plants a FIFO and a symlink loop with an allowed command, then
    searches with a pattern that backtracks for hours in Python's re; the item's 15 s budget holds."""
    steps = [tool_call("write_file", path="shop/evil.txt", content=EVIL_LINE * 20),
             tool_call("write_file", path="tests/test_fifo.py", content=FIFO_TEST),
             tool_call("run", command="python -m unittest -q tests.test_fifo"),
             tool_call("search", pattern=EVIL, path="."),
             tool_call("read_file", path="shop/pipe"),
             tool_call("write_file", path="shop/loop", content="x"),
             tool_call("edit_file", path="shop/pipe", old="a", new="b"),
             tool_call("finish", summary="searched")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], rounds=1, time="15s")], book)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
        started = time.monotonic()
        try:
            done = subprocess.run([AGENTSPRINT, "run", "--ci", "--item", "AS-1"], cwd=settings.root,
                                  capture_output=True, text=True, timeout=120, env=env)
        except subprocess.TimeoutExpired:
            pytest.fail("`agentsprint run` hung on a catastrophic search or a FIFO")
        seconds = time.monotonic() - started

    assert seconds < 90, done.stdout + done.stderr
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stdout + done.stderr
    tools = [json.loads(data) for (data,) in query(settings, "SELECT data_json FROM events WHERE kind = 'tool.call'")]
    assert [t["tool"] for t in tools][:5] == ["write_file", "write_file", "run", "search", "read_file"]
    assert tools[2]["ok"], tools[2]["output"]
    assert tools[3]["ok"] and "shop/evil.txt" not in tools[3]["output"] and "time limit" not in tools[3]["output"]
    assert "shop/pipe is a FIFO, not a regular file" in tools[4]["output"]
    assert [t["output"] for t in tools[5:7]] == ["error: write_file: shop/loop: symlink loop",
                                                 "error: shop/pipe: no such file"]
    status = query(settings, "SELECT status FROM item_state WHERE item_id = 'AS-1'")
    assert status and status[0][0] in ("done", "awaiting_review", "escalated")
