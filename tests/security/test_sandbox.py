"""The OS sandbox for agent commands: attacks through the coder's `run` tool and command gates.

Each test drives a real run (the scripted model playing the attacker through the public tool
contract, real git, real SQLite, the real bubblewrap), mostly through the installed `agentsprint`
script. Every one of them passed as an attack before the sandbox existed.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_support import git, item, make_project, query
from sandbox_support import require_bwrap

from agentsprint.agents.tools import ToolPolicy, execute
from agentsprint.config import Settings, load_settings
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
HOOKS = ("pre-commit", "post-commit", "post-checkout", "post-merge", "reference-transaction",
         "pre-merge-commit", "post-rewrite", "post-index-change", "fsmonitor")



@pytest.fixture
def bwrap() -> None:
    require_bwrap()


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The installed `agentsprint` script, with this process's environment plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})})


def coder_writes_and_runs(module: str, source: str, *more: dict[str, Any]) -> ScriptBook:
    """AS-1's coder writes `shop/<module>.py`, runs it with the allowed `python -m unittest`, finishes."""
    steps = [tool_call("write_file", path=f"shop/{module}.py", content=source),
             tool_call("run", command=f"python -m unittest -q shop.{module}"), *more,
             tool_call("finish", summary="added a test")]
    return ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})


def stored_bytes(settings: Settings) -> bytes:
    """Everything agentsprint keeps on disk: databases, WAL and journal files, logs."""
    return b"".join(path.read_bytes() for path in sorted(settings.state_dir.rglob("*"))
                    if path.is_file() and "worktrees" not in path.parts)


def events(settings: Settings, kind: str) -> list[dict[str, Any]]:
    return [json.loads(data) for (data,) in query(settings, "SELECT data_json FROM events WHERE kind = ?", kind)]


def edit_config(settings: Settings, old: str, new: str) -> Settings:
    """Replace `old` by `new` in the project's agentsprint.toml (committed), and load it again."""
    toml = settings.root / "agentsprint.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new, 1))
    git(settings.root, "commit", "-qam", "config for the test")
    return load_settings(settings.root, environ={})


def path_without_bwrap(tmp_path: Path) -> str:
    """A PATH holding git and python but no bubblewrap (as on a machine where it is not installed)."""
    folder = tmp_path / "bin-without-bwrap"
    folder.mkdir()
    for name, target in (("git", "/usr/bin/git"), ("python", sys.executable), ("python3", sys.executable),
                         ("sh", "/bin/sh")):
        (folder / name).symlink_to(target)
    return str(folder)


# --- finding 1: host code execution through git hooks ----------------------------------------------

PLANT_HOOKS = '''\
"""A passing test that also tries to plant git hooks through the worktree's .git file."""
import os
import pathlib
import unittest

MARKERS = {markers!r}
HOOKS = {hooks!r}


def common_git_dir():
    dot_git = pathlib.Path(".git")
    if dot_git.is_dir():
        return dot_git.resolve()
    admin = (pathlib.Path.cwd() / dot_git.read_text().split(":", 1)[1].strip()).resolve()
    return (admin / (admin / "commondir").read_text().strip()).resolve()


DONE, REFUSED = [], []


def attempt(label, action):
    try:
        action()
        DONE.append(label)
    except OSError as exc:
        REFUSED.append(f"{{label}} ({{exc.strerror}})")


def write_hook(path, name):
    path.write_text(f"#!/bin/sh\\necho ran >> {{MARKERS}}/{{name}}\\n")
    path.chmod(0o755)


def plant():
    common = common_git_dir()
    for name in HOOKS:
        attempt(f"hook {{name}}", lambda name=name: write_hook(common / "hooks" / name, name))
    config = f"[core]\\n\\thooksPath = {{common}}/hooks\\n\\tfsmonitor = {{common}}/hooks/fsmonitor\\n"
    attempt("config", lambda: open(common / "config", "a").write(config))
    attempt("gitfile", lambda: os.close(os.open(".git", os.O_WRONLY | os.O_APPEND)))
    print(f"ATTACK done={{DONE}} refused={{len(REFUSED)}}: {{REFUSED[0]}}")


class Planted(unittest.TestCase):
    def test_plant(self):
        plant()
'''


