"""Aider round benchmark: wall time of one real-Aider coder round, setup to exit, and its model calls.

    AGENTSPRINT_TEST_AGENTS_BIN=.ci/agents/bin python benchmarks/aider_round.py [--runs 5]

Each run creates the sample shop with item AS-1 (the pagination bug) whose coder is `backend = "aider"`,
answered by the scripted model server (one whole-file reply with the fix) behind the metering proxy,
and runs the item through the runner. The figure is the time `run_external` takes (token, private home,
prompt file, Aider in the sandbox to its exit, token revoked), and the calls the proxy recorded for it.
Prints one JSON object; needs the real Aider (.ci/install-agents.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentsprint.config import offline_env  # noqa: E402

offline_env()

from agentsprint.agents import external  # noqa: E402
from agentsprint.config import load_settings  # noqa: E402
from agentsprint.domain import Budget, Item, ItemType, Priority, parse_gate  # noqa: E402
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer  # noqa: E402
from agentsprint.runner import steps  # noqa: E402
from agentsprint.runner.demo import CONFIG, create_sample  # noqa: E402
from agentsprint.runner.demo_script import PLANS, ScriptBook  # noqa: E402
from agentsprint.runner.service import run_items  # noqa: E402

FIGURES: list[tuple[float, int]] = []


def timed_run_external(*args: Any, **kwargs: Any) -> external.ExternalOutcome:
    """`run_external`, timed from its start to its return."""
    started = time.perf_counter()
    outcome = external.run_external(*args, **kwargs)
    FIGURES.append((time.perf_counter() - started, outcome.calls))
    return outcome


def aider() -> str:
    """The real Aider from AGENTSPRINT_TEST_AGENTS_BIN (default .ci/agents/bin)."""
    folder = Path(os.environ.get("AGENTSPRINT_TEST_AGENTS_BIN") or ROOT / ".ci" / "agents" / "bin")
    if not (folder / "aider").exists():
        raise SystemExit(f"no aider in {folder}: run .ci/install-agents.sh")
    return str(folder / "aider")


def one_round(folder: Path) -> None:
    """Run AS-1 once with Aider as the coder."""
    item = Item(id="AS-1", title="Fix off-by-one in pagination", type=ItemType.BUG, priority=Priority.HIGH, value=3,
                scope=["shop/**"], budget=Budget(tokens=60000, usd=0.5, time="5m", rounds=3),
                dod=[parse_gate({"tests": "python -m unittest -q tests.test_pagination"})],
                body="page 1 must start with the first item.\n\n## Acceptance criteria\n- it works\n")
    config = CONFIG.replace('model = "openai/demo-coder"',
                            f'model = "openai/demo-coder"\nbackend = "aider"\ncommand = "{aider()}"', 1)
    with ScriptedServer() as server:
        for model, responder in ScriptBook({"AS-1": PLANS["AS-1"]}, {}).responders("demo").items():
            server.add(model, responder=responder)
        root = create_sample(folder / "p", server.base_url, [item], config=config)
        source = (root / "shop" / "pagination.py").read_text(encoding="utf-8")
        fixed = source.replace("start = page * per_page", "start = (page - 1) * per_page")
        server.add("demo-coder", ScriptedReply(content=f"shop/pagination.py\n```python\n{fixed}```\n"))
        results = run_items(load_settings(root, environ={}), ["AS-1"]).results
    if results != {"AS-1": "done"}:
        raise SystemExit(f"the round did not end done: {results}")


SMALL_BOUND_S = 120.0
"""A real agent round (setup to exit, 1 model call to a local server) takes seconds: two minutes is a hang."""


def main() -> int:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(prog="benchmarks/aider_round.py")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small", action="store_true",
                        help=f"CI: one run, and fail if the round took {SMALL_BOUND_S:g} s or more")
    args = parser.parse_args()
    runs = 1 if args.small else args.runs
    steps.run_external = timed_run_external  # type: ignore[assignment]
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as folder:
            one_round(Path(folder))
    walls = [wall for wall, _ in FIGURES]
    print(json.dumps({"runs": runs, "median_s": round(statistics.median(walls), 2), "min_s": round(min(walls), 2),
                      "max_s": round(max(walls), 2), "model_calls": [calls for _, calls in FIGURES]}))
    if args.small and max(walls) >= SMALL_BOUND_S:
        print(f"an Aider round took {max(walls):.1f} s (bound {SMALL_BOUND_S:g} s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
