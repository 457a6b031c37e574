"""`backend = "codex"` end to end with the REAL Codex CLI (npm @openai/codex, pinned in .ci/agents).

Codex runs headless (`codex exec --json`) in the item's worktree inside the bubblewrap sandbox; its
model calls go to the metering proxy, which forwards them to the scripted model server. The server
scripts Codex's own tool (`exec_command` with its `cmd` argument, in the Responses API) so that
Codex itself edits the file; then the real gates, QA and review follow.
"""

from __future__ import annotations

import json
import threading
import time
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import agent_cli
from runner_support import TEST_CONFIG, git, item, make_project, query

from agentsprint.agents.backends import LaunchRequest
from agentsprint.agents.backends.codex import CodexBackend
from agentsprint.config import Settings, load_settings
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer
from agentsprint.runner import actions
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items

FIX = "sed -i 's/    start = page \\* per_page/    start = (page - 1) * per_page/' shop/pagination.py"
FAKE_KEY = "sk-ant-api03-" + "Q7xZ" * 10
"""A secret-shaped string Codex repeats in its final message: it must not survive into the records."""
CODER_PRICES = (0.0000004, 0.0000016)
"""The coder's input and output USD per token in TEST_CONFIG."""



class _Outbound(BaseHTTPRequestHandler):
    """Records each request a client sends through it as its HTTP(S) proxy, and refuses it."""

    def _record(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")  # type: ignore[attr-defined]
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_CONNECT = do_GET = do_POST = _record

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def outbound(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every request leaving the machine goes to a recorder posing as the HTTP(S) proxy (loopback is
    exempt): what Codex tries to reach besides the metering proxy shows up in the list."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Outbound)
    httpd.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    yield httpd.seen  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def exec_command(cmd: str) -> ScriptedReply:
    """A reply calling Codex's own shell tool, in the shape Codex declares it."""
    return ScriptedReply(tool_calls=[{"name": "exec_command", "arguments": {"cmd": cmd, "tty": False}}])


def codex_project(tmp_path: Path, server: ScriptedServer, command: str | None = None, **budget: Any) -> Settings:
    """The sample shop whose coder is Codex (`command`: its executable, default the installed CLI)."""
    executable = command or str(agent_cli("codex"))
    config = TEST_CONFIG.replace('model = "openai/t-coder"',
                                 f'model = "openai/t-coder"\nbackend = "codex"\ncommand = "{executable}"', 1)
    assert config != TEST_CONFIG
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {})
    gates = [{"tests": "python -m unittest -q tests.test_pagination"}, "secrets"]
    return make_project(tmp_path / "p", server, [item("AS-1", dod=gates, **budget)], book, config=config)


def coder_calls(settings: Settings) -> list[dict[str, Any]]:
    rows = query(settings, "SELECT item_id, run_id, round, role, outcome, input_tokens, output_tokens, usd "
                           "FROM model_calls WHERE role = 'coder' ORDER BY id")
    keys = ("item_id", "run_id", "round", "role", "outcome", "input_tokens", "output_tokens", "usd")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def round_record(settings: Settings) -> dict[str, Any]:
    [(data,)] = query(settings, "SELECT data_json FROM events WHERE kind = 'round'")
    return dict(json.loads(data))


def changed_lines(diff: str) -> list[str]:
    """The added and removed lines of a unified diff."""
    return [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_codex_fixes_the_item_through_the_proxy_and_the_round_goes_through_gates_qa_and_review(
        tmp_path: Path, server: ScriptedServer, outbound: list[str]) -> None:
    settings = codex_project(tmp_path, server)
    server.add("t-coder", exec_command(f"{FIX} && env | grep -E '^PATH=|TOKEN|API_KEY'"),
               ScriptedReply(content=f"Pages now start at 1 in shop/pagination.py. (saw {FAKE_KEY} in a log)"))

    started = time.perf_counter()
    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}
    print(f"\ncodex round: {time.perf_counter() - started:.1f}s for the run, "
          f"{len(server.requests['t-coder'])} model calls by Codex")

    assert server.errors == []
    assert "Item AS-1" in json.dumps(server.requests["t-coder"][0]["input"]), "Codex got the round's prompt"
    [shown] = [i["output"] for i in server.requests["t-coder"][1]["input"] if i["type"] == "function_call_output"]
    assert "PATH=" in shown and "AGENTSPRINT_PROXY_TOKEN" not in shown and "OPENAI_API_KEY" not in shown, \
        "the commands Codex runs do not see the proxy token"
    assert outbound == [], "Codex reached nothing but the metering proxy (no update, plugin, analytics call)"
    record = round_record(settings)
    assert record["coder_summary"].split(" model calls: ", 1)[1].startswith("Pages now start at 1"), \
        "QA reads the agent's answer, not the tail of its JSON events"
    fix = ["-    start = page * per_page", "+    start = (page - 1) * per_page"]
    assert record["changed_files"] == ["shop/pagination.py"] and changed_lines(record["diff"]) == fix
    first = git(settings.root, "rev-list", "--max-parents=0", "main").split()[0]
    assert changed_lines(git(settings.root, "diff", first, "main", "--", "shop", "tests")) == fix, "merged"
    calls = coder_calls(settings)
    assert len(calls) == len(server.requests["t-coder"]) == 2, "every call Codex made went through the proxy"
    [run_id] = {call["run_id"] for call in calls}
    assert run_id and {(c["item_id"], c["round"], c["role"], c["outcome"]) for c in calls} == {
        ("AS-1", 1, "coder", "ok")}
    reported = [u for u in server.usage if u["model"] == "t-coder"]
    assert [(c["input_tokens"], c["output_tokens"]) for c in calls] == [
        (u["input_tokens"], u["output_tokens"]) for u in reported]
    for call in calls:
        expected = call["input_tokens"] * CODER_PRICES[0] + call["output_tokens"] * CODER_PRICES[1]
        assert call["usd"] == pytest.approx(expected, rel=1e-6)
    transcript = record["agent_transcript"]
    assert '"type":"session_meta"' in transcript.replace(" ", ""), "Codex's own rollout log is kept"
    assert "exec_command" in transcript and "Pages now start at 1" in transcript
    assert FAKE_KEY not in transcript and FAKE_KEY not in json.dumps(record), "the secret is redacted"


def test_codex_on_a_growing_context_is_refused_at_the_item_budget_and_the_item_escalates(
        tmp_path: Path, server: ScriptedServer) -> None:
    settings = codex_project(tmp_path, server, tokens=34000)
    server.add("t-coder", responder=lambda _body: exec_command("seq 1 1200"))

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "budget", package["detail"]
    outcomes = [call["outcome"] for call in coder_calls(settings)]
    assert outcomes[-1] == "refused" and outcomes.count("refused") == 1 and outcomes.count("ok") >= 3
    sizes = [call["input_tokens"] for call in coder_calls(settings) if call["outcome"] == "ok"]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), "each call larger than the last"
    assert outcomes.count("ok") == len(server.requests["t-coder"]), "the refused call never reached upstream"
    [(spent, reserved)] = query(settings, "SELECT spent_tokens, reserved_tokens FROM budgets "
                                          "WHERE scope = 'item:AS-1'")
    [(recorded,)] = query(settings, "SELECT SUM(input_tokens + output_tokens) FROM model_calls "
                                    "WHERE item_id = 'AS-1' AND outcome = 'ok'")
    assert reserved == 0 and spent == recorded <= 34000, "spent once per call, within the budget"
    transcript = package["package"]["rounds"][-1]["agent_transcript"]
    assert transcript.startswith('{"timestamp"') and '"type": "session_meta"' in transcript, "Codex's rollout"
    assert "agentsprint refused the call" in transcript, "the escalation package keeps Codex's transcript"


