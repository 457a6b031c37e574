"""The retro's figures on hand-built histories with known answers, and every null case."""

from __future__ import annotations

from typing import Any

import pytest

from agentsprint.retro import metrics
from agentsprint.retro.findings import findings
from agentsprint.retro.metrics import Params, compute
from agentsprint.retro.report import build
from agentsprint.retro.scope import Scope, SprintInfo, in_scope
from agentsprint.store.history import (
    EscalationRecord,
    HandoffRecord,
    History,
    ItemRecord,
    ReviewRecord,
    RoundVerdict,
    SpentCall,
    TransitionRecord,
)

H = 3600.0


def item(item_id: str, status: str, value: int = 0, round_: int = 1, usd: float | None = 10.0,
         tokens: int | None = 100_000, limit_usd: float | None = None) -> ItemRecord:
    return ItemRecord(item_id, f"title {item_id}", "bug", value, status, None, round_,
                      {"tokens": tokens, "usd": usd, "rounds": 3}, None, limit_usd)


def call(item_id: str, role: str, usd: float, inp: int = 100, out: int = 10, *, model: str = "m",
         cached: int = 0, kind: str = "measured", shadow: bool = False, errors: int = 0, retries: int = 0,
         timeouts: int = 0, at: float = 0.0) -> SpentCall:
    return SpentCall(item_id, role, model, inp, cached, out, usd, kind, shadow, 1, errors, retries, timeouts, at)


def moves(item_id: str, *steps: tuple[str, float]) -> list[TransitionRecord]:
    found, before = [], None
    for status, at in steps:
        found.append(TransitionRecord(item_id, before, status, at, "runner"))
        before = status
    return found


def sprint_history() -> History:
    """A: done first pass after review; B: escalated (budget); C: rejected by a human then approved."""
    return History(
        items=[item("A", "done", value=8), item("B", "escalated", value=5), item("C", "done", value=3, round_=2)],
        calls=[call("A", "supervisor", 0.5, 1000, 100), call("A", "coder", 1.0, 2000, 200, cached=500),
               call("A", "qa", 0.5, 500, 50), call("B", "coder", 1.2, 3000, 300, model="big"),
               call("C", "coder", 0.8, 800, 80), call("C", "shadowed", 9.0, shadow=True),
               call("C", "qa", 0.0, 0, 0, errors=1, retries=2, timeouts=1)],
        transitions=[*moves("A", ("running", 0), ("awaiting_review", H), ("done", 3 * H)),
                     *moves("B", ("running", 0), ("escalated", H)),
                     *moves("C", ("running", 0), ("awaiting_review", H), ("planned", 2 * H), ("running", 2 * H),
                            ("awaiting_review", 4 * H), ("done", 5 * H))],
        reviews=[ReviewRecord("A", "approve", H, 3 * H, 10), ReviewRecord("C", "reject", H, 2 * H, 4),
                 ReviewRecord("C", "approve", 4 * H, 5 * H, 6)],
        escalations=[EscalationRecord("B", "budget", H, 1.5 * H, "retried")],
        handoffs=[HandoffRecord("A", "coder", "m", True, 0), HandoffRecord("A", "coder", "m", False, 0),
                  HandoffRecord("C", "qa", "m", True, 0), HandoffRecord("C", "supervisor", "m", True, 0)],
        rounds=[RoundVerdict("A", 1, "approve", 10, H), RoundVerdict("B", 1, "reject", 5, H),
                RoundVerdict("C", 1, "reject", 4, H), RoundVerdict("C", 2, "approve", 6, 4 * H)],
        policy_blocks=[("B", 10.0)],
    )


def figures(history: History, **params: object) -> dict[str, Any]:
    return compute(history, Params(**{"period_start": 0.0, "period_end": 2 * 86400.0, **params}))  # type: ignore[arg-type]


def test_outcome_counts_first_pass_and_rounds() -> None:
    r = figures(sprint_history())
    assert (r["items_planned"], r["items_done"], r["items_escalated"], r["items_awaiting_review"]) == (3, 2, 1, 0)
    assert r["escalations_by_reason"]["budget"] == 1 and sum(r["escalations_by_reason"].values()) == 1
    assert r["first_pass_rate"] == 0.5, "A passed QA first time, C did not"
    assert r["rounds_per_done_item"] == {"mean": 1.5, "max": 2}


