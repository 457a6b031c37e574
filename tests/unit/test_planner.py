"""The planner over hand-built items and histories: capacities, dependencies, order, skipping, overrides."""

from __future__ import annotations

from typing import Any

import pytest

from agentsprint.domain import Budget, Capacity, DoneRecord, Item, Priority, Sprint, Status, parse_gate
from agentsprint.planning.forecast import forecast_all
from agentsprint.planning.planner import Plan, PlanError, PlanInput, plan_sprint


def _item(n: int, priority: str = "medium", value: int = 1, usd: float = 1.0, tokens: int = 1000,
          depends_on: list[str] | None = None, review: bool = False, scope: list[str] | None = None,
          status: Status = Status.TODO, epic: str | None = None) -> Item:
    return Item(id=f"AS-{n}", title=f"item {n}", priority=Priority(priority), value=value, status=status,
                depends_on=depends_on or [], budget=Budget(tokens=tokens, usd=usd), epic=epic,
                dod=[parse_gate({"review": "human"})] if review else [], scope=scope or [f"src/{n}/**"])



def plan(items: list[Item], capacity: Capacity | None = None, history: list[DoneRecord] | None = None,
         auto: bool = True, sprint_items: list[str] | None = None, add: tuple[str, ...] | list[str] = (),
         remove: tuple[str, ...] | list[str] = (), **given: Any) -> Plan:
    """The plan of sprint S1 over `items`, forecasts from `history`."""
    by_id = {i.id: i for i in items}
    sprint = Sprint(name="S1", capacity=capacity or Capacity(), items=sprint_items or [])
    return plan_sprint(PlanInput(sprint, by_id, forecast_all(items, history or []), **given),
                       auto=auto, add=add, remove=remove)


def test_priority_first_then_value_per_forecast_usd() -> None:
    items = [_item(1, "low", value=100), _item(2, "high", value=1, usd=1.0), _item(3, "high", value=8, usd=2.0),
             _item(4, "critical", value=0)]
    assert plan(items).items == ["AS-4", "AS-3", "AS-2", "AS-1"]


def test_token_capacity_skips_an_item_that_does_not_fit_and_goes_on() -> None:
    items = [_item(1, "high", tokens=600), _item(2, "medium", tokens=600), _item(3, "low", tokens=300)]
    result = plan(items, Capacity(tokens=1000))
    assert result.items == ["AS-1", "AS-3"], "AS-2 is skipped, AS-3 still fits"
    assert result.left_out == {"AS-2": "token capacity: would be 1,200 tokens of 1,000 tokens"}
    assert result.gauges()["tokens"] == {"planned": 900, "capacity": 1000}


def test_usd_capacity() -> None:
    result = plan([_item(1, "high", usd=3.0), _item(2, usd=2.5), _item(3, "low", usd=1.0)], Capacity(usd=4))
    assert result.items == ["AS-1", "AS-3"]
    assert result.left_out["AS-2"] == "USD capacity: would be $5.50 of $4.00"


def test_review_capacity_counts_forecast_changed_lines_of_human_reviewed_items_only() -> None:
    history = [DoneRecord(f"AS-{n}", "feature", 100, 0.1, 1, 400, 60.0) for n in range(90, 93)]
    items = [_item(1, "high", review=True), _item(2, review=True), _item(3, "low")]
    result = plan(items, Capacity(review_hours=1.5), history, lines_per_hour=400)
    assert result.items == ["AS-1", "AS-3"], "AS-3 needs no human review: no review hours"
    assert result.left_out["AS-2"] == "review capacity: would be 2.0 h of 1.5 h"
    assert result.gauges()["review_hours"] == {"planned": 1.0, "capacity": 1.5}
    slower = plan(items, Capacity(review_hours=1.5), history, lines_per_hour=200)
    assert slower.items == ["AS-3"]


def test_review_load_without_history_is_flagged() -> None:
    result = plan([_item(1, review=True)], Capacity(review_hours=1))
    assert result.items == ["AS-1"]
    assert any("review load unknown for AS-1" in w for w in result.warnings)


def test_dependencies_done_or_taken_earlier_allow_an_item() -> None:
    items = [_item(1, "high", depends_on=["AS-2"]), _item(2, "low"), _item(3, depends_on=["AS-4"]),
             _item(4, status=Status.DONE)]
    result = plan(items, done=frozenset({"AS-4"}))
    assert result.items == ["AS-3", "AS-2", "AS-1"], "AS-1 waits for AS-2, then is taken on the next pass"
    assert result.left_out == {}


