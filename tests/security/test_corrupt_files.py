"""Corrupt or hostile files on disk give one clear line naming the file and exit 2, and change nothing.

A garbage application database, a garbage DBOS system database, a database URL that points at a
file that is no database (a copy of /etc/passwd: the test never aims agentsprint at the real one),
a byte that is not UTF-8 in agentsprint.toml, and an epic name that walks out of the repository.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_support import item, make_project

from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import PLANS, ScriptBook

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
GARBAGE = bytes(range(256)) * 40


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): [tool_call("finish", summary="nothing")]})
    with ScriptedServer() as server:
        yield make_project(tmp_path / "p", server, [item("AS-1", dod=[])], book).root


def _snapshot(folder: Path, name: str) -> dict[str, str]:
    """The files `name*` in `folder` (the database, any journal beside it) with the sha256 of their bytes."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.glob(f"{name}*"))}


def _assert_clear_error(done: subprocess.CompletedProcess[str], names: str) -> None:
    shown = done.stdout + done.stderr
    assert done.returncode == 2, shown
    assert "Traceback" not in shown and "sqlalche.me" not in shown, shown
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], shown


@pytest.mark.parametrize("command", [["list"], ["show", "AS-1"], ["run", "--item", "AS-1"], ["review", "list"]])
def test_a_garbage_application_database_is_a_clear_error(project: Path, command: list[str]) -> None:
    state = project / ".agentsprint"
    state.mkdir(exist_ok=True)
    (state / "agentsprint.db").write_bytes(GARBAGE)
    before = _snapshot(state, "agentsprint.db")

    _assert_clear_error(cli(project, *command), str(state / "agentsprint.db"))
    assert _snapshot(state, "agentsprint.db") == before, "the file is unchanged, no -wal or -shm beside it"


def test_a_garbage_dbos_system_database_is_a_clear_error(project: Path) -> None:
    state = project / ".agentsprint"
    state.mkdir(exist_ok=True)
    (state / "dbos.sqlite").write_bytes(GARBAGE)

    _assert_clear_error(cli(project, "run", "--item", "AS-1"), str(state / "dbos.sqlite"))
    assert (state / "dbos.sqlite").read_bytes() == GARBAGE
    assert not list(state.glob("dbos.sqlite-*")), "no journal beside it"


@pytest.mark.parametrize("command", [["list"], ["show", "AS-1"], ["run", "--item", "AS-1"]])
def test_a_database_url_at_a_file_that_is_no_database_is_a_clear_error(project: Path, tmp_path: Path,
                                                                       command: list[str]) -> None:
    passwd = tmp_path / "etc" / "passwd"
    passwd.parent.mkdir()
    passwd.write_bytes(Path("/etc/passwd").read_bytes())
    config = project / "agentsprint.toml"
    config.write_text(config.read_text() + f'\n[database]\nurl = "sqlite:///{passwd}"\n', encoding="utf-8")
    before = _snapshot(passwd.parent, "")

    _assert_clear_error(cli(project, *command), str(passwd))
    assert _snapshot(passwd.parent, "") == before, "the file is untouched and nothing was created beside it"


@pytest.mark.parametrize("command", [["validate"], ["list"], ["run", "--item", "AS-1"]])
def test_a_byte_that_is_not_utf8_in_the_config_names_the_file_and_line(project: Path, command: list[str]) -> None:
    config = project / "agentsprint.toml"
    text = config.read_bytes()
    line = text.count(b"\n") + 2
    config.write_bytes(text + b'\n# caf\xff\n')

    done = cli(project, *command)

    _assert_clear_error(done, f"{config}:{line}")
    assert config.read_bytes() == text + b'\n# caf\xff\n'


def test_an_epic_name_that_leaves_the_repository_is_a_validation_error(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "x.yml"
    outside.write_text("budget: {tokens: 999999999}\n", encoding="utf-8")
    items = sorted((project / "backlog").glob("AS-1-*.md"))
    text = items[0].read_text(encoding="utf-8")
    hostile = text.replace("\ntitle:", f"\nepic: {os.path.relpath(tmp_path / 'x', project / 'backlog' / 'epics')}"
                           "\ntitle:", 1)
    items[0].write_text(hostile, encoding="utf-8")
    line = hostile.splitlines().index(next(x for x in hostile.splitlines() if x.startswith("epic:"))) + 1

    done = cli(project, "validate")

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{items[0].relative_to(project)}:{line}:" in done.stdout and "epic" in done.stdout, done.stdout
    run = cli(project, "run", "--item", "AS-1")
    assert run.returncode != 0 and "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr
