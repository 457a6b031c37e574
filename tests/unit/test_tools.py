"""Tools in real temporary folders: results the model can read, refusals with a policy block."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agentsprint.agents.tools import ToolPolicy, ToolResult, execute

POLICY = ToolPolicy(allowed_commands=["python", "echo"], command_timeout_s=20, output_cap=2000)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "src").mkdir(parents=True)
    calc = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
    (root / "src" / "calc.py").write_text(calc)
    (root / "README.md").write_text("# calc\n")
    (root / ".git").write_text("gitdir: elsewhere\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.pyc").write_bytes(b"\0\1")
    return root


def run(tree: Path, name: str, **args: object) -> ToolResult:
    return execute(str(tree), name, dict(args), POLICY)


def test_list_files_is_recursive_sorted_and_skips_vcs(tree: Path) -> None:
    assert run(tree, "list_files").output.splitlines() == ["README.md", "src/calc.py"]
    assert run(tree, "list_files", path="src").output == "src/calc.py"
    missing = run(tree, "list_files", path="nope")
    assert not missing.ok and "no such" in missing.output


def test_read_file_whole_and_line_range(tree: Path) -> None:
    whole = run(tree, "read_file", path="src/calc.py")
    assert whole.ok and whole.output.startswith("[src/calc.py: lines 1-6 of 6]\ndef add")
    part = run(tree, "read_file", path="src/calc.py", start=2, end=2)
    assert part.output == "[src/calc.py: lines 2-2 of 6]\n    return a - b\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"path": "missing.py"}, "no such file"),
        ({"path": "src"}, "is a folder"),
        ({"path": "src/calc.py", "start": 99}, "past the end"),
    ],
)
def test_read_file_mistakes_are_results(tree: Path, args: dict[str, object], fragment: str) -> None:
    result = run(tree, "read_file", **args)
    assert not result.ok and result.policy_block is None and fragment in result.output


def test_read_file_stops_at_the_cap_on_a_whole_line(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("".join(f"line {n:04d}\n" for n in range(1, 1001)))
    small = ToolPolicy(allowed_commands=[], command_timeout_s=5, output_cap=100)
    result = execute(str(tmp_path), "read_file", {"path": "big.txt"}, small)
    assert "lines 1-10 of 1000" in result.output and "read on with start=11" in result.output
    assert result.output.endswith("line 0010\n")


def test_write_then_edit(tree: Path) -> None:
    wrote = run(tree, "write_file", path="pkg/new.py", content="x = 1\ny = 1\n")
    assert wrote.ok and wrote.output == "wrote pkg/new.py (2 lines)"
    edited = run(tree, "edit_file", path="src/calc.py", old="def add(a, b):\n    return a - b",
                 new="def add(a, b):\n    return a + b")
    assert edited.ok
    assert (tree / "src" / "calc.py").read_text().startswith("def add(a, b):\n    return a + b\n")


@pytest.mark.parametrize(("old", "count"), [("return a - b", 2), ("return a * b", 0)])
def test_edit_needs_exactly_one_occurrence(tree: Path, old: str, count: int) -> None:
    before = (tree / "src" / "calc.py").read_text()
    result = run(tree, "edit_file", path="src/calc.py", old=old, new="pass")
    assert not result.ok and f"occurs {count} times" in result.output
    assert (tree / "src" / "calc.py").read_text() == before


def test_search_lists_path_line_text(tree: Path) -> None:
    result = run(tree, "search", pattern=r"return a \- b")
    hits = ["src/calc.py:2:     return a - b", "src/calc.py:6:     return a - b"]
    assert result.output.splitlines() == hits
    assert run(tree, "search", pattern="zzz").output == "(no matches)"


def test_search_caps_matches(tmp_path: Path) -> None:
    (tmp_path / "many.txt").write_text("hit\n" * 500)
    roomy = POLICY.model_copy(update={"output_cap": 99999})
    lines = execute(str(tmp_path), "search", {"pattern": "hit"}, roomy)
    assert len(lines.output.splitlines()) == 201
    assert "more than 200 matches" in lines.output


def test_bad_regex_is_a_result(tree: Path) -> None:
    result = run(tree, "search", pattern="(unclosed")
    assert not result.ok and "bad regular expression" in result.output


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", ".git/config", "src/../../x"])
def test_path_escape_is_refused(tree: Path, path: str) -> None:
    result = run(tree, "write_file", path=path, content="x")
    assert result.policy_block == "path" and not result.ok
    assert result.output.startswith("refused by policy")
    assert not (tree.parent / "outside.txt").exists()


def test_symlink_escape_is_refused(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s3cret")
    (tree / "link").symlink_to(tmp_path)
    result = run(tree, "read_file", path="link/secret.txt")
    assert result.policy_block == "path" and "s3cret" not in result.output


def test_disallowed_command_is_refused(tree: Path) -> None:
    result = run(tree, "run", command="rm -rf src")
    assert result.policy_block == "command" and not result.ok
    assert (tree / "src" / "calc.py").exists()
    piped = run(tree, "run", command="python -c 'print(1)' | cat")
    assert piped.policy_block == "command"


def test_allowed_command_runs_in_the_worktree(tree: Path) -> None:
    result = run(tree, "run", command="python -c 'import os; print(os.listdir(\"src\"))'")
    assert result.ok and "exit code 0" in result.output and "['calc.py']" in result.output
    failing = run(tree, "run", command="python -c 'raise SystemExit(3)'")
    assert not failing.ok and failing.policy_block is None and "exit code 3" in failing.output


def test_run_env_holds_no_secrets(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_API_KEY", "super-secret-value-123")
    result = run(tree, "run", command="python -c 'import os; print(os.environ.get(\"MY_API_KEY\"))'")
    assert "None" in result.output and "super-secret" not in result.output


def test_command_output_is_capped(tree: Path) -> None:
    small = POLICY.model_copy(update={"output_cap": 200})
    result = execute(str(tree), "run", {"command": f"{Path(sys.executable).name} -c 'print(\"x\" * 5000)'"},
                     small.model_copy(update={"allowed_commands": [Path(sys.executable).name]}))
    assert result.ok and "characters cut" in result.output and len(result.output) < 400


def test_finish_and_unknown_and_bad_arguments(tree: Path) -> None:
    finish = run(tree, "finish", summary="done")  # terminal: its arguments end the loop, nothing executes it
    assert not finish.ok and "no executable tool named 'finish'" in finish.output
    assert not run(tree, "submit_plan", steps=[], acceptance=[]).ok
    bad = run(tree, "read_file", path="a", color="red")
    assert not bad.ok and "color" in bad.output


@pytest.mark.parametrize(("text", "args", "expected"), [
    ("a\nb\nc", {}, "[f.txt: lines 1-3 of 3]\na\nb\nc"),
    ("a\r\nb\r\n", {"start": 2}, "[f.txt: lines 2-2 of 2]\nb\r\n"),
    ("", {}, "[f.txt: no lines in 1..0 of 0]"),
    ("a\nb\nc\nd\n", {"start": 2, "end": 3}, "[f.txt: lines 2-3 of 4]\nb\nc\n"),
    ("a\nb\n", {"start": 1, "end": 99}, "[f.txt: lines 1-2 of 2]\na\nb\n"),
    ("a\nb\n", {"start": 2, "end": 1}, "[f.txt: no lines in 2..1 of 2]"),
])
def test_read_file_streams_the_same_lines(tmp_path: Path, text: str, args: dict[str, object], expected: str) -> None:
    (tmp_path / "f.txt").write_bytes(text.encode())
    assert execute(str(tmp_path), "read_file", {"path": "f.txt", **args}, POLICY).output == expected