def test_missing_dropped_unplanned_and_cyclic_dependencies_are_reasons() -> None:
    items = [_item(1, depends_on=["AS-9"]), _item(2, depends_on=["AS-3"]), _item(3, status=Status.DROPPED),
             _item(4, depends_on=["AS-5"]), _item(5, depends_on=["AS-4"]), _item(6, depends_on=["AS-7"]),
             _item(7, usd=50.0)]
    result = plan(items, Capacity(usd=10))
    assert result.items == []
    assert result.left_out == {
        "AS-1": "missing dependency AS-9 (no such item)",
        "AS-2": "dependency AS-3 is dropped",
        "AS-4": "dependency cycle through AS-4",
        "AS-5": "dependency cycle through AS-5",
        "AS-6": "waits for AS-7 (not done, not in this sprint)",
        "AS-7": "USD capacity: would be $50.00 of $10.00",
    }


def test_unavailable_and_finished_items_are_not_planned() -> None:
    items = [_item(1), _item(2, status=Status.DONE), _item(3)]
    result = plan(items, unavailable={"AS-3": "planned in sprint S0"}, done=frozenset({"AS-1"}))
    assert result.items == [] and result.left_out == {"AS-3": "planned in sprint S0"}


def test_hand_adds_may_go_over_capacity_with_the_numbers_and_removes_are_not_refilled() -> None:
    items = [_item(1, "high", usd=3.0), _item(2, usd=3.0), _item(3, "low", usd=1.0)]
    result = plan(items, Capacity(usd=4), sprint_items=["AS-1"], add=["AS-2"], remove=["AS-3"])
    assert result.items == ["AS-1", "AS-2"]
    assert result.warnings == ["AS-2 added by hand over capacity: USD capacity: would be $6.00 of $4.00"]
    assert plan(items, Capacity(usd=4), sprint_items=["AS-1", "AS-3"], remove=["AS-1"], auto=False).items == ["AS-3"]
    with pytest.raises(PlanError, match="unknown item AS-8"):
        plan(items, add=["AS-8"])


def test_a_second_auto_plan_keeps_the_first() -> None:
    items = [_item(n, tokens=400) for n in range(1, 5)]
    first = plan(items, Capacity(tokens=1000))
    again = plan(items, Capacity(tokens=1000), sprint_items=first.items)
    assert again.items == first.items == ["AS-1", "AS-2"]


def test_overlapping_scopes_are_flagged_once_per_group() -> None:
    items = [_item(1, scope=["src/a/**"]), _item(2, scope=["src/a/x.py"]), _item(3, scope=["src/a/"]),
             _item(4, scope=["docs/**"]), _item(5, scope=["lib/**"]), _item(6, scope=["lib/b.py"])]
    assert plan(items).overlaps == [["AS-1", "AS-2", "AS-3"], ["AS-5", "AS-6"]]


def test_epic_budgets_are_shown_and_a_plan_over_one_warns() -> None:
    items = [_item(1, usd=3.0, epic="billing"), _item(2, usd=3.0, epic="billing"), _item(3, usd=1.0)]
    result = plan(items, epics={"billing": Budget(usd=5.0)}, epic_spent={"billing": (0, 1.0)})
    (billing,) = result.epics
    assert billing["items"] == ["AS-1", "AS-2"] and billing["forecast_total"]["usd"] == 7.0
    assert "epic billing: spent plus this plan's forecast is $7.00 of $5.00" in result.warnings[0]


def test_overlap_groups_in_one_pass_are_the_pairwise_groups() -> None:
    import random

    from agentsprint.backlog.scopes import overlap_groups, overlapping_groups, overlapping_pairs

    folders = ["src/", "src/a/", "src/a/b.py", "src/ab/", "docs/", "lib/*.py", "lib/x/", "", "tests/t_*.py"]
    rng = random.Random(7)
    for _ in range(300):
        items = [_item(n, scope=rng.sample(folders, rng.randint(1, 2)) if rng.random() < 0.9 else [])
                 for n in range(1, rng.randint(2, 12))]
        items = [i.model_copy(update={"scope": [s for s in i.scope if s]}) for i in items]
        pairwise = sorted(sorted(g) for g in overlap_groups(overlapping_pairs(items)) if len(g) > 1)
        assert sorted(sorted(g) for g in overlapping_groups(items)) == pairwise, [i.scope for i in items]


def test_ties_go_in_natural_id_order() -> None:
    assert plan([_item(10), _item(2), _item(1)]).items == ["AS-1", "AS-2", "AS-10"]
