"""The `gemini-cli` coder backend end to end with the REAL Gemini CLI (`gemini`, npm @google/gemini-cli).

The real CLI runs headless in the item's worktree inside bubblewrap and speaks Gemini's API to the
metering proxy, which forwards to the scripted model server. The server scripts the agent's side of the
conversation with Gemini CLI's own tools (`read_file`, then `replace`) as `functionCall` parts, so the
CLI's own tools really edit the file; then the real gates, QA and human review follow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import agent_cli
from runner_support import TEST_CONFIG, item, make_project, query

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner import actions
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items

FAKE_KEY = "sk-" + "geminiTranscript0123456789abcdef"
OLD, NEW = "    start = page * per_page", "    start = (page - 1) * per_page"
STEPS = [
    ScriptedReply(content="Reading the pagination module.",
                  tool_calls=[tool_call("read_file", file_path="shop/pagination.py")]),
    ScriptedReply(tool_calls=[tool_call("replace", file_path="shop/pagination.py", old_string=OLD, new_string=NEW,
                                        instruction="In paginate, make page 1 start at the first item.")]),
    ScriptedReply(content=f"Fixed the off-by-one in paginate. (debug key {FAKE_KEY})"),
]
"""Gemini CLI's side of the round: read the file, replace the line, say it is done."""
CODER_PRICES = (0.0000004, 0.0000016)
"""The t-coder prices of TEST_CONFIG (input, output per token)."""


def gemini_coder(body: dict[str, Any]) -> ScriptedReply:
    """The next step of the script: one per tool result already in the conversation (stateless)."""
    results = sum("functionResponse" in part for content in body["contents"] for part in content.get("parts", []))
    return STEPS[min(results, len(STEPS) - 1)]



def project(tmp_path: Path, server: ScriptedServer, command: str | None, *dod: Any, **budget: Any) -> Settings:
    """The sample shop whose coder is Gemini CLI (`command`; None: `gemini` on PATH); item AS-1."""
    line = f'\ncommand = "{command}"' if command else ""
    config = TEST_CONFIG.replace('model = "openai/t-coder"',
                                 f'model = "openai/t-coder"\nbackend = "gemini-cli"{line}', 1)
    assert config != TEST_CONFIG
    gates = [{"tests": "python -m unittest -q tests.test_pagination"}, *dod]
    settings = make_project(tmp_path / "p", server, [item("AS-1", dod=gates, **budget)],
                            ScriptBook({"AS-1": PLANS["AS-1"]}, {}), config=config)
    server.add("t-coder", responder=gemini_coder)
    return settings


def coder_calls(settings: Settings) -> list[tuple[Any, ...]]:
    return query(settings, "SELECT outcome, item_id, round, role, input_tokens, output_tokens, usd, error "
                           "FROM model_calls WHERE role = 'coder' ORDER BY id")


def round_record(settings: Settings) -> dict[str, Any]:
    [(data,)] = query(settings, "SELECT data_json FROM events WHERE kind = 'round'")
    return dict(json.loads(data))


def test_the_real_gemini_cli_fixes_the_item_through_the_proxy(tmp_path: Path, server: ScriptedServer) -> None:
    settings = project(tmp_path, server, str(agent_cli("gemini")), {"review": "human"})

    started = time.perf_counter()
    assert run_items(settings, ["AS-1"]).results == {"AS-1": "awaiting_review"}
    print(f"gemini-cli: run_items {time.perf_counter() - started:.1f}s")

    record = round_record(settings)
    assert record["coder_summary"].split(" model calls: ", 1)[1].startswith("Fixed the off-by-one in paginate."), \
        "QA reads the agent's answer, not the tail of its JSON"
    assert record["changed_files"] == ["shop/pagination.py"], "nothing but the agent's edit lands in the worktree"
    changed = [line for line in record["diff"].splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-" + OLD, "+" + NEW]
    assert all(gate["passed"] for gate in record["gates"]) and record["verdict"] == "approve"
    calls, answered = coder_calls(settings), [u for u in server.usage if u["model"] == "t-coder"]
    assert len(calls) == len(answered) >= 3, "every call the agent made is recorded"
    assert {c[:4] for c in calls} == {("ok", "AS-1", 1, "coder")}
    assert [c[4:6] for c in calls] == [(u["prompt_tokens"], u["completion_tokens"]) for u in answered]
    assert [c[6] for c in calls] == pytest.approx([u["prompt_tokens"] * CODER_PRICES[0] + u["completion_tokens"]
                                                   * CODER_PRICES[1] for u in answered])
    transcript = record["agent_transcript"]
    assert '"name":"replace"' in transcript and "Fixed the off-by-one" in transcript, "Gemini CLI's session log"
    assert FAKE_KEY not in transcript and "[REDACTED]" in transcript


def test_growing_context_through_the_real_gemini_cli_stops_at_the_item_budget(
        tmp_path: Path, server: ScriptedServer) -> None:
    budget = 21000  # the supervisor's plan (~600) and one ~10.9k-token Gemini CLI call fit; a second does not
    settings = project(tmp_path, server, str(agent_cli("gemini")), tokens=budget)

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "escalated"}

    package = actions.escalation_detail(actions.open_project(settings), "AS-1").to_json()
    assert package["reason"] == "budget" and "of its calls for budget" in package["detail"]
    [stopped] = package["package"]["rounds"]
    assert stopped["partial"] and '"name":"read_file"' in stopped["agent_transcript"], "Gemini CLI's session log"
    calls = coder_calls(settings)
    assert [c[0] for c in calls] == ["ok", "refused"] and "budget item:AS-1 exhausted" in calls[-1][7]
    assert len(server.requests["t-coder"]) == 1, "the refused call never reached the upstream"
    [(spent, reserved)] = query(settings, "SELECT spent_tokens, reserved_tokens FROM budgets WHERE scope = 'item:AS-1'")
    all_calls = query(settings, "SELECT input_tokens + output_tokens FROM model_calls WHERE item_id = 'AS-1'")
    assert reserved == 0 and spent <= budget
    assert spent == sum(tokens for (tokens,) in all_calls), "nothing charged twice"
    assert spent + calls[0][4] > budget, "the refused call (larger than the first) would have crossed the budget"


@pytest.mark.parametrize("command, named", [("{tmp}/nowhere/gemini", "{tmp}/nowhere/gemini"), (None, "gemini")])
def test_a_missing_gemini_executable_dead_letters_the_item(
        command: str | None, named: str, tmp_path: Path, server: ScriptedServer) -> None:
    settings = project(tmp_path, server, command and command.format(tmp=tmp_path))

    assert run_items(settings, ["AS-1"]).results == {"AS-1": "failed"}

    rows = [json.loads(data) for (data,) in query(settings, "SELECT data_json FROM events WHERE kind = 'item.status'")]
    [failed] = [row for row in rows if row["to"] == "failed"]
    assert f"coder command was not found: {named.format(tmp=tmp_path)}: not found" in failed["detail"]
    assert coder_calls(settings) == []
