"""The retro's renderers on a report where nothing can be computed, and the trend's."""

from __future__ import annotations

import csv
import io
import json

from agentsprint.retro.render_csv import COLUMNS
from agentsprint.retro.report import build
from agentsprint.retro.scope import Scope
from agentsprint.retro.service import render, render_trend
from agentsprint.store.history import History, ItemRecord

EMPTY = build(History(), Scope("all"), now=0.0)
ONE = build(History(items=[ItemRecord("AS-1", "t", "bug", 3, "todo", None, 0, {}, None, None)]), Scope("all"), now=0.0)


def test_json_keeps_nulls_and_every_metrics_key() -> None:
    data = json.loads(render(EMPTY, "json"))
    for key in ("items_planned", "escalations_by_reason", "first_pass_rate", "rounds_per_done_item", "tokens_total",
                "usd_total", "by_role", "by_model", "tokens", "cost_per_done_item", "wasted_spend", "value_delivered",
                "roi_value_per_usd", "roi_value_per_mtok", "supervisor_worker_ratio", "budget_utilization",
                "budget_overruns", "forecast_error", "cost_kind_split", "shadow", "handoffs_total",
                "handoffs_malformed", "handoff_validity", "review_queue", "review_wait", "review_throughput",
                "agent_throughput", "review_bound", "unreviewed_at_end", "review_load", "review_rejections",
                "provider_errors", "retries", "timeouts", "loop_guard_trips", "policy_blocks", "escalation_mttr",
                "wall_time_per_done_item", "schema_version", "scope", "findings"):
        assert key in data, key
    assert data["first_pass_rate"] is None and data["review_wait"]["p90"] is None


def test_markdown_says_n_a_for_what_cannot_be_computed() -> None:
    text = render(EMPTY, "md")
    assert "| first-pass rate | n/a |" in text and "- no model calls in this scope" in text


def test_csv_has_its_header_and_empty_cells_for_nulls() -> None:
    rows = list(csv.reader(io.StringIO(render(ONE, "csv"))))
    assert rows[0] == COLUMNS
    row = dict(zip(COLUMNS, rows[1], strict=True))
    assert row["id"] == "AS-1" and row["budget_usd"] == "" and row["review_wait"] == "" and row["tokens"] == "0"


def test_html_draws_every_chart_even_without_data_and_escapes_text() -> None:
    report = build(History(items=[ItemRecord("AS-1", "<script>x</script>", "bug", 3, "escalated", None, 0, {}, None,
                                             None)]), Scope("items", frozenset({"AS-1"})), now=0.0)
    report["findings"].append("<b>tag</b>")
    page = render(report, "html")
    assert page.startswith("<!doctype html>") and page.count("<svg") == 7 and "no data" in page
    assert "<b>tag</b>" not in page and "&lt;b&gt;tag&lt;/b&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "")


def test_trend_in_every_format() -> None:
    trend = {"schema_version": 1, "trend": [
        {"sprint": "S1", "cost_per_done_item_usd": 1.5, "first_pass_rate": 0.5, "handoff_validity": None,
         "review_wait_p90": 7200.0, "wasted_usd": 0.25}]}
    assert "| S1 | $1.50 | 50.0% | n/a | 2.0 h | $0.25 |" in render_trend(trend, "md")
    assert render_trend(trend, "csv").splitlines() == [
        "sprint,cost_per_done_item_usd,first_pass_rate,handoff_validity,review_wait_p90,wasted_usd",
        "S1,1.5,0.5,,7200.0,0.25"]
    assert "<td>S1</td>" in render_trend(trend, "html")
    assert json.loads(render_trend(trend, "json")) == trend