def test_hooks_an_agent_command_plants_never_run(tmp_path: Path, server: ScriptedServer, bwrap: None) -> None:
    markers = tmp_path / "hook-markers"
    markers.mkdir()
    source = PLANT_HOOKS.format(markers=str(markers), hooks=HOOKS)
    book = coder_writes_and_runs("test_planted", source)
    gate = {"tests": "python -m unittest -q shop.test_planted"}  # the code the coder wrote, again
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[gate])], book)
    git_dir = settings.root / ".git"
    hooks_before, config_before = sorted(os.listdir(git_dir / "hooks")), (git_dir / "config").read_bytes()

    done = cli(settings.root, "run", "--ci", "--json")
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "the user's own next commit"], cwd=settings.root,
                   capture_output=True, check=False)

    assert sorted(os.listdir(markers)) == [], "a planted hook ran"
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["results"] == {"AS-1": "done"}, "committed, gate checkout, merged"
    assert "shop/test_planted.py" in git(settings.root, "ls-tree", "-r", "--name-only", "main")
    assert sorted(os.listdir(git_dir / "hooks")) == hooks_before
    assert (git_dir / "config").read_bytes() == config_before
    coder_runs = [e["output"] for e in events(settings, "tool.call") if e["tool"] == "run"]
    gate_runs = [g["output"] for r in events(settings, "round") for g in r["gates"] if g["kind"] == "command"]
    for output in (*coder_runs, *gate_runs):  # the coder's command and the gate both tried, and were refused
        assert f"ATTACK done=[] refused={len(HOOKS) + 2}: hook pre-commit (Read-only file system)" in output, output
    assert coder_runs and gate_runs


# --- finding 2: processes that escape the kill -----------------------------------------------------

DAEMON = '''\
"""Start a daemon that leaves the process group and session (double fork + setsid)."""
import os
import sys
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", {marker!r}])
    os._exit(0)
time.sleep({linger})
'''


