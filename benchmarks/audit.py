"""What the audit chain costs: `audit verify` over a big table, and the append on every model call.

    python benchmarks/audit.py          # 1,000,000 events; 3,000 settlements; writes results/audit.json
    python benchmarks/audit.py --small  # CI: 100,000 events, 1,000 settlements; results not written

The table is filled with model-call events of the size the gateway writes (about 330 bytes of data),
chained as append_event chains them, then verified by the code `audit verify` runs. The append is
measured as it happens: a model call's settlement is one transaction; the figure is the median of
that transaction with the event appended minus the median without it. Bounds: verify at most
VERIFY_US_PER_EVENT of CPU time per event (10 s per million; CPU time, as the machine running it may be
shared: wall time is reported beside it) and the append under APPEND_MS; exit 1 when missed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from agentsprint.audit.chain import fast_hash
from agentsprint.audit.verify import verify
from agentsprint.store import Store
from agentsprint.store.audit_log import AuditEvent
from agentsprint.store.events import GENESIS, append_event, canonical

ROOT = Path(__file__).resolve().parent.parent
VERIFY_US_PER_EVENT = 10.0
APPEND_MS = 0.5
SETTLE = text("UPDATE budgets SET spent_tokens = spent_tokens + 1, updated_at = :now WHERE scope = 'item:AS-1'")


def call_data(n: int) -> dict[str, object]:
    return {"item_id": f"AS-{n % 50}", "run_id": "run-20261129-120000-abcdef", "round": 1 + n % 3,
            "role": "coder", "model": "openai/gpt-4.1-mini", "retries": 0, "outcome": "ok",
            "input_tokens": 1200 + n % 500, "output_tokens": 80 + n % 40, "cached_input_tokens": 0,
            "usd": 0.000612, "latency_ms": 812.5, "granted_max_tokens": 4096, "overshoot_tokens": 0,
            "overshoot_usd": 0.0, "finish_reason": "tool_calls", "call_id": n}


def fill(db: Path, count: int) -> None:
    """`count` chained model-call events written straight into the events table."""
    conn = sqlite3.connect(db)
    prev, batch, started = GENESIS, [], 1_764_400_000.0
    for n in range(1, count + 1):
        event = AuditEvent(n, round(started + n * 0.25, 6), "model.call", f"AS-{n % 50}", "run-x",
                           "agent:coder", canonical(call_data(n)), prev, "")
        digest = fast_hash(prev, event)
        batch.append((*event[:8], digest))
        prev = digest
        if len(batch) == 50_000:
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
    conn.commit()
    conn.close()


def measure_verify(folder: Path, count: int) -> dict[str, float]:
    db = folder / "verify.db"
    Store(f"sqlite:///{db}").close()  # the real schema
    fill(db, count)
    store = Store(f"sqlite:///{db}")
    started, cpu_started = time.perf_counter(), time.process_time()
    verdict = verify(store)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    store.close()
    assert verdict.broken is None and verdict.checked == count, verdict
    return {"events": count, "verify_wall_s": round(seconds, 2), "verify_cpu_s": round(cpu, 2),
            "verify_cpu_us_per_event": round(cpu / count * 1e6, 2)}


def _settle(store: Store, with_event: bool, n: int) -> float:
    started = time.perf_counter()
    with store.session() as session:
        session.connection().execute(SETTLE, {"now": time.time()})
        if with_event:
            append_event(session, "model.call", item_id="AS-1", run_id="run-x", actor="agent:coder", data=call_data(n))
    return (time.perf_counter() - started) * 1000


def measure_append(folder: Path, count: int) -> dict[str, float]:
    store = Store(f"sqlite:///{folder / 'append.db'}")
    with store.session() as session:
        session.connection().execute(text("INSERT INTO budgets (scope, spent_tokens, spent_usd, reserved_tokens, "
                                          "reserved_usd, updated_at) VALUES ('item:AS-1', 0, 0, 0, 0, 0)"))
    without, with_event = [], []
    for n in range(count):  # interleaved, so that load on the machine hits both alike
        without.append(_settle(store, False, n))
        with_event.append(_settle(store, True, n))
    store.close()
    base, full = statistics.median(without), statistics.median(with_event)
    return {"settlements": count, "settle_ms_median": round(base, 3), "settle_with_event_ms_median": round(full, 3),
            "append_adds_ms": round(full - base, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    small = parser.parse_args(argv).small
    with tempfile.TemporaryDirectory() as folder:
        figures: dict[str, object] = {**measure_verify(Path(folder), 100_000 if small else 1_000_000),
                                      **measure_append(Path(folder), 1000 if small else 3000)}
    figures.update(bound_verify_us_per_event=VERIFY_US_PER_EVENT, bound_append_ms=APPEND_MS)
    print(json.dumps(figures))
    if not small:
        figures.update(python=platform.python_version(), machine=platform.machine())
        (ROOT / "benchmarks" / "results" / "audit.json").write_text(json.dumps(figures, indent=2) + "\n")
    too_slow = float(figures["verify_cpu_us_per_event"]) > VERIFY_US_PER_EVENT  # type: ignore[arg-type]
    return 1 if too_slow or float(figures["append_adds_ms"]) > APPEND_MS else 0  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
