"""The `command` coder backend end to end: the runner, the metering proxy, the fake agent CLI, real git.

The agent here is tests/fakes/fake_agent_cli.py, a fake written for these tests: no real agent runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from proxy_support import fake_agent_command
from runner_support import TEST_CONFIG, git, item, make_project, query

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedServer
from agentsprint.runner import actions
from agentsprint.runner.demo import demo_sandbox
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items

FIX = ("--replace", "shop/pagination.py", "    start = page * per_page", "    start = (page - 1) * per_page")



def external(tmp_path: Path, server: ScriptedServer, *options: str, extra: str = "", **budget: Any) -> Settings:
    """A project whose coder is the fake agent CLI run with `options`; item AS-1 with `budget`.

    The agent's own log goes to a folder outside the worktree (inside bubblewrap: the sandbox's private
    /tmp), so the round's diff holds only its edits."""
    command = fake_agent_command("--log-dir", str(tmp_path), *options).replace("{prompt_file}", "{{prompt_file}}")
    coder = f"model = \"openai/t-coder\"\nbackend = \"command\"\ncommand = '''{command}'''\n{extra}"
    config = TEST_CONFIG.replace('model = "openai/t-coder"', coder, 1)
    assert config != TEST_CONFIG
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {})
    gates = [{"tests": "python -m unittest -q tests.test_pagination"}]
    return make_project(tmp_path / "p", server, [item("AS-1", dod=gates, **budget)], book, config=config)


def failure(settings: Settings) -> str:
    """The detail the item was dead-lettered with."""
    rows = query(settings, "SELECT data_json FROM events WHERE kind = 'item.status'")
    [failed] = [json.loads(data) for (data,) in rows if json.loads(data)["to"] == "failed"]
    return str(failed["detail"])


def coder_calls(settings: Settings) -> list[tuple[str, int, str]]:
    return query(settings, "SELECT outcome, round, role FROM model_calls WHERE role = 'coder' ORDER BY id")


@pytest.mark.parametrize("protocol", ["openai-chat", "anthropic-messages", "openai-responses"])
def test_the_fake_agent_fixes_the_item_through_the_proxy(protocol: str, tmp_path: Path, server: ScriptedServer) -> None:
    settings = external(tmp_path, server, "--protocol", protocol, "--calls", "2", *FIX)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

    assert coder_calls(settings) == [("ok", 1, "coder")] * 2
    assert "(page - 1) * per_page" in git(settings.root, "show", "main:shop/pagination.py")
    assert "AS-1 round 1" in git(settings.root, "log", "--oneline", "main")
    rounds = query(settings, "SELECT kind, data_json FROM events WHERE kind = 'round'")
    assert rounds and json.loads(rounds[0][1]).get("coder_summary", "").startswith("external agent exited 0")


def test_an_agent_that_ignores_refusals_is_stopped_and_the_item_escalates_for_budget(
        tmp_path: Path, server: ScriptedServer) -> None:
    settings = external(tmp_path, server, "--ignore-refusals", "--calls", "100000", tokens=9000)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "budget" and "kept calling after 3 budget refusals" in package["detail"]
    assert "[stopped: process group killed]" in package["detail"], "the agent was killed, not left to run"
    [stopped_round] = package["package"]["rounds"]
    assert stopped_round["partial"] and "[stopped: process group killed]" in stopped_round["agent_transcript"]
    outcomes = [outcome for outcome, _, _ in coder_calls(settings)]
    assert outcomes.count("refused") == 4 and outcomes[-1] == "refused"
    spent = query(settings, "SELECT spent_tokens, reserved_tokens FROM budgets WHERE scope = 'item:AS-1'")
    assert spent[0][0] + spent[0][1] <= 9000


def test_an_agent_that_exits_non_zero_after_a_budget_refusal_escalates_for_budget(tmp_path: Path,
                                                                                  server: ScriptedServer) -> None:
    """Some agents (Codex) end with an error status when the proxy refuses their call: that is the budget."""
    settings = external(tmp_path, server, "--exit", "1", tokens=9000)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "budget"
    assert "after the metering proxy refused 1 of its calls for budget" in package["detail"]
    assert package["package"]["rounds"][-1]["agent_transcript"].startswith("fake agent:"), "its output is kept"
    assert [outcome for outcome, _, _ in coder_calls(settings)][-1] == "refused"