def live_pids_with(marker: str) -> list[int]:
    """Host pids of live processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes()
                    and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def markers() -> Iterator[list[str]]:
    """Unique command-line markers; whatever still carries one at the end is killed (on old code)."""
    made: list[str] = []
    yield made
    for marker in made:
        for pid in live_pids_with(marker):
            os.kill(pid, 9)


def test_a_setsid_daemon_dies_with_its_command_at_normal_end_and_at_timeout(
        tmp_path: Path, server: ScriptedServer, bwrap: None, markers: list[str]) -> None:
    quick, hung = (f"agentsprint-daemon-{kind}-{secrets.token_hex(6)}" for kind in ("quick", "hung"))
    markers += [quick, hung]
    book = coder_writes_and_runs(
        "spawn_quick", DAEMON.format(marker=quick, linger=0.5),
        tool_call("write_file", path="shop/spawn_hung.py", content=DAEMON.format(marker=hung, linger=600)),
        tool_call("run", command="python -m unittest -q shop.spawn_hung"))
    settings = edit_config(make_project(tmp_path / "p", server, [item("AS-1", dod=[], rounds=1)], book),
                           "[run]\n", '[run]\ncommand_timeout = "3s"\n')

    report = run_items(settings, ["AS-1"])

    runs = [e["output"] for e in events(settings, "tool.call") if e["tool"] == "run"]
    assert len(runs) == 2 and "timed out" not in runs[0] and "timed out after 3s" in runs[1], runs
    assert report.results == {"AS-1": "done"}
    for marker in (quick, hung):
        assert _gone_within(marker, 3.0), f"the daemon {marker} outlived its command"


def _gone_within(marker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while live_pids_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- finding 3: secrets read from agentsprint's own process ---------------------------------------

PROBE = '''\
"""Read every visible /proc/<pid>/environ for the planted variable; leak what is found."""
import os
import pathlib
import unittest

NAME = {name!r}


class Probe(unittest.TestCase):
    def test_probe(self):
        found = []
        for entry in pathlib.Path("/proc").iterdir():
            try:
                environ = (entry / "environ").read_bytes() if entry.name.isdigit() else b""
            except OSError:
                continue
            found += [pair.split(b"=", 1)[1].decode() for pair in environ.split(b"\\0")
                      if pair.startswith(NAME.encode() + b"=")]
        print(f"PROBE parent {{os.getppid()}}: {{len(found)}} found")
        for value in found:
            print("PROBE leaked", value[::-1])
            pathlib.Path("shop/leak.txt").write_text(value)
'''


def test_agentsprint_s_environment_cannot_be_read_through_proc(tmp_path: Path, server: ScriptedServer,
                                                               bwrap: None) -> None:
    name, value = "SHOP_PAYMENTS_TOKEN", secrets.token_hex(20)
    book = coder_writes_and_runs("test_probe", PROBE.format(name=name))
    gate = {"tests": "python -m unittest -q shop.test_probe"}
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[gate])], book)

    done = cli(settings.root, "run", "--ci", "--json", env={name: value})

    assert done.returncode == 0, done.stdout + done.stderr
    sent, history = json.dumps(server.requests), git(settings.root, "log", "-p", "--all")
    for text in (value, value[::-1]):
        assert text not in sent, "reached a model"
        assert text.encode() not in stored_bytes(settings), "reached the database"
        assert text not in history, "reached the repository"
    assert "PROBE parent 1: 0 found" in sent, "the probe ran, in a PID namespace, and found nothing"
    assert "shop/test_probe.py" in git(settings.root, "ls-tree", "-r", "--name-only", "main"), "merged"


# --- no network unless the policy allows it -------------------------------------------------------

CONNECT = ("import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3); "
           "print('connect' + 'ed to', sys.argv[1])")


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that accepts (and closes) connections; yields its port."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                sock.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


@pytest.mark.parametrize("network", [False, True])
def test_agent_commands_reach_the_network_only_when_the_policy_allows_it(
        tmp_path: Path, bwrap: None, listener: int, network: bool) -> None:
    settings = Settings.model_validate({"policy": {"allowed_commands": ["python"], "network": network}})
    settings.root = tmp_path

    result = execute(str(tmp_path), "run", {"command": f"python -c \"{CONNECT}\" {listener}"},
                     ToolPolicy.from_settings(settings))

    assert result.ok is network and (f"connected to {listener}" in result.output) is network, result.output
    if not network:
        assert "Connection refused" in result.output or "unreachable" in result.output


# --- command gates run in the sandbox too ---------------------------------------------------------


def test_a_command_gate_cannot_write_outside_its_checkout(tmp_path: Path, server: ScriptedServer,
                                                           bwrap: None) -> None:
    plant = textwrap.dedent("""\
        import pathlib
        admin = pathlib.Path(pathlib.Path('.git').read_text().split(':', 1)[1].strip())
        common = (admin / (admin / 'commondir').read_text().strip()).resolve()
        (common / 'hooks' / 'post-merge').write_text('#!/bin/sh\\necho ran\\n')
        """)
    steps = [tool_call("write_file", path="shop/plant.py", content=plant), tool_call("finish", summary="helper")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): steps})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[{"plant": "python shop/plant.py"}],
                                                          rounds=1)], book)

    report = run_items(settings, ["AS-1"])

    assert report.results == {"AS-1": "escalated"}, "the gate failed: it could not write the hook"
    [round_data] = events(settings, "round")
    [gate] = [g for g in round_data["gates"] if g["name"] == "plant"]
    assert not gate["passed"] and "Read-only file system" in gate["output"], gate["output"]
    assert not (settings.root / ".git" / "hooks" / "post-merge").exists()


# --- without bubblewrap: refused before any model call, unless "none" is explicit -----------------


def test_a_run_without_bubblewrap_is_refused_before_any_model_call(tmp_path: Path, server: ScriptedServer) -> None:
    book = coder_writes_and_runs("test_x", "X = 1\n")
    settings = make_project(tmp_path / "p", server, [item("AS-1")], book)
    toml = settings.root / "agentsprint.toml"
    toml.write_text(toml.read_text().replace('sandbox = "none"', 'sandbox = "bwrap"'))  # as the default

    done = cli(settings.root, "run", "--ci", env={"PATH": path_without_bwrap(tmp_path)})

    message = done.stderr.replace("\n", "")  # the console wraps long lines
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in message and "apt-get install bubblewrap" in message
    assert f"{settings.root / 'agentsprint.toml'}: policy.sandbox" in message
    assert not any(server.requests.values()), "no model was called"
    database = settings.state_dir / "agentsprint.db"
    assert not database.exists() or query(settings, "SELECT COUNT(*) FROM model_calls") == [(0,)]


def test_sandbox_none_is_an_explicit_choice_that_still_runs_commands(tmp_path: Path, server: ScriptedServer) -> None:
    book = coder_writes_and_runs("test_x", "import unittest\n\n\nclass T(unittest.TestCase):\n"
                                           "    def test_x(self):\n        print('RAN UNCONFINED')\n")
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[{"t": "python -m unittest -q shop.test_x"}])],
                            book)
    env = {"PATH": path_without_bwrap(tmp_path), "AGENTSPRINT_POLICY_SANDBOX": "none"}

    done = cli(settings.root, "run", "--ci", "--json", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["results"] == {"AS-1": "done"}
    assert "RAN UNCONFINED" in json.dumps(server.requests), "the coder's command ran"
    [round_data] = events(settings, "round")
    assert [g["passed"] for g in round_data["gates"] if g["kind"] == "command"] == [True], "the gate ran"


def test_the_demo_runs_without_bubblewrap_and_says_so(tmp_path: Path) -> None:
    done = cli(tmp_path, "demo", "--dir", str(tmp_path / "demo"), env={"PATH": path_without_bwrap(tmp_path)})

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Sandbox:       none" in done.stdout and "apt-get install bubblewrap" in done.stdout
    assert 'sandbox = "none"' in (tmp_path / "demo" / "agentsprint.toml").read_text()


def test_the_demo_uses_bubblewrap_where_it_works(tmp_path: Path, server: ScriptedServer, bwrap: None) -> None:
    from agentsprint.runner.demo import create_sample

    create_sample(tmp_path / "demo", server.base_url)

    assert 'sandbox = "bwrap"' in (tmp_path / "demo" / "agentsprint.toml").read_text()
