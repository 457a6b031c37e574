"""The `claude-code` coder backend end to end with the REAL Claude Code CLI (npm @anthropic-ai/claude-code).

The runner starts `claude -p` in the item's worktree inside bubblewrap; every model call it makes goes
through the metering proxy to the scripted model server, which answers in Anthropic Messages (streamed)
with Claude Code's own tools (Read, Edit, Bash) and argument shapes, so the real agent really edits the
file. Then the real gates, QA and review follow. Nothing here is faked but the model's replies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import agent_cli
from runner_support import TEST_CONFIG, git, item, make_project, query

from agentsprint.agents import external
from agentsprint.agents.backends import LaunchRequest
from agentsprint.agents.backends.claude_code import ClaudeCodeBackend
from agentsprint.agents.external import ExternalOutcome
from agentsprint.config import Settings, load_settings
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer
from agentsprint.runner import actions, steps
from agentsprint.runner.demo import demo_sandbox
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items

pytestmark = pytest.mark.skipif(demo_sandbox() != "bwrap", reason="the agent runs in bubblewrap")

MODEL = "claude-sonnet-4-5"
PRICES = (0.0000004, 0.0000016)
"""The coder's input and output USD per token in the test config."""
FAKE_SECRET = "sk-ant-api03-" + "Qw7" * 12
WORKDIR = re.compile(r"Primary working directory: (\S+)")
OLD, NEW = "    start = page * per_page", "    start = (page - 1) * per_page"
HANG = "97.31"
"""Seconds the hanging command sleeps: a figure no other process here uses, to look for leftovers."""
GATES = [{"tests": "python -m unittest -q tests.test_pagination"}]
Steps = Callable[[str], list[ScriptedReply]]


def use(name: str, **arguments: Any) -> ScriptedReply:
    """A reply that calls one of Claude Code's own tools."""
    return ScriptedReply(tool_calls=[{"name": name, "arguments": arguments}])


def fix_steps(cwd: str) -> list[ScriptedReply]:
    """Read the file, fix it with Edit, run the tests with Bash, then answer (a secret in the answer)."""
    path = f"{cwd}/shop/pagination.py"
    return [use("Read", file_path=path), use("Edit", file_path=path, old_string=OLD, new_string=NEW),
            use("Bash", command="python -m unittest -q tests.test_pagination", description="Run the tests"),
            ScriptedReply(content=f"Pages start at 1 now. The debug key was {FAKE_SECRET}.")]


def growing_steps(cwd: str) -> list[ScriptedReply]:
    """Fix the file, then keep reading files: every call carries more context than the last."""
    path = f"{cwd}/shop/pagination.py"
    return [use("Read", file_path=path), use("Edit", file_path=path, old_string=OLD, new_string=NEW),
            use("Read", file_path=f"{cwd}/tests/test_pagination.py"), use("Read", file_path=f"{cwd}/shop/pricing.py")]


def request_text(body: dict[str, Any]) -> str:
    return json.dumps([body.get("system"), body.get("messages")])


class ClaudeScript:
    """Answers Claude Code's requests by the number of assistant turns they carry (stateless)."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps

    def __call__(self, body: dict[str, Any]) -> ScriptedReply:
        found = WORKDIR.search(request_text(body))
        if found is None:  # a side call (title, summary): not part of the coding loop
            return ScriptedReply(content="Fix pagination")
        steps = self.steps(found.group(1).replace("\\n", ""))
        turns = sum(1 for message in body.get("messages", []) if message.get("role") == "assistant")
        return steps[min(turns, len(steps) - 1)]



def project(tmp_path: Path, server: ScriptedServer, steps: Steps, command: str | None = None,
            **budget: Any) -> Settings:
    """The sample shop whose coder is Claude Code (`command`: its executable) on the scripted server."""
    executable = command or str(agent_cli("claude"))
    coder = f'model = "anthropic/{MODEL}"\nbackend = "claude-code"\ncommand = "{executable}"'
    config = TEST_CONFIG.replace('model = "openai/t-coder"', coder, 1)
    assert config != TEST_CONFIG
    server.add(MODEL, responder=ClaudeScript(steps))
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {})
    return make_project(tmp_path / "p", server, [item("AS-1", dod=GATES, **budget)], book, config=config)


def coder_calls(settings: Settings) -> list[dict[str, Any]]:
    rows = query(settings, "SELECT item_id, run_id, round, role, outcome, input_tokens, cached_input_tokens, "
                           "output_tokens, usd, attributes_json FROM model_calls WHERE role = 'coder' ORDER BY id")
    keys = ("item_id", "run_id", "round", "role", "outcome", "input", "cached", "output", "usd", "attributes")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def reported(server: ScriptedServer) -> list[tuple[int, int]]:
    """(input, output) tokens the scripted server reported for each of Claude Code's calls."""
    return [(u["prompt_tokens"] + u["cache_read_input_tokens"], u["output_tokens"])
            for u in server.usage if u["model"] == MODEL]