def test_a_missing_codex_executable_dead_letters_the_item_naming_it(tmp_path: Path, server: ScriptedServer) -> None:
    settings = codex_project(tmp_path, server, command="no-such-codex")

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    rows = query(settings, "SELECT data_json FROM events WHERE kind = 'item.status'")
    [failed] = [json.loads(data) for (data,) in rows if json.loads(data)["to"] == "failed"]
    assert "the coder command was not found: no-such-codex: not found on PATH" in failed["detail"]
    assert coder_calls(settings) == [] and server.requests["t-coder"] == []


def test_the_launch_points_codex_at_the_proxy_with_every_prompt_and_phone_home_off(tmp_path: Path) -> None:
    request = LaunchRequest(executable="codex", prompt_file=tmp_path / "prompt.md", prompt="Fix it.",
                            home=tmp_path / "home", proxy_root="http://127.0.0.1:4321", token="tok-1",
                            model="openai/gpt-5-codex", usd_left=0.25)
    launch = CodexBackend().launch(request)

    assert launch.argv[:2] == ["codex", "exec"] and launch.argv[-1] == "Fix it."
    assert "--dangerously-bypass-approvals-and-sandbox" in launch.argv and "--json" in launch.argv
    assert launch.argv[launch.argv.index("-m") + 1] == "gpt-5-codex"
    assert launch.env["CODEX_HOME"] == str(tmp_path / "home" / ".codex")
    config = tomllib.loads(launch.files[".codex/config.toml"])
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == "http://127.0.0.1:4321/v1" and provider["wire_api"] == "responses"
    assert launch.env[provider["env_key"]] == "tok-1"
    assert config["check_for_update_on_startup"] is False and config["analytics"]["enabled"] is False
    assert config["features"]["plugins"] is False and config["web_search"] == "disabled"
    assert config["features"]["unbounded_connection_retries"] is False, "an unreachable proxy ends the run"


