"""Real Gemini CLI round: wall time of the external agent's run (setup to exit) and its model calls.

    AGENTSPRINT_TEST_AGENTS_BIN=.ci/agents/bin python benchmarks/agent_gemini_cli.py [--runs 3]

The project and script of tests/functional/test_agent_gemini_cli.py (the real `gemini` fixes AS-1 through
the metering proxy and the scripted model server); `run_external` is timed from the private home's
creation to the agent's exit and the round's model_calls rows. Results go to
benchmarks/results/agent_gemini_cli.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "functional")]

from agentsprint.config import offline_env  # noqa: E402

offline_env()

import agentsprint.runner.steps as steps  # noqa: E402
from agentsprint.llm.scripted import ScriptedServer  # noqa: E402
from agentsprint.runner.service import run_items  # noqa: E402

ROUNDS: list[dict[str, Any]] = []


def timed_run_external(*args: Any, **kwargs: Any) -> Any:
    """`run_external`, its wall time and model calls recorded in ROUNDS."""
    started = time.perf_counter()
    outcome = REAL_RUN_EXTERNAL(*args, **kwargs)
    ROUNDS.append({"seconds": round(time.perf_counter() - started, 3), "model_calls": outcome.calls,
                   "exit_code": outcome.exit_code})
    return outcome


REAL_RUN_EXTERNAL = steps.run_external


def one_round(executable: str) -> str:
    """Run AS-1 once with the real Gemini CLI as the coder; the item's result."""
    import test_agent_gemini_cli as scenario

    with ScriptedServer() as server:
        settings = scenario.project(Path(tempfile.mkdtemp(prefix="bench-gemini-")), server, executable,
                                    {"review": "human"})
        return run_items(settings, ["AS-1"]).results["AS-1"]


SMALL_BOUND_S = 120.0
"""A real agent round (setup to exit, 3 model calls to a local server) takes seconds: two minutes is a hang."""


def main() -> int:
    """Time `--runs` rounds and write the results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", action="store_true",
                        help=f"CI: one run, print only, and fail if the round took {SMALL_BOUND_S:g} s or more")
    args = parser.parse_args()
    runs = 1 if args.small else args.runs
    executable = str(Path(os.environ.get("AGENTSPRINT_TEST_AGENTS_BIN", ROOT / ".ci/agents/bin")) / "gemini")
    steps.run_external = timed_run_external
    results = [one_round(executable) for _ in range(runs)]
    seconds = [entry["seconds"] for entry in ROUNDS]
    report = {"agent": "gemini-cli 0.61.0", "results": results, "rounds": ROUNDS,
              "median_seconds": statistics.median(seconds), "python": platform.python_version(),
              "load_average": os.getloadavg()[0]}
    if not args.small:
        (ROOT / "benchmarks" / "results" / "agent_gemini_cli.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if args.small and max(seconds) >= SMALL_BOUND_S:
        print(f"a Gemini CLI round took {max(seconds):.1f} s (bound {SMALL_BOUND_S:g} s)", file=sys.stderr)
        return 1
    return 0 if results == ["awaiting_review"] * runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