def test_token_roi_totals_splits_and_shadow_apart() -> None:
    r = figures(sprint_history())
    assert r["usd_total"] == 4.0 and r["tokens_total"] == 8030, "shadow spend is never in the totals"
    assert r["shadow"] == {"calls": 1, "tokens_total": 110, "usd_total": 9.0, "items": ["C"]}
    assert r["by_role"]["supervisor"] == {"tokens": 1100, "usd": 0.5, "calls": 1}
    assert r["by_role"]["coder"]["usd"] == 3.0 and r["by_model"]["big"]["usd"] == 1.2
    assert r["tokens"] == {"input": 7300, "cached_input": 500, "output": 730}
    assert r["cost_per_done_item"] == {"tokens": 4015.0, "usd": 2.0}, "ALL spend / done items"
    assert r["wasted_spend"] == {"tokens": 3300, "usd": 1.2}
    assert r["value_delivered"] == 11
    assert r["roi_value_per_usd"] == pytest.approx(11 / 4.0)
    assert r["roi_value_per_mtok"] == pytest.approx(11 / (8030 / 1e6))
    assert r["supervisor_worker_ratio"]["usd"] == pytest.approx(0.5 / 3.5)
    assert r["cost_kind_split"] == {"measured": 4.0, "imputed": 0.0, "estimated": 0.0}


def test_budget_utilization_and_overruns_use_the_effective_limit() -> None:
    history = sprint_history()
    history.items[1:2] = [item("B", "escalated", usd=1.0, tokens=None, limit_usd=1.1)]
    r = figures(history)
    assert r["budget_utilization"]["B"]["usd"] == pytest.approx(1.2 / 1.1), "the top-up limit counts"
    assert r["budget_utilization"]["B"]["tokens"] is None, "no token budget: null, not 0"
    assert r["budget_overruns"] == [{"item": "B", "kind": "usd", "over": pytest.approx(1.2 / 1.1 - 1, abs=1e-6)}]
    assert any("1 budget overrun: B usd" in text for text in findings(r))


def test_handoffs_review_and_reliability() -> None:
    r = figures(sprint_history(), review_capacity_hours=6.0)
    assert r["handoffs_total"] == 4 and r["handoffs_malformed"]["total"] == 1
    assert r["handoffs_malformed"]["by_role"] == {"coder": 1} and r["handoff_validity"] == 0.75
    assert r["review_wait"] == {"median": 1 * H, "p90": 2 * H, "max": 2 * H}
    assert r["review_throughput"] == 1.5 and r["agent_throughput"] == 1.5 and r["review_bound"] is False
    assert r["review_rejections"] == pytest.approx(1 / 3)
    assert [p["count"] for p in r["review_queue"]] == [1, 2, 1, 0, 1, 0]
    assert r["unreviewed_at_end"] == 0 and r["review_load"]["capacity_hours"] == 6.0
    assert (r["provider_errors"], r["retries"], r["timeouts"], r["policy_blocks"]) == (1, 2, 1, 1)
    assert r["escalation_mttr"] == 0.5 * H
    assert r["wall_time_per_done_item"] == {"median": 4 * H, "p90": 5 * H}


def test_review_load_counts_the_approved_diff_of_items_waiting() -> None:
    history = History(items=[item("A", "awaiting_review")], rounds=[RoundVerdict("A", 1, "reject", 50, 0),
                                                                     RoundVerdict("A", 2, "approve", 800, 1)])
    load = figures(history, lines_per_hour=400.0, review_capacity_hours=1.0)["review_load"]
    assert load == {"changed_lines": 800, "hours": 2.0, "capacity_hours": 1.0}


def test_review_bound_finding_names_the_load_against_capacity() -> None:
    history = History(items=[item("A", "awaiting_review"), item("B", "awaiting_review")],
                      transitions=[*moves("A", ("running", 0), ("awaiting_review", 10)),
                                   *moves("B", ("running", 0), ("awaiting_review", 20))],
                      rounds=[RoundVerdict("A", 1, "approve", 4000, 10)])
    r = figures(history, review_capacity_hours=6.0)
    assert r["review_bound"] is True
    assert "review-bound: agents brought 2 items to review, humans decided 0; 10.0 h of review load vs 6 h " \
           "capacity" in findings(r)


