"""OpenCode as the coder, end to end with the real `opencode` CLI (npm opencode-ai, .ci/agents/package.json).

The runner starts OpenCode headless in the item's worktree; its only provider is the metering proxy,
which forwards to the scripted model server. The scripted coder answers in OpenAI Chat Completions
(what OpenCode's openai-compatible provider speaks, streamed) with OpenCode's own tools and argument
shapes (`read` {filePath}, `edit` {filePath, oldString, newString}, `bash` {command, description}),
so OpenCode itself reads and edits the file; then the real gates, QA and human review follow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import agent_cli
from proxy_support import proxy_gateway
from runner_support import TEST_CONFIG, git, item, make_project, query

from agentsprint.agents.backends import LaunchRequest
from agentsprint.agents.backends.opencode import OpenCodeBackend
from agentsprint.agents.external import agent_environment
from agentsprint.config import Settings, load_settings
from agentsprint.llm.context import CallContext
from agentsprint.llm.proxy import MeteringProxy
from agentsprint.llm.scripted import Responder, ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner import actions
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items
from agentsprint.store import Store
from agentsprint.store.ledger import model_calls

OLD, NEW = "    start = page * per_page", "    start = (page - 1) * per_page"
SECRET = "sk-" + "opencodeFakeKey" * 3
"""A key-shaped fake secret the scripted coder says in its last reply: the kept transcript must not hold it."""
PRICES = (0.0000004, 0.0000016)
"""t-coder's input and output USD per token (TEST_CONFIG)."""



@pytest.fixture
def opencode() -> Path:
    return agent_cli("opencode")


def project(tmp_path: Path, server: ScriptedServer, command: str, coder: Responder, *,
            review: bool = False, **budget: Any) -> Settings:
    """The sample shop whose coder is OpenCode (`command` the executable) answered by `coder`."""
    config = TEST_CONFIG.replace('model = "openai/t-coder"',
                                 f'model = "openai/t-coder"\nbackend = "opencode"\ncommand = "{command}"', 1)
    assert config != TEST_CONFIG
    dod: list[Any] = [{"tests": "python -m unittest -q tests.test_pagination"}, "secrets"]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {})
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=dod + (["review: human"] if review else []),
                                                          **budget)], book, config=config)
    server.add("t-coder", responder=coder)
    return settings


def system_text(body: dict[str, Any]) -> str:
    """The text of the request's system message(s) (OpenCode puts its environment block there)."""
    return " ".join(str(m.get("content")) for m in body["messages"] if m.get("role") == "system")


def target(body: dict[str, Any]) -> str:
    """The absolute path of the file to fix, in the worktree OpenCode says it runs in."""
    found = re.search(r"Working directory: (\S+)", system_text(body))
    assert found, "OpenCode's system prompt names its working directory"
    return f"{found.group(1)}/shop/pagination.py"


def tool_results(body: dict[str, Any]) -> int:
    return sum(1 for message in body["messages"] if message.get("role") == "tool")


def fixing_coder(body: dict[str, Any]) -> ScriptedReply:
    """Read the file, edit it with OpenCode's `edit` tool, then say so (with a fake key in the text)."""
    path, done = target(body), tool_results(body)
    steps = [tool_call("read", filePath=path), tool_call("edit", filePath=path, oldString=OLD, newString=NEW)]
    if done < len(steps):
        return ScriptedReply(tool_calls=[steps[done]])
    return ScriptedReply(content=f"Fixed the off-by-one in shop/pagination.py. (debug key {SECRET})")


def growing_coder(body: dict[str, Any]) -> ScriptedReply:
    """Every call asks OpenCode's `bash` tool for a long listing: each request is larger than the last."""
    return ScriptedReply(tool_calls=[tool_call("bash", command="seq 100000 101500",
                                               description="List numbers")])


def coder_calls(settings: Settings) -> list[tuple[Any, ...]]:
    return query(settings, "SELECT item_id, round, role, outcome, input_tokens, output_tokens, usd "
                           "FROM model_calls WHERE role = 'coder' ORDER BY id")


def rounds(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(data) for (data,) in query(settings, "SELECT data_json FROM events WHERE kind = 'round'")]


def test_opencode_fixes_the_item_through_the_proxy_then_gates_qa_and_review(tmp_path: Path, server: ScriptedServer,
                                                                            opencode: Path) -> None:
    settings = project(tmp_path, server, str(opencode), fixing_coder, review=True)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "awaiting_review"}

    assert server.errors == []
    diff = git(settings.root, "diff", "main", "agentsprint/AS-1")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-" + OLD, "+" + NEW], diff
    calls = coder_calls(settings)
    assert len(calls) == len(server.requests["t-coder"]) == 3
    assert {call[:4] for call in calls} == {("AS-1", 1, "coder", "ok")}
    usage = [u for u in server.usage if u["model"] == "t-coder"]
    assert [(c[4], c[5]) for c in calls] == [(u["prompt_tokens"], u["completion_tokens"]) for u in usage]
    assert [c[6] for c in calls] == pytest.approx([c[4] * PRICES[0] + c[5] * PRICES[1] for c in calls])
    [record] = rounds(settings)
    assert record["coder_summary"].split(" model calls: ", 1)[1].startswith("Fixed the off-by-one"), \
        "QA reads the agent's answer, not the tail of its JSON events"
    transcript = record["agent_transcript"]
    assert "Fixed the off-by-one" in transcript and '"tool": "edit"' in transcript, transcript[:2000]
    assert SECRET not in transcript and "[REDACTED]" in transcript
    assert actions.approve(actions.open_project(settings), "AS-1").value == "done"
    assert NEW in git(settings.root, "show", "main:shop/pagination.py")


