"""Forecasts from the history of done items: none, little and enough history; labels once there are 3."""

from __future__ import annotations

from typing import Any

import pytest

from agentsprint.domain import Budget, DoneRecord, Item, ItemType
from agentsprint.planning.forecast import (
    budget_risks,
    forecast_all,
    forecast_item,
    percentile,
    suggested_budget,
    type_table,
    usd_p50s,
    with_labels,
)


def _item(item_id: str = "AS-99", type_: ItemType = ItemType.BUG, labels: list[str] | None = None,
          **budget: Any) -> Item:
    return Item(id=item_id, title="x", type=type_, labels=labels or [], budget=Budget(**budget))


def _done(n: int, type_: str = "bug", tokens: int = 1000, usd: float = 1.0, labels: tuple[str, ...] = ()) -> DoneRecord:
    return DoneRecord(f"AS-{n}", type_, tokens, usd, 1 + n % 2, 10 * n, 60.0 * n, labels)


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10], 90) == 10
    assert percentile([0, 100], 90) == pytest.approx(90)


def test_no_history_falls_back_to_the_items_own_budget_marked_as_such() -> None:
    forecast = forecast_item(_item(tokens=5000, usd=2.0, time="10m"), [_done(1, "feature")])
    assert forecast.basis == "budget" and forecast.sample == 0 and not forecast.from_history
    assert forecast.p50("tokens") == 5000 and forecast.p50("usd") == 2.0 and forecast.p50("wall_seconds") == 600
    assert forecast.p50("changed_lines") is None
    assert budget_risks(_item(tokens=1), forecast) == [], "a budget is never below itself"


def test_little_history_is_a_thin_forecast_with_its_sample_size() -> None:
    forecast = forecast_item(_item(), [_done(1, tokens=100), _done(2, tokens=300)])
    assert (forecast.basis, forecast.sample, forecast.thin) == ("type", 2, True)
    assert forecast.p50("tokens") == 200
    assert forecast.to_json()["tokens"] == {"p50": 200, "p90": 280}


def test_enough_history_of_the_same_type_gives_p50_and_p90() -> None:
    history = [_done(n, tokens=100 * n, usd=0.1 * n) for n in range(1, 11)] + [_done(50, "feature", tokens=10**9)]
    forecast = forecast_item(_item(), history)
    assert (forecast.basis, forecast.sample, forecast.thin) == ("type", 10, False)
    tokens = forecast.figures["tokens"]
    assert tokens is not None and tokens.p50 == 550 and tokens.p90 == pytest.approx(910)
    assert forecast.p50("changed_lines") == 55


def test_labels_narrow_the_history_only_once_three_items_share_them() -> None:
    history = [_done(1, tokens=10, labels=("api",)), _done(2, tokens=10, labels=("api",)),
               _done(3, tokens=1000), _done(4, tokens=1000)]
    assert forecast_item(_item(labels=["api"]), history).basis == "type"
    history.append(_done(5, tokens=10, labels=("api", "db")))
    narrowed = forecast_item(_item(labels=["api"]), history)
    assert (narrowed.basis, narrowed.sample, narrowed.p50("tokens")) == ("type+labels", 3, 10)


def test_labels_come_from_the_item_files() -> None:
    items = {"AS-1": _item("AS-1", labels=["api"])}
    assert with_labels([_done(1), _done(2)], items)[0].labels == ("api",)


def test_a_budget_below_the_p50_is_a_risk() -> None:
    history = [_done(n, tokens=1000, usd=1.0) for n in range(1, 4)]
    forecast = forecast_all([_item(tokens=500, usd=5.0)], history)["AS-99"]
    assert budget_risks(_item(tokens=500, usd=5.0), forecast) == ["tokens"]
    assert budget_risks(_item(tokens=5000, usd=5.0), forecast) == []


def test_the_suggested_budget_is_p90_times_1_2() -> None:
    history = [_done(n, tokens=1000, usd=1.0) for n in range(1, 4)]
    suggested = suggested_budget(forecast_item(_item(), history))
    assert suggested["tokens"] == 1200 and suggested["usd"] == 1.2
    rows = type_table(history, ["bug", "chore"])
    assert rows[0]["sample"] == 3 and rows[0]["suggested_budget"]["tokens"] == 1200
    assert rows[1]["sample"] == 0 and rows[1]["suggested_budget"] is None


def test_only_forecasts_from_history_give_the_retro_a_usd_figure() -> None:
    history = [_done(1, usd=0.5), _done(2, usd=1.5)]
    forecasts = forecast_all([_item("AS-9", usd=2.0), _item("AS-1"), _item("AS-8", ItemType.FEATURE, usd=3.0)], history)
    assert usd_p50s(forecasts) == {"AS-9": 1.0, "AS-1": 1.5}, "AS-8's forecast is its own budget: no forecast"
