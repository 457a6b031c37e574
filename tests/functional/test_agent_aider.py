"""Aider as the coder, end to end: the REAL Aider CLI (aider-chat from PyPI), the runner, the metering
proxy, the scripted model server, real git and SQLite.

The scripted server plays the model behind the proxy. Its replies are what a model answers Aider: prose
and a whole-file edit block (Aider's edit format for a model it has no settings for), which Aider parses
and applies to the worktree itself; or replies naming other repository files, which Aider adds to the
chat and sends back (its own reflection), so every call is larger than the last.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import agent_cli
from proxy_support import proxy_gateway
from runner_support import TEST_CONFIG, git, item, make_project, query

from agentsprint.agents.backends import LaunchRequest
from agentsprint.agents.backends.aider import CHAT_HISTORY, AiderBackend
from agentsprint.agents.external import agent_environment
from agentsprint.config import Settings, load_settings
from agentsprint.llm.context import CallContext
from agentsprint.llm.proxy import MeteringProxy
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer
from agentsprint.runner import actions
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items
from agentsprint.store import Store
from agentsprint.store.ledger import model_calls

SECRET = "ghp_" + "Zq8Xw2Lk5Nv7Pt4Rs1Mb9Hc3Jd6Fg0Ya8UeAb"
"""A fake GitHub token the model "says": the kept transcript must not hold it."""
CODER_PRICES = (0.0000004, 0.0000016)
"""USD per input and output token of t-coder in the test configuration."""
LOOK_AT = ("shop/pricing.py", "shop/report.py", "tests/test_pricing.py", "tests/test_pagination.py",
           "shop/__init__.py", "README.md")
CODER = CallContext(role="coder", item_id="AS-1", run_id="r1", round=1, scopes=["item:AS-1"])
PADDING = "I am reading the repository before I change anything. " * 20



def aider_project(tmp_path: Path, server: ScriptedServer, replies: list[ScriptedReply], executable: str | None = None,
                  **budget: Any) -> Settings:
    """A project whose coder is Aider (`executable`, default the real CLI) answered by `replies`, then
    "Nothing more to change."; item AS-1 with the pagination tests and the secrets scan as its DoD."""
    command = executable or str(agent_cli("aider"))
    config = TEST_CONFIG.replace('model = "openai/t-coder"',
                                 f'model = "openai/t-coder"\nbackend = "aider"\ncommand = "{command}"', 1)
    assert config != TEST_CONFIG
    gates = [{"tests": "python -m unittest -q tests.test_pagination"}, "secrets"]
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=gates, **budget)],
                            ScriptBook({"AS-1": PLANS["AS-1"]}, {}), config=config)
    server.add("t-coder", *replies, responder=lambda _body: ScriptedReply(content="Nothing more to change."))
    return settings


def fix_reply(settings: Settings) -> ScriptedReply:
    """The model's answer: a sentence holding a fake secret, then the whole fixed file for Aider to write."""
    source = (settings.root / "shop" / "pagination.py").read_text(encoding="utf-8")
    fixed = source.replace("    start = page * per_page", "    start = (page - 1) * per_page")
    assert fixed != source
    return ScriptedReply(content=f"Pages start at 1, so the first page starts at index 0 (my token {SECRET}).\n\n"
                                 f"shop/pagination.py\n```python\n{fixed}```\n")


def coder_calls(settings: Settings) -> list[dict[str, Any]]:
    """Every model call of the coder role, oldest first."""
    rows = query(settings, "SELECT item_id, run_id, round, role, outcome, estimated_input_tokens, input_tokens, "
                           "output_tokens, usd FROM model_calls WHERE role = 'coder' ORDER BY id")
    keys = ("item_id", "run_id", "round", "role", "outcome", "estimated", "input", "output", "usd")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def round_record(settings: Settings) -> dict[str, Any]:
    """The first round's record, as stored."""
    rows = query(settings, "SELECT data_json FROM events WHERE kind = 'round' ORDER BY id")
    assert rows, "no round was recorded"
    return dict(json.loads(rows[0][0]))


def test_aider_fixes_the_item_through_the_proxy_and_the_round_keeps_its_redacted_chat(tmp_path: Path,
                                                                                      server: ScriptedServer) -> None:
    settings = aider_project(tmp_path, server, [])
    server.add("t-coder", fix_reply(settings))

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "done"}

    assert "(page - 1) * per_page" in git(settings.root, "show", "main:shop/pagination.py")
    record = round_record(settings)
    assert record["changed_files"] == ["shop/pagination.py"], "only the fix: no Aider file lands in the diff"
    assert (record["added"], record["removed"]) == (1, 1)
    calls = coder_calls(settings)
    assert calls and len(calls) == len(server.requests["t-coder"])
    assert {(c["item_id"], c["round"], c["role"], c["outcome"]) for c in calls} == {("AS-1", 1, "coder", "ok")}
    served = [u for u in server.usage if u["model"] == "t-coder"]
    assert [(c["input"], c["output"]) for c in calls] == [(u["prompt_tokens"], u["completion_tokens"]) for u in served]
    assert record["coder_summary"].startswith(f"external agent exited 0 after {len(calls)} model calls")
    for call in calls:
        assert call["usd"] == pytest.approx(call["input"] * CODER_PRICES[0] + call["output"] * CODER_PRICES[1])
    transcript = record["agent_transcript"]
    assert "# aider chat started" in transcript and "Pages start at 1" in transcript, "Aider's own chat history"
    assert SECRET not in json.dumps(record) and "[REDACTED]" in transcript


