"""One real OpenCode round: wall time from the runner's setup to the agent's exit, and its model calls.

    AGENTSPRINT_TEST_AGENTS_BIN=.ci/agents/bin python benchmarks/opencode_round.py [--runs 3]

Runs the item AS-1 of the sample shop with `[models.coder] backend = "opencode"` against the scripted
model server behind the metering proxy (the scenario of tests/functional/test_agent_opencode.py: read,
edit, final reply), timing `run_external` (private home and config written, sandboxed `opencode run`,
session log read, token revoked). Prints one line a run; needs the real `opencode` (.ci/install-agents.sh).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "functional")]


def timed_runs(runs: int, executable: str) -> tuple[list[tuple[float, float, int]], list[str]]:
    """(round wall seconds, agent process seconds, model calls) of each run, and each item's end status."""
    import test_agent_opencode as scenario

    from agentsprint.llm.scripted import ScriptedServer
    from agentsprint.runner import steps
    from agentsprint.runner.service import run_items

    seen: list[tuple[float, float, int]] = []
    ends: list[str] = []
    original = steps.run_external

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        outcome = original(*args, **kwargs)
        seen.append((time.perf_counter() - start, outcome.seconds, outcome.calls))
        return outcome

    steps.run_external = timed  # type: ignore[assignment]
    for _ in range(runs):
        with ScriptedServer() as server:
            root = Path(tempfile.mkdtemp(prefix="opencode-round-"))
            settings = scenario.project(root, server, executable, scenario.fixing_coder)
            result = run_items(settings, ["AS-1"]).results
        ends.append(result["AS-1"])
        print(f"{result['AS-1']}: round {seen[-1][0]:.2f}s (agent process {seen[-1][1]:.2f}s), "
              f"{seen[-1][2]} model calls", flush=True)
    return seen, ends


SMALL_BOUND_S = 120.0
"""A real agent round (setup to exit, 3 model calls to a local server) takes seconds: two minutes is a hang."""


def main() -> int:
    """Run and print; exit 1 when an item did not end done."""
    from agentsprint.config import offline_env

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", action="store_true",
                        help=f"CI: one run, and fail if the round took {SMALL_BOUND_S:g} s or more")
    args = parser.parse_args()
    if args.small:
        args.runs = 1
    offline_env()
    for name, value in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "bench@example.com"),
                        ("GIT_COMMITTER_NAME", "bench"), ("GIT_COMMITTER_EMAIL", "bench@example.com")):
        os.environ.setdefault(name, value)
    folder = Path(os.environ.get("AGENTSPRINT_TEST_AGENTS_BIN") or ROOT / ".ci" / "agents" / "bin")
    seen, ends = timed_runs(args.runs, str(folder / "opencode"))
    walls = sorted(wall for wall, _, _ in seen)
    print(f"median round {walls[len(walls) // 2]:.2f}s over {len(walls)} runs")
    if args.small and walls[-1] >= SMALL_BOUND_S:
        print(f"an OpenCode round took {walls[-1]:.1f} s (bound {SMALL_BOUND_S:g} s)", file=sys.stderr)
        return 1
    return 0 if ends == ["done"] * args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