def round_record(settings: Settings) -> dict[str, Any]:
    [(data,)] = query(settings, "SELECT data_json FROM events WHERE kind = 'round'")
    return dict(json.loads(data))


def timed_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, ExternalOutcome]]:
    """Each external agent run's wall time, from setup (token, home, files) to the agent's exit, and outcome."""
    runs: list[tuple[float, ExternalOutcome]] = []
    original = external.run_external

    def timed(*args: Any, **kwargs: Any) -> ExternalOutcome:
        started = time.monotonic()
        outcome = original(*args, **kwargs)
        runs.append((time.monotonic() - started, outcome))
        return outcome

    monkeypatch.setattr(steps, "run_external", timed)
    return runs


def test_claude_code_fixes_the_item_through_the_proxy(tmp_path: Path, server: ScriptedServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings = project(tmp_path, server, fix_steps, tokens=400000, usd=2.0)
    runs = timed_runs(monkeypatch)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

    [(seconds, outcome)] = runs
    print(f"\nclaude-code round: {seconds:.2f}s from setup to exit (agent process {outcome.seconds:.2f}s), "
          f"{outcome.calls} model calls")
    assert outcome.calls == len(server.requests[MODEL]) and outcome.exit_code == 0
    assert server.errors == []
    base = git(settings.root, "rev-list", "--max-parents=0", "main").strip()
    summary = round_record(settings)["coder_summary"]
    assert summary.split(" model calls: ", 1)[1].startswith("Pages start at 1 now."), "QA reads the agent's answer"
    assert round_record(settings)["changed_files"] == ["shop/pagination.py"], \
        "the round committed nothing but the fix: Claude Code's state stayed in its private home"
    diff = git(settings.root, "diff", base, "main", "--", ".", ":!backlog")
    assert [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        f"-{OLD}", f"+{NEW}"], diff
    calls = coder_calls(settings)
    assert len(calls) == len(server.requests[MODEL]) >= 4, "every call the agent made went through the proxy"
    assert {(c["item_id"], c["round"], c["role"], c["outcome"]) for c in calls} == {("AS-1", 1, "coder", "ok")}
    assert len({c["run_id"] for c in calls}) == 1 and calls[0]["run_id"]
    assert [(c["input"], c["output"]) for c in calls] == reported(server)
    for call in calls:
        assert call["usd"] == pytest.approx(call["input"] * PRICES[0] + call["output"] * PRICES[1], rel=1e-6)
        assert json.loads(call["attributes"])["agentsprint.cost"] == "measured"
    offered = {tool["name"] for body in server.requests[MODEL] for tool in body.get("tools", [])}
    assert {"Read", "Edit", "Bash"} <= offered and not offered & {"WebFetch", "WebSearch", "EnterWorktree"}
    transcript = round_record(settings)["agent_transcript"]
    assert '"parentUuid"' in transcript, "Claude Code's own session log, not its console output"
    assert '"name":"Edit"' in transcript and "Pages start at 1 now" in transcript
    assert FAKE_SECRET not in transcript and "[REDACTED]" in transcript
    assert not any(FAKE_SECRET in data for (data,) in query(settings, "SELECT data_json FROM events"))


def test_growing_context_through_claude_code_stops_at_the_item_budget(tmp_path: Path, server: ScriptedServer) -> None:
    settings = project(tmp_path, server, growing_steps, tokens=95000, usd=2.0)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "budget" and "refused 1 of its calls for budget" in package["detail"], package
    transcript = package["package"]["rounds"][-1]["agent_transcript"]
    assert '"name":"Edit"' in transcript and "agentsprint refused the call" in transcript, "its session log"
    assert f"+{NEW}" in package["package"]["rounds"][-1]["diff"], "the fix made before the refusal is kept"
    calls = coder_calls(settings)
    outcomes = [c["outcome"] for c in calls]
    assert "refused" in outcomes and outcomes.index("refused") >= 2, outcomes
    ok = [c for c in calls if c["outcome"] == "ok"]
    assert [c["input"] for c in ok] == sorted(c["input"] for c in ok) and ok[0]["input"] < ok[-1]["input"]
    assert len(ok) == len(server.requests[MODEL]), "a refused call never reached the model"
    assert [(c["input"], c["output"]) for c in ok] == reported(server), "each call charged once, as reported"
    [(spent, reserved)] = query(settings, "SELECT spent_tokens, reserved_tokens FROM budgets "
                                          "WHERE scope = 'item:AS-1'")
    assert reserved == 0 and spent <= 95000
    [(charged,)] = query(settings, "SELECT sum(input_tokens + output_tokens) FROM model_calls WHERE item_id = 'AS-1'")
    assert charged == spent, "the budget holds exactly what the calls were charged, nothing twice"


def test_claude_code_native_cap_escalates_for_budget(tmp_path: Path, server: ScriptedServer) -> None:
    """Claude Code prices calls with its own table ($3 per million input tokens for this model): with
    $0.04 left its --max-budget-usd stops it after the first call, far below agentsprint's own price."""
    settings = project(tmp_path, server, growing_steps, tokens=400000, usd=0.04)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "budget" and "--max-budget-usd" in package["detail"], package
    assert [c["outcome"] for c in coder_calls(settings)] == ["ok"], "stopped by its own cap, not the proxy"


def test_the_repository_own_claude_settings_cannot_point_the_agent_past_the_proxy(tmp_path: Path,
                                                                                  server: ScriptedServer) -> None:
    settings = project(tmp_path, server, fix_steps, tokens=400000, usd=2.0)
    folder = settings.root / ".claude"
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}}))
    git(settings.root, "add", ".claude")
    git(settings.root, "commit", "-q", "-m", "Project settings for Claude Code")

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

    assert len(coder_calls(settings)) == len(server.requests[MODEL]) >= 4


