"""The backlog commands end to end: real git repositories, real files, real SQLite, the real script."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agentsprint.backlog import load_backlog
from agentsprint.cli.main import build_app
from agentsprint.domain import Status
from agentsprint.store import Store
from agentsprint.store.items import transition
from agentsprint.store.tables import BudgetRow, SprintItemRow, SprintRow

SCRIPT = Path(sys.executable).parent / "agentsprint"
DESIGN_FILE = """---
id: AS-12
title: Fix off-by-one in pagination
type: bug
priority: high
value: 8
status: todo
epic: billing
labels: [api]
depends_on: [AS-10]
scope: ["src/pagination/**"]
budget:
  tokens: 500000
  usd: 2.50
  time: 30m
  rounds: 3
dod:
  - tests: pytest -q tests/test_pagination.py
  - lint: ruff check src
  - secrets
  - security: agent
  - review: human
---
What is wrong and what done looks like. A "## Acceptance criteria" list is passed to QA.
"""


def cli(*args: str, stdin: str | None = None) -> Result:
    """Run the app in-process, as `agentsprint ARGS` in the current folder."""
    return CliRunner().invoke(build_app(), list(args), input=stdin)


@pytest.fixture
def project(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An initialised project in a real git repository, as the current folder."""
    monkeypatch.chdir(git_repo)
    assert cli("init").exit_code == 0
    return git_repo


def add(*args: str) -> str:
    """Add an item and return its id."""
    result = cli("add", *args, "--json")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["id"])


def store_for(project: Path) -> Store:
    return Store(f"sqlite:///{project / '.agentsprint' / 'agentsprint.db'}")