def test_growing_context_through_aider_is_refused_at_the_item_budget(tmp_path: Path, server: ScriptedServer) -> None:
    replies = [ScriptedReply(content=f"Before I fix anything I need to see {path}.\n\n{PADDING}") for path in LOOK_AT]
    settings = aider_project(tmp_path, server, replies, tokens=6000, usd=5.0)

    results = run_items(settings, ["AS-1"]).results

    calls = coder_calls(settings)
    outcomes = [c["outcome"] for c in calls]
    assert "refused" in outcomes, f"the proxy refused the call that would have crossed the budget: {outcomes}"
    first_refusal = outcomes.index("refused")
    assert outcomes[:first_refusal] == ["ok"] * first_refusal and first_refusal >= 2
    sizes = [c["estimated"] for c in calls[:first_refusal + 1]]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), f"each call larger than the last: {sizes}"
    assert outcomes.count("ok") == len(server.requests["t-coder"]), "a refused call never reached the model"
    before = query(settings, "SELECT SUM(input_tokens + output_tokens) FROM model_calls WHERE item_id = 'AS-1' "
                             "AND id < (SELECT MIN(id) FROM model_calls WHERE outcome = 'refused')")[0][0]
    assert before + sizes[-1] + settings.run.min_reply_tokens > 6000, "refused: it would have crossed the budget"
    spent, reserved = query(settings, "SELECT spent_tokens, reserved_tokens FROM budgets WHERE scope = 'item:AS-1'")[0]
    recorded = query(settings, "SELECT SUM(input_tokens + output_tokens) FROM model_calls WHERE item_id = 'AS-1'")[0][0]
    assert spent == recorded and reserved == 0, "every call charged once"
    assert spent <= 6000
    assert results == {"AS-1": "escalated"}
    assert actions.escalation_detail(actions.open_project(settings), "AS-1").reason == "budget"


def test_a_missing_aider_executable_dead_letters_the_item_naming_it(tmp_path: Path, server: ScriptedServer) -> None:
    missing = tmp_path / "bin" / "aider"
    settings = aider_project(tmp_path, server, [], executable=str(missing))

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    rows = query(settings, "SELECT data_json FROM events WHERE kind = 'item.status'")
    [failed] = [json.loads(data) for (data,) in rows if json.loads(data)["to"] == "failed"]
    assert f"the coder command was not found: {missing}: not found on PATH" in failed["detail"]
    assert coder_calls(settings) == []
    assert load_settings(settings.root, environ={}).models["coder"].backend == "aider"


EDIT = ScriptedReply(content="notes.py\n```python\nNOTE = 'edited by aider'\n```\n")


def launch_aider(tmp_path: Path, proxy: MeteringProxy, model: str) -> tuple[Path, Path, list[str]]:
    """Run the real Aider as the backend launches it, in a fresh repository, without the sandbox (so
    strace, where installed, can see every connection it opens); (repository, home, connections)."""
    repo, home, trace = tmp_path / "repo", tmp_path / "home", tmp_path / "connect.trace"
    repo.mkdir()
    home.mkdir()
    (repo / "notes.py").write_text("NOTE = 'plain'\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "notes"], cwd=repo, check=True)
    (tmp_path / "prompt.md").write_text("Change NOTE in notes.py to 'edited by aider'.\n", encoding="utf-8")
    grant = proxy.grant(CODER)
    request = LaunchRequest(executable=str(agent_cli("aider")), prompt_file=tmp_path / "prompt.md", prompt="",
                            home=home, proxy_root=proxy.base_url.removesuffix("/v1"), token=grant.token, model=model)
    launch = AiderBackend().launch(request)
    for relative, text in launch.files.items():
        (home / relative).parent.mkdir(parents=True, exist_ok=True)
        (home / relative).write_text(text, encoding="utf-8")
    strace = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace)] if shutil.which("strace") else []
    env = {**agent_environment(proxy, grant.token, home), **launch.env}
    done = subprocess.run([*strace, *launch.argv], cwd=repo, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return repo, home, trace.read_text().splitlines() if strace else []


@pytest.mark.parametrize("model, system_message", [("openai/t-coder", True), ("anthropic/t-coder", False)],
                         ids=["openai-chat", "anthropic-messages"])
def test_aider_speaks_its_protocol_to_the_proxy_only_and_keeps_its_files_in_home(model: str, system_message: bool,
                                                                                 tmp_path: Path,
                                                                                 server: ScriptedServer) -> None:
    store = Store(f"sqlite:///{tmp_path / 'agentsprint.db'}")
    gateway = proxy_gateway(server, store)
    server.add("coder-model", EDIT)
    with MeteringProxy(gateway) as proxy:
        repo, home, connections = launch_aider(tmp_path, proxy, model)
        port = proxy.base_url.split(":")[-1].split("/")[0]
        calls = model_calls(store, "AS-1")  # the moment Aider exits: every call already settled
    store.close()
    assert "edited by aider" in (repo / "notes.py").read_text()
    status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=repo, capture_output=True, text=True)
    assert status.stdout.splitlines() == [" M notes.py"], "nothing but the edit in the worktree"
    assert calls and [c.outcome for c in calls] == ["ok"] * len(server.requests["coder-model"])
    assert (home / CHAT_HISTORY).is_file() and "edited by aider" in (home / CHAT_HISTORY).read_text()
    assert not (home / ".aider" / "caches").exists(), "Aider tried to download litellm's model price list"
    assert json.loads((home / ".aider" / "analytics.json").read_text())["permanently_disable"] is True
    inet = [line for line in connections if "AF_INET" in line]
    assert all(f"htons({port})" in line and "127.0.0.1" in line for line in inet), inet
    assert inet or not shutil.which("strace"), "strace saw Aider's connection to the proxy"
    bodies = server.requests["coder-model"]
    assert all((b["messages"][0]["role"] == "system") == system_message for b in bodies), "the protocol Aider spoke"