def hanging_steps(cwd: str) -> list[ScriptedReply]:
    """Fix the file, then run a command that outlives the item's time budget."""
    path = f"{cwd}/shop/pagination.py"
    return [use("Read", file_path=path), use("Edit", file_path=path, old_string=OLD, new_string=NEW),
            use("Bash", command=f"sleep {HANG}", description="Wait", timeout=600000)]


def test_claude_code_is_killed_with_its_shells_at_the_time_budget(tmp_path: Path, server: ScriptedServer) -> None:
    settings = project(tmp_path, server, hanging_steps, tokens=400000, usd=2.0, time="12s")
    started = time.monotonic()

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    assert time.monotonic() - started < 40, "killed at the time budget, not when its command ended"
    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "time" and "process group was killed" in package["detail"], package
    leftovers = subprocess.run(["pgrep", "-f", f"sleep {HANG}"], capture_output=True, text=True).stdout
    assert leftovers == "", "the agent's shell command died with it"
    assert f"+{NEW}" in package["package"]["rounds"][-1]["diff"], "its edit is kept in the worktree"


def test_a_missing_claude_executable_dead_letters_the_item(tmp_path: Path, server: ScriptedServer) -> None:
    settings = project(tmp_path, server, fix_steps, command=str(tmp_path / "no-such" / "claude"))

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    rows = query(settings, "SELECT data_json FROM events WHERE kind = 'item.status'")
    [detail] = [json.loads(data)["detail"] for (data,) in rows if json.loads(data)["to"] == "failed"]
    assert "coder command was not found" in detail and str(tmp_path / "no-such" / "claude") in detail
    assert coder_calls(settings) == []


@pytest.mark.skipif(shutil.which("claude") is not None, reason="a claude executable is on PATH here")
def test_the_claude_executable_is_looked_up_on_path_by_default(tmp_path: Path, server: ScriptedServer) -> None:
    settings = project(tmp_path, server, fix_steps)
    text = (settings.root / "agentsprint.toml").read_text()
    (settings.root / "agentsprint.toml").write_text(re.sub(r'command = ".*"\n', "", text, count=1))
    settings = load_settings(settings.root, environ={})
    assert settings.model_for("coder").command is None

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    rows = query(settings, "SELECT data_json FROM events WHERE kind = 'item.status'")
    assert any("claude: not found on PATH" in (json.loads(data).get("detail") or "") for (data,) in rows)


def test_claude_code_starts_with_no_usd_left_and_stops_at_its_own_cap(tmp_path: Path, server: ScriptedServer) -> None:
    """Claude Code refuses `--max-budget-usd 0`; with nothing left it still starts, stops at its cap after
    one call, and the backend reads that as a budget stop."""
    server.add(MODEL, ScriptedReply(content="Nothing to do."))
    home, worktree = tmp_path / "home", tmp_path / "wt"
    home.mkdir()
    worktree.mkdir()
    request = LaunchRequest(executable=str(agent_cli("claude")), prompt_file=tmp_path / "prompt.md", prompt="Say hi.",
                            home=home, proxy_root=server.base_url.removesuffix("/v1"), token="scripted",
                            model=f"anthropic/{MODEL}", usd_left=0.0)
    backend = ClaudeCodeBackend()
    launch = backend.launch(request)
    for relative, text in launch.files.items():
        (home / relative).parent.mkdir(parents=True, exist_ok=True)
        (home / relative).write_text(text)
    env = {**agent_environment_for(home, request), **launch.env}

    done = subprocess.run(launch.argv, cwd=worktree, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1 and "must be a positive number" not in done.stderr, done.stderr
    assert backend.budget_stop(done.stdout) is not None, done.stdout[-500:]
    assert len(server.requests[MODEL]) == 1


def agent_environment_for(home: Path, request: LaunchRequest) -> dict[str, str]:
    """What the runner's environment gives Claude Code (agents.external.agent_environment), pointed straight
    at the scripted server: the proxy is not what this test is about."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "ANTHROPIC_BASE_URL": request.proxy_root,
            "ANTHROPIC_API_KEY": request.token}