def test_growing_context_through_opencode_stops_at_the_item_budget(tmp_path: Path, server: ScriptedServer,
                                                                   opencode: Path) -> None:
    settings = project(tmp_path, server, str(opencode), growing_coder, tokens=40000)

    result = run_items(settings, ["AS-1"]).results

    calls = coder_calls(settings)
    outcomes = [call[3] for call in calls]
    assert "refused" in outcomes and outcomes.index("refused") >= 2, outcomes
    sizes = [call[4] for call in calls if call[3] == "ok"]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), "each call is larger than the last"
    spent, reserved = query(settings, "SELECT spent_tokens, reserved_tokens FROM budgets WHERE scope = 'item:AS-1'")[0]
    assert reserved == 0 and spent <= 40000
    every = query(settings, "SELECT input_tokens + output_tokens FROM model_calls WHERE item_id = 'AS-1'")
    assert sum(n for (n,) in every) == spent, "each call charged once"
    assert result == {"AS-1": "escalated"}
    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "budget" and "of its calls for budget" in package["detail"]
    assert "budget item:AS-1 exhausted" in package["detail"]
    [stopped] = package["package"]["rounds"]
    assert "budget item:AS-1 exhausted" in stopped["agent_transcript"], "OpenCode's log of the refusal is kept"


def hanging_coder(body: dict[str, Any]) -> ScriptedReply:
    """The model never answers in time (the proxy's call timeout answers 504 to OpenCode, which retries)."""
    return ScriptedReply(content="late", hang=60)


def test_opencode_is_killed_at_the_items_time_budget(tmp_path: Path, server: ScriptedServer, opencode: Path) -> None:
    # Each timed-out call stays charged at its reservation (~40k tokens with OpenCode's max_tokens 32000):
    # a budget large enough that time, not tokens, is what runs out.
    settings = project(tmp_path, server, str(opencode), hanging_coder, time="25s", tokens=2_000_000, usd=10.0)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "time" and "process group was killed" in package["detail"]
    assert processes_in(settings.root) == [], "nothing OpenCode started is left running"


def processes_in(folder: Path) -> list[str]:
    """Ids of the processes whose working directory is under `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(entry.joinpath("cwd").readlink()).startswith(str(folder)):
                found.append(entry.name)
        except OSError:
            continue
    return found


def test_a_missing_opencode_executable_dead_letters_the_item(tmp_path: Path, server: ScriptedServer) -> None:
    settings = project(tmp_path, server, "no-such-opencode", fixing_coder)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    rows = query(settings, "SELECT data_json FROM events WHERE kind = 'item.status'")
    [failed] = [json.loads(data) for (data,) in rows if json.loads(data)["to"] == "failed"]
    assert "no-such-opencode: not found on PATH" in failed["detail"]
    assert coder_calls(settings) == []


def test_the_backend_is_ready_in_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "agentsprint.toml").write_text('[models.coder]\nmodel = "openai/x"\nbackend = "opencode"\n')
    assert load_settings(tmp_path, environ={}).models["coder"].backend == "opencode"


def outside_connections(log: Path) -> list[str]:
    """The connect() calls of an strace log to anything but loopback, or to a DNS server."""
    found = []
    for line in log.read_text(encoding="utf-8").splitlines():
        host = re.search(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', line)
        port = re.search(r"htons\((\d+)\)", line)
        if "connect(" in line and host and port:
            address = host.group(1) or host.group(2)
            if not (address.startswith("127.") or address == "::1") or port.group(1) == "53":
                found.append(f"{address}:{port.group(1)}")
    return found


@pytest.mark.skipif(shutil.which("strace") is None and not os.environ.get("AGENTSPRINT_TEST_AGENTS_REQUIRED"),
                    reason="needs strace to watch OpenCode's connections (CI installs it)")
def test_opencode_reaches_only_the_proxy_and_writes_nothing_into_the_worktree(tmp_path: Path,
                                                                              scripted_server: ScriptedServer,
                                                                              opencode: Path) -> None:
    """The backend's own launch (argv, env, files), run under strace outside the sandbox: every
    connection OpenCode opens goes to loopback (no models.dev, npm, update check or share), its one
    call is metered, and the git checkout it ran in is left clean."""
    worktree, home, prompt = tmp_path / "work", tmp_path / "home", tmp_path / "prompt.md"
    for folder in (worktree, home):
        folder.mkdir()
    git(worktree, "init", "-q")
    prompt.write_text("Say hello.", encoding="utf-8")
    store = Store(f"sqlite:///{tmp_path / 'calls.db'}")
    with MeteringProxy(proxy_gateway(scripted_server, store)) as proxy:
        grant = proxy.grant(CallContext(role="coder", item_id="AS-1", run_id="r1", round=1, scopes=["item:AS-1"]))
        launch = OpenCodeBackend().launch(LaunchRequest(
            executable=str(opencode), prompt_file=prompt, prompt="Say hello.", home=home,
            proxy_root=proxy.base_url.removesuffix("/v1"), token=grant.token, model="openai/coder-model"))
        for relative, text in launch.files.items():
            (home / relative).parent.mkdir(parents=True, exist_ok=True)
            (home / relative).write_text(text, encoding="utf-8")
        env = {**agent_environment(proxy, grant.token, home), **launch.env}
        trace = tmp_path / "strace.log"
        done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *launch.argv],
                              cwd=worktree, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert outside_connections(trace) == []
    assert [call.outcome for call in model_calls(store, "AS-1")] == ["ok"]
    assert git(worktree, "status", "--porcelain", "--ignored") == ""
    assert "I read it." in OpenCodeBackend().transcript(home, done.stdout)
    store.close()