class TestInit:
    def test_init_creates_the_project_then_changes_nothing(self, git_repo: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(git_repo)
        (git_repo / ".gitignore").write_text("*.pyc")  # no final newline
        first = cli("init")
        assert first.exit_code == 0
        assert (git_repo / "backlog" / ".gitkeep").is_file() and (git_repo / ".agentsprint").is_dir()
        assert "[run]" in (git_repo / "agentsprint.toml").read_text()
        assert (git_repo / ".gitignore").read_text() == "*.pyc\n.agentsprint/\n"
        before = {p: p.read_bytes() for p in git_repo.rglob("*") if p.is_file() and ".git/" not in str(p)}
        second = cli("init")
        assert second.exit_code == 0 and "already initialised: nothing changed" in second.stdout
        assert {p: p.read_bytes() for p in before} == before
        assert "?? .agentsprint" not in subprocess.run(["git", "status", "--porcelain"], cwd=git_repo,
                                                       capture_output=True, text=True).stdout

    def test_init_respects_settings_in_pyproject(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)  # init needs a repository
        (tmp_path / "pyproject.toml").write_text("[tool.agentsprint.run]\nparallel = 2\n")
        monkeypatch.chdir(tmp_path)
        assert cli("init").exit_code == 0
        assert not (tmp_path / "agentsprint.toml").exists() and (tmp_path / ".gitignore").is_file()


class TestAdd:
    def test_add_writes_exactly_the_design_format(self, project: Path) -> None:
        assert [add("Earlier"), add("Earlier too")] == ["AS-1", "AS-2"]
        for n in range(3, 11):
            (project / "backlog" / f"AS-{n}-x.md").write_text(f"---\nid: AS-{n}\ntitle: Item {n}\n---\n")
        (project / "backlog" / "AS-11-x.md").write_text("---\nid: AS-11\ntitle: Item 11\n---\n")
        result = cli("add", "Fix off-by-one in pagination", "--type", "bug", "--priority", "high", "--value", "8",
                     "--epic", "billing", "--label", "api", "--depends-on", "AS-10", "--scope", "src/pagination/**",
                     "--tokens", "500000", "--usd", "2.50", "--time", "30m", "--rounds", "3",
                     "--dod", "tests: pytest -q tests/test_pagination.py", "--dod", "lint: ruff check src",
                     "--dod", "secrets", "--dod", "security: agent", "--dod", "review: human",
                     "--body", 'What is wrong and what done looks like. A "## Acceptance criteria" list is '
                               "passed to QA.")
        assert result.exit_code == 0, result.output
        path = project / "backlog" / "AS-12-fix-off-by-one-in-pagination.md"
        assert result.stdout.strip() == "created AS-12: backlog/AS-12-fix-off-by-one-in-pagination.md"
        assert path.read_text() == DESIGN_FILE

    def test_template_gives_defaults_and_options_override_them(self, project: Path) -> None:
        result = cli("add", "Broken login", "--template", "bug", "--priority", "low", "--tokens", "1000", "--json")
        record = json.loads(result.stdout)
        assert (record["type"], record["priority"]) == ("bug", "low")
        assert record["budget"] == {"tokens": 1000, "usd": 1.5, "time": "30m", "rounds": 3}
        assert {"review": "human"} in record["dod"] and "## Acceptance criteria" in record["body"]

    def test_project_template_folder_comes_first(self, project: Path) -> None:
        (project / "backlog" / "templates").mkdir()
        (project / "backlog" / "templates" / "chore.md").write_text("---\ntype: chore\nvalue: 1\n---\nTidy.\n")
        record = json.loads(cli("add", "Tidy up", "--template", "chore", "--json").stdout)
        assert (record["type"], record["value"], record["body"]) == ("chore", 1, "Tidy.\n")
        assert load_backlog(project / "backlog").problems == []  # the templates folder is not items

    def test_body_from_stdin(self, project: Path) -> None:
        record = json.loads(cli("add", "From stdin", "--body", "-", "--json", stdin="Line one\nLine two").stdout)
        assert record["body"] == "Line one\nLine two\n"

    @pytest.mark.parametrize(("args", "message"), [
        (["--depends-on", "AS-99"], "unknown dependency AS-99"),
        (["--dod", "vibes"], "unknown DoD entry 'vibes'"),
        (["--time", "soon"], "bad duration"),
        (["--template", "nope"], "unknown template 'nope'"),
        (["--type", "epic"], "'epic' is not one of"),
    ])
    def test_invalid_add_exits_2_and_writes_nothing(self, project: Path, args: list[str], message: str) -> None:
        result = cli("add", "Never written", *args)
        assert result.exit_code == 2
        assert message in " ".join(result.stderr.split())
        assert "Traceback" not in result.output
        assert sorted(p.name for p in (project / "backlog").iterdir()) == [".gitkeep"]


class TestListAndShow:
    def test_list_table_json_and_filters(self, project: Path) -> None:
        add("Fix the bug", "--type", "bug", "--label", "api")
        add("Build the feature", "--label", "ui", "--tokens", "250000", "--usd", "1")
        add("Tidy", "--type", "chore", "--label", "api")
        table = cli("list")
        assert table.exit_code == 0
        lines = table.stdout.splitlines()
        assert lines[0].split() == ["ID", "TITLE", "TYPE", "PRIORITY", "VALUE", "STATUS", "BUDGET"]
        assert lines[2].split()[:3] == ["AS-2", "Build", "the"] and lines[2].endswith("250k tok, $1.00")
        everything = json.loads(cli("list", "--json").stdout)
        assert [r["id"] for r in everything] == ["AS-1", "AS-2", "AS-3"]
        assert [r["id"] for r in json.loads(cli("list", "--json", "--type", "bug").stdout)] == ["AS-1"]
        assert [r["id"] for r in json.loads(cli("list", "--json", "--label", "api").stdout)] == ["AS-1", "AS-3"]
        assert json.loads(cli("list", "--json", "--status", "running").stdout) == []

    def test_list_shows_the_live_status_from_the_database(self, project: Path) -> None:
        add("One")
        add("Two")
        store = store_for(project)
        with store.session() as session:
            transition(session, "AS-2", Status.RUNNING, round=2)
            session.add(SprintRow(name="S1", created_at=time.time()))
            session.add(SprintItemRow(sprint="S1", item_id="AS-2", added_at=time.time()))
        store.close()
        records = json.loads(cli("list", "--json").stdout)
        assert [(r["id"], r["status"], r["file_status"], r["rounds"]) for r in records] == [
            ("AS-1", "todo", "todo", 0), ("AS-2", "running", "todo", 2)]
        assert [r["id"] for r in json.loads(cli("list", "--json", "--status", "running").stdout)] == ["AS-2"]
        assert [r["id"] for r in json.loads(cli("list", "--json", "--sprint", "S1").stdout)] == ["AS-2"]
        unknown = cli("list", "--sprint", "S9")
        assert unknown.exit_code == 2 and "no sprint named 'S9'" in unknown.stderr

    def test_malformed_file_is_reported_and_the_others_still_listed(self, project: Path) -> None:
        add("Good one")
        (project / "backlog" / "AS-2-bad.md").write_text("---\nid: AS-2\ntitle: Bad\nvalue: many\n---\n")
        add("Good two")
        result = cli("list")
        assert result.exit_code == 0
        assert "backlog/AS-2-bad.md:4: value: Input should be a valid integer" in result.stderr
        assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["AS-1", "AS-3"]

    def test_show_json_has_definition_live_status_and_spend(self, project: Path) -> None:
        add("Dependency")
        add("Fix it", "--template", "bug", "--depends-on", "AS-1", "--label", "api", "--scope", "src/**",
            "--body", "Why.\n\n## Acceptance criteria\n- works\n")
        store = store_for(project)
        with store.session() as session:
            transition(session, "AS-2", Status.RUNNING, round=1)
            session.add(BudgetRow(scope="item:AS-2", limit_tokens=300000, spent_tokens=1234, spent_usd=0.25,
                                  updated_at=time.time()))
        store.close()
        record = json.loads(cli("show", "AS-2", "--json").stdout)
        assert {"id", "title", "type", "priority", "value", "status", "budget", "spent", "rounds", "labels",
                "depends_on", "scope", "dod", "body", "path"} <= set(record)
        assert (record["status"], record["rounds"], record["spent"]) == ("running", 1, {"tokens": 1234, "usd": 0.25})
        assert (record["depends_on"], record["scope"], record["path"]) == (["AS-1"], ["src/**"],
                                                                         "backlog/AS-2-fix-it.md")
        assert record["acceptance_criteria"] == ["works"]
        page = cli("show", "AS-2").stdout
        assert "running (file: todo), round 1" in page and "1,234 tok" in page and "## Acceptance" in page

    def test_show_without_database_creates_nothing(self, project: Path) -> None:
        add("Solo")
        record = json.loads(cli("show", "AS-1", "--json").stdout)
        assert (record["status"], record["spent"]) == ("todo", {"tokens": 0, "usd": 0.0})
        assert not (project / ".agentsprint" / "agentsprint.db").exists()

    def test_show_unknown_item_exits_2(self, project: Path) -> None:
        result = cli("show", "AS-404")
        assert result.exit_code == 2 and "item AS-404 not found" in result.stderr


class TestValidate:
    def test_valid_backlog_exits_0_with_a_summary(self, project: Path) -> None:
        add("One")
        add("Two", "--depends-on", "AS-1")
        result = cli("validate")
        assert (result.exit_code, result.stdout.strip()) == (0, "2 item(s), no problems")

    def test_problems_exit_1_with_path_and_line(self, project: Path) -> None:
        add("One")
        (project / "backlog" / "AS-1-copy.md").write_text("---\nid: AS-1\ntitle: Copy\n---\n")
        (project / "backlog" / "AS-3-x.md").write_text("---\nid: AS-3\ntitle: X\ndepends_on: [AS-3]\n---\n")
        result = cli("validate")
        assert result.exit_code == 1
        assert result.stdout.splitlines() == [
            "backlog/AS-1-copy.md:2: duplicate id AS-1 (also in AS-1-one.md)",
            "backlog/AS-1-one.md:2: duplicate id AS-1 (also in AS-1-copy.md)",
            "backlog/AS-3-x.md:4: dependency cycle: AS-3 -> AS-3",
        ]
        assert "3 problem(s) in 3 file(s)" in result.stderr

    def test_config_error_exits_2_naming_the_key(self, project: Path) -> None:
        (project / "agentsprint.toml").write_text("[run]\nparallel = 0\n")
        result = cli("validate")
        assert result.exit_code == 2 and "run.parallel" in result.stderr and "Traceback" not in result.output

    def test_missing_backlog_folder_exits_2(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        result = cli("list")
        assert result.exit_code == 2 and "agentsprint init" in result.stderr


def editor(tmp_path: Path, *contents: str) -> str:
    """An $EDITOR that writes contents[0] on its first run, contents[1] on its second, ..."""
    script = tmp_path / "fake_editor.py"
    (tmp_path / "contents.json").write_text(json.dumps(list(contents)))
    script.write_text(
        "import json, pathlib, sys\n"
        f"state = pathlib.Path({str(tmp_path)!r})\n"
        "runs = len(list(state.glob('editor-run-*')))\n"
        "(state / f'editor-run-{runs}').touch()\n"
        "contents = json.loads((state / 'contents.json').read_text())\n"
        "pathlib.Path(sys.argv[1]).write_text(contents[min(runs, len(contents) - 1)])\n")
    return f"{sys.executable} {script}"


class TestEdit:
    def test_invalid_edit_keeps_the_old_file_then_a_valid_edit_saves(self, project: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        add("Original title")
        path = project / "backlog" / "AS-1-original-title.md"
        before = path.read_text()
        valid = before.replace("title: Original title", "title: Better title  # edited by hand")
        monkeypatch.setenv("EDITOR", editor(tmp_path, before.replace("value: 0", "value: lots"), valid))
        refused = cli("edit", "AS-1")  # not a terminal: no second chance
        assert refused.exit_code == 1 and "AS-1-original-title.md:6: value:" in refused.stderr
        assert path.read_text() == before
        saved = cli("edit", "AS-1")
        assert saved.exit_code == 0 and path.read_text() == valid

    def test_edit_that_breaks_a_link_is_refused(self, project: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
        add("One")
        path = project / "backlog" / "AS-1-one.md"
        monkeypatch.setenv("EDITOR", editor(tmp_path, path.read_text().replace("dod: []", "depends_on: [AS-7]\n"
                                                                                            "dod: []")))
        result = cli("edit", "AS-1")
        assert result.exit_code == 1 and "unknown dependency AS-7" in result.stderr

    def test_on_a_terminal_an_invalid_edit_is_offered_again(self, project: Path, tmp_path: Path) -> None:
        add("Original title")
        path = project / "backlog" / "AS-1-original-title.md"
        valid = path.read_text().replace("Original title", "Fixed on the second try")
        env = {**os.environ, "EDITOR": editor(tmp_path, "---\nnot: [closed\n---\n", valid)}
        transcript, code = run_in_terminal([str(SCRIPT), "edit", "AS-1"], project, env, answer="y\n")
        assert code == 0, transcript
        assert "Edit again?" in transcript and path.read_text() == valid


def run_in_terminal(command: list[str], cwd: Path, env: dict[str, str], answer: str) -> tuple[str, int]:
    """Run `command` on a pseudo-terminal, typing `answer` at the first prompt; (output, exit code)."""
    import pty
    import select

    controller, terminal = pty.openpty()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output, answered, deadline = b"", False, time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            output += chunk
            if not answered and b"Edit again?" in output:
                os.write(controller, answer.encode())
                answered = True
        elif process.poll() is not None:
            break
    os.close(controller)
    return output.decode(errors="replace"), process.wait(timeout=10)


def test_version_and_bare_command(project: Path) -> None:
    assert cli("--version").stdout.strip().startswith("agentsprint ")
    bare = cli()
    assert bare.exit_code == 0 and "Commands:" in bare.stdout and "validate" in bare.stdout


def test_killed_add_never_leaves_a_partial_item(project: Path, tmp_path: Path) -> None:
    """SIGKILL `add` at random moments, mostly around its final write; every file must still parse."""
    body = "".join(f"line {n} of a long description\n" for n in range(300_000))  # ~9.5 MB
    body_file = tmp_path / "body.md"
    body_file.write_text(body)
    backlog_dir = project / "backlog"

    def attempt(kill_after: Callable[[], float] | None, watch: Path | None = None) -> tuple[int, list[str]]:
        with open(body_file, "rb") as stdin:
            process = subprocess.Popen([str(SCRIPT), "add", "Big item", "--body", "-"], cwd=project, stdin=stdin,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if watch is not None:  # wait for the temp file to appear (or the process to end)
                while process.poll() is None and not any(".tmp-" in name for name in os.listdir(watch)):
                    time.sleep(0.0005)
            if kill_after is not None:
                time.sleep(kill_after())
                process.kill()
            code = process.wait()
        backlog = load_backlog(backlog_dir)
        assert backlog.problems == [], backlog.problems
        assert all(item.body == body for item in backlog.items.values())  # whole, never partial
        names = os.listdir(backlog_dir)
        assert all(name.endswith(".md") or name.startswith(".") for name in names)  # temp files are hidden
        for name in names:  # start the next attempt from the same state
            if name.startswith((".AS-", "AS-")):
                (backlog_dir / name).unlink()
        return code, names

    runs = []
    for _ in range(2):  # the first run may be slow (cold caches): time the warm one
        started = time.monotonic()
        assert attempt(None)[0] == 0
        runs.append(time.monotonic() - started)
    fastest = min(runs)
    chance, killed, mid_write = random.Random(1234), 0, 0
    for number in range(16):
        if number % 2:  # kill while the temp file is being written, whenever that happens
            code, names = attempt(lambda: chance.uniform(0, 0.004), watch=backlog_dir)
        else:  # kill at a random moment of a run, before the fastest run would have finished
            code, names = attempt(lambda: chance.uniform(0.05, max(0.06, 0.9 * fastest)))
        killed += code == -9
        mid_write += any(".tmp-" in name for name in names)
    assert killed >= 1, "every add finished before its kill: the test did not test anything"
    assert mid_write >= 1, "no kill landed while the temp file was being written"
    print(f"{killed} of 16 adds killed, {mid_write} of them during the write")


def test_registering_a_module_adds_its_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "extra_cli.py").write_text(
        "import typer\napp = typer.Typer(help='Extra things.')\n"
        "@app.command('hello')\ndef hello(name: str) -> None:\n    typer.echo(f'hello {name}')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from agentsprint.cli.main import COMMAND_MODULES

    app = build_app([*COMMAND_MODULES, ("extra_cli", "extra")])
    assert CliRunner().invoke(app, ["extra", "hello", "you"]).stdout == "hello you\n"
    merged = build_app([("extra_cli", None)])
    assert CliRunner().invoke(merged, ["hello", "me"]).stdout == "hello me\n"


def test_real_script_prints_everything_and_keeps_exit_codes(project: Path) -> None:
    """list/show/validate end the process early (os._exit): output must still be complete."""
    for n in range(40):
        add(f"Item number {n}")
    listed = subprocess.run([str(SCRIPT), "list", "--json"], cwd=project, capture_output=True, text=True)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 40
    (project / "backlog" / "AS-41-bad.md").write_text("---\nid: AS-41\n---\n")
    checked = subprocess.run([str(SCRIPT), "validate"], cwd=project, capture_output=True, text=True)
    assert (checked.returncode, checked.stdout) == (1, "backlog/AS-41-bad.md:1: missing key 'title'\n")
    missing = subprocess.run([str(SCRIPT), "show", "AS-99"], cwd=project, capture_output=True, text=True)
    assert missing.returncode == 2 and "item AS-99 not found" in missing.stderr
