"""The retro's store queries on a real SQLite database written by the real ledger functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentsprint.store import Store
from agentsprint.store.history import History, _read_store, load_history, read_history
from agentsprint.store.ledger import (
    CallRecord,
    CallSettlement,
    record_anomaly,
    reserve_fitting,
    settle,
    settle_orphans,
)


def _call(store: Store, scopes: list[str], tokens: int, usd: float, estimate: int, at: float) -> int:
    call = CallRecord(item_id="AS-1", role="coder", model="m", estimated_input_tokens=estimate, started_at=at,
                      granted_max_tokens=tokens - estimate, scopes_json=json.dumps(scopes), reserved_tokens=tokens,
                      reserved_usd=usd)
    call_id = reserve_fitting(store, scopes, lambda _states: call)
    assert call_id is not None
    return call_id


def _settle(store: Store, call_id: int, **fields: Any) -> None:
    settlement = CallSettlement(**fields)
    spent = (settlement.input_tokens or 0) + (settlement.output_tokens or 0)
    settle(store, call_id, spent, settlement.usd or 0.0, settlement, {"item_id": "AS-1"})


def recorded(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = Store(url)
    ok = _call(store, ["item:AS-1"], 1000, 0.01, 800, 100.0)
    _settle(store, ok, outcome="ok", input_tokens=700, cached_input_tokens=100, output_tokens=50, usd=0.005)
    shadow = _call(store, ["shadow:run-1:item:AS-1"], 1000, 0.01, 800, 101.0)
    _settle(store, shadow, outcome="ok", input_tokens=600, output_tokens=40, usd=0.004)
    failed = _call(store, ["item:AS-1"], 1000, 0.01, 800, 102.0)
    _settle(store, failed, outcome="error", error="timeout: no answer in 3s", retries=2)
    _call(store, ["item:AS-1"], 2000, 0.02, 1500, 103.0)  # in flight when its process died
    assert settle_orphans(store, "AS-1") == 1
    no_usage = _call(store, ["item:AS-1"], 1000, 0.01, 800, 104.0)  # the gateway charges its reservation
    _settle(store, no_usage, outcome="ok", input_tokens=800, output_tokens=200, usd=0.01)
    odd = _call(store, ["item:AS-1"], 1000, 0.01, 800, 105.0)
    _settle(store, odd, outcome="ok", input_tokens=900, output_tokens=300, usd=0.012, usage_anomaly="too many")
    record_anomaly(store, {"item_id": "AS-1", "call_id": odd, "anomaly": "too many"})
    store.close()
    return url


def test_calls_are_charged_as_the_budget_was(tmp_path: Path) -> None:
    history = load_history(recorded(tmp_path))
    real = [c for c in history.calls if not c.shadow]
    measured = [c for c in real if c.cost_kind == "measured"]
    estimated = [c for c in real if c.cost_kind == "estimated"]
    assert sum(c.calls for c in measured) == 2 and sum(c.calls for c in estimated) == 3
    assert sum(c.input_tokens for c in measured) == 700 and sum(c.output_tokens for c in measured) == 50
    assert sum(c.cached_input_tokens for c in measured) == 100
    assert sum(c.usd for c in measured) == 0.005
    assert sum(c.errors for c in real) == 1 and sum(c.timeouts for c in real) == 1 and sum(c.retries for c in real) == 2
    orphan, no_usage, odd = estimated
    assert (orphan.input_tokens, orphan.output_tokens, orphan.usd) == (1500, 500, 0.02), \
        "an interrupted call is charged its reservation"
    assert (no_usage.tokens, no_usage.usd) == (1000, 0.01), "a reply without usage is charged its reservation"
    assert (odd.tokens, odd.usd) == (1200, 0.012), "a usage anomaly is charged as settled, and said estimated"
    shadows = [c for c in history.calls if c.shadow]
    assert [(c.tokens, c.usd) for c in shadows] == [(640, 0.004)]


def test_since_leaves_out_earlier_calls(tmp_path: Path) -> None:
    history = load_history(recorded(tmp_path), since=102.0)
    assert sum(c.calls for c in history.calls) == 4


def test_the_store_path_reads_the_same_history(tmp_path: Path) -> None:
    url = recorded(tmp_path)
    assert _read_store(url, read_history) == load_history(url), "the SQL is the same through SQLAlchemy"


def test_no_database_is_an_empty_history_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    assert load_history(f"sqlite:///{path}") == History()
    assert not path.exists()


def test_only_the_html_report_imports_matplotlib(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = recorded(tmp_path)
    script = ("import sys\nfrom agentsprint.retro.report import build\nfrom agentsprint.retro.scope import Scope\n"
              "from agentsprint.retro.service import render\nfrom agentsprint.store.history import load_history\n"
              f"report = build(load_history({url!r}), Scope('all'))\n"
              "for fmt in ('json', 'md', 'csv'):\n    render(report, fmt)\n"
              "print('matplotlib' in sys.modules, 'sqlalchemy' in sys.modules)\n"
              "render(report, 'html')\nprint('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "True"], "json, md and csv need neither matplotlib nor SQLAlchemy"


@pytest.mark.postgres
def test_the_history_queries_run_on_postgresql(tmp_path: Path) -> None:
    import uuid

    from conftest import postgres_url
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url().replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"agentsprint_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        sqlite = load_history(recorded(tmp_path))
        url = server.set(database=name).render_as_string(hide_password=False)
        store = Store(url)
        _copy_calls(store, recorded(tmp_path / "again"))
        store.close()
        assert load_history(url) == sqlite, "every query runs on PostgreSQL and sums the same"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _copy_calls(store: Store, sqlite_url: str) -> None:
    """The model calls and anomaly events of a SQLite database, into `store`."""
    import sqlite3

    from sqlalchemy import text

    source = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    source.row_factory = sqlite3.Row
    with store.session() as session:
        for table in ("model_calls", "events"):
            rows = [dict(r) for r in source.execute(f"SELECT * FROM {table}")]
            names = [k for k in rows[0] if k != "id"] + ["id"]
            statement = text(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})")
            session.connection().execute(statement, rows)
    source.close()
