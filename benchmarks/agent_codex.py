"""The real Codex CLI as the coder: wall time of its round (setup to exit) and the model calls it made.

    python benchmarks/agent_codex.py                 # 5 runs, writes benchmarks/results/agent_codex.json
    python benchmarks/agent_codex.py --runs 1 --no-write

Each run is the sample shop's AS-1 through `run_items` on a fresh repository: the supervisor plans,
Codex (`backend = "codex"`: --codex, else $AGENTSPRINT_TEST_AGENTS_BIN/codex, else .ci/agents/bin/codex,
else `codex` on PATH) fixes the off-by-one with its own `exec_command` tool and answers, as the
scripted model server tells it through the metering proxy; then the gates, QA and merge. The round's
time is DBOS's record of the `run_external_coder` step: the private home and config written, Codex
started in the sandbox, run to its exit, its transcript read, the token revoked. Offline: the model
is the scripted server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIX = "sed -i 's/    start = page \\* per_page/    start = (page - 1) * per_page/' shop/pagination.py"


def find_codex(given: str | None) -> str:
    """The Codex executable to run."""
    bundled = Path(os.environ.get("AGENTSPRINT_TEST_AGENTS_BIN") or ROOT / ".ci" / "agents" / "bin") / "codex"
    found = given or (str(bundled) if bundled.exists() else shutil.which("codex"))
    if not found:
        sys.exit("codex not found: pass --codex PATH or run .ci/install-agents.sh")
    return found


def project(root: Path, base_url: str, codex: str) -> Any:
    """The sample shop with AS-1 and Codex as the coder."""
    from agentsprint.config import load_settings
    from agentsprint.domain import Budget, parse_gate
    from agentsprint.runner.demo import CONFIG, create_sample, demo_items

    config = CONFIG.replace('model = "openai/demo-coder"',
                            f'model = "openai/demo-coder"\nbackend = "codex"\ncommand = "{codex}"', 1)
    [item] = [i for i in demo_items() if i.id == "AS-1"]
    item = item.model_copy(update={"dod": [parse_gate({"tests": "python -m unittest -q tests.test_pagination"})],
                                   "budget": Budget(tokens=60000, usd=0.5, time="5m", rounds=3)})
    create_sample(root, base_url, [item], config=config)
    return load_settings(root, environ={})


def run_once(folder: Path, codex: str) -> dict[str, Any]:
    """One item through Codex: the round's step time, Codex's model calls, the whole run's wall time."""
    from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
    from agentsprint.runner.demo_script import RESPONDERS
    from agentsprint.runner.service import run_items

    with ScriptedServer() as server:
        for model, responder in RESPONDERS.items():
            server.add(model, responder=responder)
        server.add("demo-coder", ScriptedReply(tool_calls=[tool_call("exec_command", cmd=FIX, tty=False)]),
                   ScriptedReply(content="Pages now start at 1."))
        settings = project(folder, server.base_url, codex)
        started = time.perf_counter()
        status = run_items(settings, ["AS-1"]).results["AS-1"]
        wall = time.perf_counter() - started
        calls = len(server.requests["demo-coder"])
    return {"status": status, "round_s": round(step_seconds(folder, "run_external_coder"), 3),
            "model_calls": calls, "whole_run_s": round(wall, 2)}


def step_seconds(root: Path, name: str) -> float:
    """How long DBOS recorded the step called `name` as running."""
    with sqlite3.connect(root / ".agentsprint" / "dbos.sqlite") as conn:
        rows = conn.execute("SELECT started_at_epoch_ms, completed_at_epoch_ms FROM operation_outputs "
                            "WHERE function_name LIKE ?", (f"%{name}",)).fetchall()
    [(started, completed)] = rows
    return float(completed - started) / 1000


def version(codex: str) -> str:
    """What `codex --version` prints."""
    import subprocess

    return subprocess.run([codex, "--version"], capture_output=True, text=True, check=False).stdout.strip()


SMALL_BOUND_S = 120.0
"""A real agent round (setup to exit, 2 model calls to a local server) takes seconds: two minutes is a hang."""


def main() -> int:
    """Run, print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--codex", help="the Codex executable")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--small", action="store_true",
                        help=f"CI: one run, print only, and fail if the round took {SMALL_BOUND_S:g} s or more")
    args = parser.parse_args()
    if args.small:
        args.runs, args.no_write = 1, True
    from agentsprint.config import offline_env

    offline_env()
    codex = find_codex(args.codex)
    with tempfile.TemporaryDirectory(prefix="agentsprint-bench-codex-") as tmp:
        runs = [run_once(Path(tmp) / f"run-{n}", codex) for n in range(args.runs)]
    rounds = [run["round_s"] for run in runs]
    result = {"runs": runs, "round_s_median": statistics.median(rounds), "round_s_max": max(rounds),
              "model_calls": sorted({run["model_calls"] for run in runs}), "codex": version(codex),
              "python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    if not args.no_write:
        (ROOT / "benchmarks" / "results" / "agent_codex.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.small and max(rounds) >= SMALL_BOUND_S:
        print(f"a Codex round took {max(rounds):.1f} s (bound {SMALL_BOUND_S:g} s)", file=sys.stderr)
        return 1
    return 0 if all(run["status"] == "done" for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