def test_an_empty_history_gives_null_never_zero_for_what_cannot_be_computed() -> None:
    r = compute(History(), Params())
    for key in ("first_pass_rate", "handoff_validity", "review_rejections", "escalation_mttr", "roi_value_per_usd",
                "roi_value_per_mtok", "review_throughput", "agent_throughput", "review_bound", "forecast_error"):
        assert r[key] is None, key
    assert r["rounds_per_done_item"] == {"mean": None, "max": None}
    assert r["cost_per_done_item"] == {"tokens": None, "usd": None}
    assert r["supervisor_worker_ratio"] == {"tokens": None, "usd": None}
    assert r["review_wait"] == {"median": None, "p90": None, "max": None}
    assert r["wall_time_per_done_item"] == {"median": None, "p90": None}
    assert r["tokens_total"] == 0 and r["usd_total"] == 0.0, "no calls: spend is known to be nothing"
    assert findings(r) == ["no model calls in this scope"]


def test_no_done_items_makes_per_done_figures_null_but_keeps_waste() -> None:
    history = History(items=[item("B", "escalated", value=5)], calls=[call("B", "coder", 1.0)])
    r = figures(history)
    assert r["cost_per_done_item"] == {"tokens": None, "usd": None}
    assert r["roi_value_per_usd"] is None and r["first_pass_rate"] is None
    assert r["wasted_spend"] == {"tokens": 110, "usd": 1.0}
    assert r["supervisor_worker_ratio"] == {"tokens": 0.0, "usd": 0.0}


def test_only_supervisor_spend_has_no_ratio() -> None:
    r = figures(History(items=[item("A", "running")], calls=[call("A", "supervisor", 1.0)]))
    assert r["supervisor_worker_ratio"] == {"tokens": None, "usd": None}, "division by zero is null"


def test_zero_length_period_has_no_rates() -> None:
    r = compute(sprint_history(), Params(period_start=5.0, period_end=5.0))
    assert r["review_throughput"] is None and r["agent_throughput"] is None and r["review_bound"] is None


def test_estimated_spend_is_split_and_said() -> None:
    history = History(items=[item("A", "done")], calls=[call("A", "coder", 1.0), call("A", "coder", 0.25,
                                                                                      kind="estimated")])
    r = figures(history)
    assert r["cost_kind_split"] == {"measured": 1.0, "imputed": 0.0, "estimated": 0.25}
    assert "not all spend is provider-measured: $0.25 estimated of $1.25" in findings(r)


def test_forecast_error_only_where_planning_made_a_forecast() -> None:
    history = History(items=[item("A", "done"), item("B", "done")], calls=[call("A", "coder", 1.5)])
    assert figures(history)["forecast_error"] is None
    report = figures(history, forecasts_usd={"A": 1.0})
    assert report["forecast_error"] == {"A": 0.5}
    assert "forecasts are low: done items spent a median +50% over their forecast" in findings(report)


def test_percentiles_are_nearest_rank() -> None:
    assert metrics.percentile([], 0.9) is None
    assert metrics.percentile([5.0], 0.9) == 5.0
    assert metrics.percentile(list(range(1, 11)), 0.9) == 9


def test_scope_keeps_its_items_and_what_happened_since() -> None:
    history = sprint_history()
    only_a = in_scope(history, Scope("items", frozenset({"A"})))
    assert {i.item_id for i in only_a.items} == {"A"} and {c.item_id for c in only_a.calls} == {"A"}
    later = in_scope(history, Scope("since", since=3 * H))
    assert {i.item_id for i in later.items} == {"A", "C"}, "items that changed since then"
    assert [r.decided_at for r in later.reviews] == [3 * H, 5 * H]


def test_build_states_scope_and_uses_the_sprint_capacity_and_dates() -> None:
    sprint = SprintInfo(name="S1", items=["A", "B", "C", "D"], start=0.0, end=86400.0, review_hours=6.0)
    report = build(sprint_history(), Scope("sprint", frozenset(sprint.items), sprint=sprint), now=10 * 86400.0)
    assert report["schema_version"] == 1 and report["scope"]["sprint"]["name"] == "S1"
    assert report["items_planned"] == 4, "a sprint item that never ran is still planned"
    assert report["review_throughput"] == 3.0, "per day over the sprint's own dates"
    assert report["review_load"]["capacity_hours"] == 6.0