def test_an_upstream_that_keeps_failing_dead_letters_the_item_and_charges_nothing(tmp_path: Path,
                                                                                  server: ScriptedServer) -> None:
    settings = codex_project(tmp_path, server)
    server.add("t-coder", ScriptedReply(status=500), repeat=True)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    rows = query(settings, "SELECT data_json FROM events WHERE kind = 'item.status'")
    [failed] = [json.loads(data) for (data,) in rows if json.loads(data)["to"] == "failed"]
    assert "the external agent exited with status 1" in failed["detail"] and "turn.failed" in failed["detail"]
    calls = coder_calls(settings)
    assert len(calls) == len(server.requests["t-coder"]) >= 2, "Codex retried, each try went through the proxy"
    assert {(c["outcome"], c["input_tokens"], c["output_tokens"], c["usd"]) for c in calls} == {("error", 0, 0, 0)}
    [(spent, reserved)] = query(settings, "SELECT spent_tokens, reserved_tokens FROM budgets WHERE scope = 'item:AS-1'")
    [(others,)] = query(settings, "SELECT SUM(input_tokens + output_tokens) FROM model_calls WHERE role != 'coder'")
    assert (spent, reserved) == (others, 0), "the failed calls released their reservations"


def processes_in(folder: Path) -> list[str]:
    """The pids of processes whose working directory is under `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(proc.joinpath("cwd").resolve()).startswith(str(folder)):
                found.append(proc.name)
        except OSError:
            continue
    return found


def test_codex_waiting_on_a_model_past_the_time_budget_is_killed_with_its_children(tmp_path: Path,
                                                                                   server: ScriptedServer) -> None:
    settings = codex_project(tmp_path, server, time="10s")
    toml = settings.root / "agentsprint.toml"
    toml.write_text(toml.read_text().replace('call_timeout = "3s"', 'call_timeout = "300s"'))  # the proxy waits
    settings = load_settings(settings.root, environ={})
    assert settings.run.call_timeout == "300s"
    server.add("t-coder", ScriptedReply(hang=120))

    started = time.perf_counter()
    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    assert time.perf_counter() - started < 60, "Codex was stopped at the item's time, not at the model's reply"
    assert actions.escalation_detail(actions.open_project(settings), "AS-1").reason == "time"
    assert len(server.requests["t-coder"]) == 1, "Codex was waiting on its first call"
    assert processes_in(tmp_path) == [], "no Codex process is left running"
