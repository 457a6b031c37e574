"""Metering proxy benchmark: the proxy's own time per call, plain and streamed, excluding the upstream.

    python benchmarks/proxy.py            # 300 calls per protocol and mode
    python benchmarks/proxy.py --small    # 40 calls per protocol and mode, for CI

A client sends requests through the proxy to the scripted model server (zero latency) over loopback
HTTP, on a temporary SQLite database; results go to benchmarks/results/proxy.json (not with --small
unless --out is given).

Overhead method: the proxy records, per request, its wall time from reading the request to the last
byte written back, minus the time it spent waiting on the upstream (connecting and sending, waiting for
the reply's head, reading its body, waiting for each streamed line). What is left is the proxy's own
work: parsing, the input estimate, the reservation and settlement transactions, the model_calls row and
audit event, relaying. Bound (exit 1, both sizes): the median per protocol and mode under TARGET_MS.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentsprint.config import Settings, offline_env  # noqa: E402

offline_env()

import httpx  # noqa: E402

from agentsprint.llm.context import CallContext  # noqa: E402
from agentsprint.llm.gateway import Gateway  # noqa: E402
from agentsprint.llm.proxy import MeteringProxy  # noqa: E402
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer  # noqa: E402
from agentsprint.store import Store  # noqa: E402

TARGET_MS = 5.0
CTX = CallContext(role="coder", item_id="B-1", run_id="bench", round=1, scopes=["item:B-1", "sprint:bench"])
PROMPT = "Read this code and fix the bug. " + "def f(x):\n    return x + 1\n" * 60
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai-chat": ("chat/completions", {"model": "m", "max_tokens": 200,
                                          "messages": [{"role": "system", "content": "You code."},
                                                       {"role": "user", "content": PROMPT}]}),
    "openai-responses": ("responses", {"model": "m", "max_output_tokens": 200, "instructions": "You code.",
                                       "input": [{"role": "user", "content": PROMPT}]}),
    "anthropic-messages": ("messages", {"model": "m", "max_tokens": 200, "system": "You code.",
                                        "messages": [{"role": "user", "content": PROMPT}]}),
    "gemini": ("models/m:{method}", {"systemInstruction": {"parts": [{"text": "You code."}]},
                                     "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                                     "generationConfig": {"maxOutputTokens": 200}}),
}
"""Per protocol: the route (Gemini's names its method, streamed or not) and the request body."""


def settings_for(server: ScriptedServer) -> Settings:
    model = {"model": "openai/bench-model", "api_base": server.base_url, "max_tokens": 1024,
             "input_cost_per_token": 4e-7, "output_cost_per_token": 1.6e-6}
    return Settings.model_validate({"models": {"coder": model}, "run": {"token_safety_factor": 1.0}})


def measure(proxy: MeteringProxy, client: httpx.Client, token: str, protocol: str, stream: bool,
            calls: int) -> dict[str, Any]:
    route, body = REQUESTS[protocol]
    route = route.format(method="streamGenerateContent?alt=sse" if stream else "generateContent")
    headers = {"Authorization": f"Bearer {token}", "x-api-key": token}
    payload = body if protocol == "gemini" else {**body, "stream": stream}
    proxy.handling_seconds.clear()
    for _ in range(calls):
        response = client.post(f"{proxy.base_url}/{route}", json=payload, headers=headers)
        response.read()
        assert response.status_code == 200, response.text
    samples = sorted(seconds * 1000 for seconds in proxy.handling_seconds)
    return {"protocol": protocol, "stream": stream, "calls": calls,
            "median_ms": round(statistics.median(samples), 3),
            "p90_ms": round(samples[int(len(samples) * 0.9) - 1], 3)}


def run(calls: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="agentsprint-bench-proxy-") as tmp, ScriptedServer() as server:
        server.add("bench-model", ScriptedReply(content="Fixed: return x + 2. " * 10), repeat=True)
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        gateway = Gateway(settings_for(server), store)
        gateway.ensure_budget("item:B-1", tokens=10**12, usd=10**6)
        with MeteringProxy(gateway) as proxy, httpx.Client(timeout=30) as client:
            token = proxy.grant(CTX).token
            measure(proxy, client, token, "openai-chat", False, 5)  # warm-up: imports, price lookup, caches
            rows = [measure(proxy, client, token, protocol, stream, calls)
                    for protocol in REQUESTS for stream in (False, True)]
        store.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="40 calls per protocol and mode (CI)")
    parser.add_argument("--out", type=Path, help="write results here (default: results/proxy.json, not with --small)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = run(40 if args.small else 300)
    for row in rows:
        mode = "streamed" if row["stream"] else "plain"
        print(f"{row['protocol']:>19} {mode:>8}: proxy overhead median {row['median_ms']:.2f} ms, "
              f"p90 {row['p90_ms']:.2f} ms (target median < {TARGET_MS:g} ms)")
    missed = [row for row in rows if row["median_ms"] >= TARGET_MS]
    out = args.out or (None if args.small else ROOT / "benchmarks" / "results" / "proxy.json")
    if out is not None:
        machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                   "load_average_1m_at_start": round(load, 2)}
        result = {"command": "python benchmarks/proxy.py", "machine": machine, "target_median_ms": TARGET_MS,
                  "results": rows, "target_met": not missed, "recorded_at": time.strftime("%Y-%m-%d")}
        out.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