@pytest.mark.parametrize("options, needle", [
    (("--exit", "3"), "exited with status 3"),
])
def test_an_agent_that_fails_dead_letters_the_item(
        options: tuple[str, ...], needle: str, tmp_path: Path, server: ScriptedServer) -> None:
    settings = external(tmp_path, server, "--calls", "1", *options)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    assert needle in failure(settings)


def test_a_missing_executable_dead_letters_the_item(tmp_path: Path, server: ScriptedServer) -> None:
    settings = external(tmp_path, server)
    text = (settings.root / "agentsprint.toml").read_text()
    command = fake_agent_command("--log-dir", str(tmp_path))
    (settings.root / "agentsprint.toml").write_text(text.replace(command, "no-such-agent {prompt_file}"))
    from agentsprint.config import load_settings

    settings = load_settings(settings.root, environ={})
    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}
    assert "no-such-agent: not found on PATH" in failure(settings)
    assert coder_calls(settings) == []


def test_a_hanging_agent_is_killed_at_the_time_budget(tmp_path: Path, server: ScriptedServer) -> None:
    settings = external(tmp_path, server, "--sleep", "60", time="3s")

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "time" and "process group was killed" in package["detail"]


@pytest.mark.skipif(demo_sandbox() != "bwrap", reason="needs a working bubblewrap")
def test_an_agent_cannot_write_outside_its_worktree_and_its_work_is_kept(
        tmp_path: Path, server: ScriptedServer) -> None:
    outside = tmp_path / "p" / "shop" / "pricing.py"
    settings = external(tmp_path, server, "--calls", "1", *FIX, "--write", str(outside), "owned\n")

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    assert "exited with status 1" in failure(settings) and "Read-only file system" in failure(settings)
    assert "owned" not in outside.read_text(), "the main checkout is untouched"
    branch = git(settings.root, "show", "agentsprint/AS-1:shop/pagination.py")
    assert "(page - 1) * per_page" in branch, "the agent's work in its worktree is committed on the item branch"


def test_the_agent_keeps_its_state_in_a_private_home_and_its_transcript_is_kept_redacted(
        tmp_path: Path, server: ScriptedServer) -> None:
    secret = "ghp_" + "a1B2" * 9
    settings = external(tmp_path, server, "--calls", "1", *FIX, "--home-file", ".agent/session.json", "null",
                        "--say", f"debug: using {secret}")

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

    [(data,)] = query(settings, "SELECT data_json FROM events WHERE kind = 'round'")
    transcript = json.loads(data)["agent_transcript"]
    [home_line] = [line for line in transcript.splitlines() if line.startswith("fake agent: wrote ")]
    home = Path(home_line.removeprefix("fake agent: wrote ")).parent.parent
    assert home.name == "home" and home.parent.name.startswith("agentsprint-agent-"), home
    assert home != Path.home() and not home.exists(), "the private home is removed after the round"
    assert "debug: using [REDACTED]" in transcript and secret not in data
    assert secret not in "".join(str(row) for row in query(settings, "SELECT data_json FROM events"))
    assert json.loads(data)["changed_files"] == ["shop/pagination.py"], "none of the agent's state is in the diff"


def test_a_subscription_login_is_sent_as_a_bearer_token_and_its_cost_is_imputed(
        tmp_path: Path, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_LOGIN_TOKEN", "oat-login-of-the-user")
    settings = external(tmp_path, server, "--protocol", "anthropic-messages", "--calls", "2", *FIX,
                        extra='subscription = true\napi_key_env = "AGENT_LOGIN_TOKEN"\n')

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

    rows = query(settings, "SELECT usd, attributes_json FROM model_calls WHERE role = 'coder'")
    assert len(rows) == 2 and all(usd > 0 for usd, _ in rows), "USD is still imputed at list price"
    assert {json.loads(attributes)["agentsprint.cost"] for _, attributes in rows} == {"imputed"}
    upstream = [auth for auth in server.auth if "oauth-2025-04-20" in auth.get("anthropic-beta", "")]
    assert len(upstream) == 2, server.auth
    assert {auth.get("Authorization") for auth in upstream} == {"Bearer oat-login-of-the-user"}
    assert not any("x-api-key" in auth for auth in upstream), "a login token is not an API key"
    others = query(settings, "SELECT attributes_json FROM model_calls WHERE role != 'coder'")
    assert {json.loads(a)["agentsprint.cost"] for (a,) in others} == {"measured"}, "only the coder's login"
