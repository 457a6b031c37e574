"""Forecasts of what an item will cost, from the done items of its type (and labels, once there are enough).

Pure: the history comes in as `DoneRecord`s (`store.history.done_history`), nothing is read here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from agentsprint.domain import Budget, DoneRecord, Item

METRICS = ("tokens", "usd", "rounds", "changed_lines", "wall_seconds")
LABEL_MINIMUM = 3
"""Done items of the same type and labels needed before the forecast narrows to them."""
THIN = 3
"""A forecast from fewer done items than this is marked thin."""
MARGIN = 1.2
"""The suggested budget is the p90 times this."""


@dataclass(frozen=True)
class Spread:
    """The median and the 90th percentile of one figure."""

    p50: float
    p90: float


@dataclass(frozen=True)
class Forecast:
    """What an item is expected to cost: from history (`sample` done items) or, without any, its own budget."""

    basis: str  # "type+labels" | "type" | "budget"
    sample: int
    figures: dict[str, Spread | None] = field(default_factory=dict)

    @property
    def from_history(self) -> bool:
        return self.basis != "budget"

    @property
    def thin(self) -> bool:
        return self.from_history and self.sample < THIN

    def p50(self, metric: str) -> float | None:
        spread = self.figures.get(metric)
        return None if spread is None else spread.p50

    def to_json(self) -> dict[str, Any]:
        """The JSON form: basis, sample, and p50/p90 per figure (null when unknown)."""
        figures = {m: None if s is None else {"p50": _plain(m, s.p50), "p90": _plain(m, s.p90)}
                   for m, s in self.figures.items()}
        return {"basis": self.basis, "sample": self.sample, "thin": self.thin, **figures}


def _plain(metric: str, value: float) -> float | int:
    return round(value, 6) if metric in ("usd", "wall_seconds") else round(value)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: Iterable[float | None]) -> Spread | None:
    """p50 and p90 of the known values; None when there are none."""
    known = [float(v) for v in values if v is not None]
    return Spread(percentile(known, 50), percentile(known, 90)) if known else None


def matching(item: Item, history: Sequence[DoneRecord]) -> tuple[list[DoneRecord], str]:
    """The done items an item is forecast from, and how they were chosen."""
    same_type = [r for r in history if r.type == item.type.value and r.item_id != item.id]
    if item.labels:
        labelled = [r for r in same_type if set(item.labels) <= set(r.labels)]
        if len(labelled) >= LABEL_MINIMUM:
            return labelled, "type+labels"
    return same_type, "type"


def from_records(records: Sequence[DoneRecord], basis: str) -> Forecast:
    """The forecast made from `records`."""
    return Forecast(basis, len(records), {m: spread(getattr(r, m) for r in records) for m in METRICS})


@functools.lru_cache(maxsize=1024)
def from_budget(budget: Budget) -> Forecast:
    """No history: the item's own budget stands in for every figure it caps (one per distinct budget)."""
    values = {"tokens": budget.tokens, "usd": budget.usd, "rounds": budget.rounds,
              "changed_lines": None, "wall_seconds": budget.time_seconds}
    return Forecast("budget", 0, {m: None if v is None else Spread(float(v), float(v)) for m, v in values.items()})


def forecast_item(item: Item, history: Sequence[DoneRecord]) -> Forecast:
    """The item's forecast: from done items like it, else from its own budget."""
    records, basis = matching(item, history)
    return from_records(records, basis) if records else from_budget(item.budget)


def forecast_all(items: Iterable[Item], history: Sequence[DoneRecord]) -> dict[str, Forecast]:
    """Forecasts of many items: items of one type and labels share one forecast from history."""
    by_type: dict[str, list[DoneRecord]] = {}
    for record in history:
        by_type.setdefault(record.type, []).append(record)
    done_ids = {record.item_id for record in history}
    shared: dict[tuple[str, tuple[str, ...]], Forecast | None] = {}
    found = {}
    for item in items:
        if item.id in done_ids:  # its own record must not forecast it
            found[item.id] = forecast_item(item, by_type.get(item.type.value, []))
            continue
        key = (item.type.value, tuple(sorted(item.labels)))
        if key not in shared:
            forecast = forecast_item(item, by_type.get(item.type.value, []))
            shared[key] = forecast if forecast.from_history else None
        found[item.id] = shared[key] or from_budget(item.budget)
    return found


def with_labels(history: Sequence[DoneRecord], items: Mapping[str, Item]) -> list[DoneRecord]:
    """The history with each record's labels taken from its item file (the store does not keep them)."""
    return [replace(r, labels=tuple(items[r.item_id].labels)) if r.item_id in items else r for r in history]


def usd_p50s(forecasts: Mapping[str, Forecast]) -> dict[str, float]:
    """{item id: p50 USD} of the forecasts made from done items: one from the item's own budget forecasts nothing."""
    return {item_id: usd for item_id, forecast in forecasts.items()
            if forecast.from_history and (usd := forecast.p50("usd")) is not None}


def budget_risks(item: Item, forecast: Forecast) -> list[str]:
    """The budget kinds below the forecast's p50 ("likely to escalate on budget"); none without history."""
    if not forecast.from_history:
        return []
    limits = {"tokens": item.budget.tokens, "usd": item.budget.usd, "wall_seconds": item.budget.time_seconds}
    return [kind for kind, limit in limits.items()
            if limit is not None and (p50 := forecast.p50(kind)) is not None and limit < p50]


def suggested_budget(forecast: Forecast) -> dict[str, Any]:
    """p90 x 1.2 of tokens, USD and wall time (None where the forecast has no figure)."""
    tokens, usd, wall = (forecast.figures.get(m) for m in ("tokens", "usd", "wall_seconds"))
    return {"tokens": None if tokens is None else math.ceil(tokens.p90 * MARGIN),
            "usd": None if usd is None else math.ceil(usd.p90 * MARGIN * 100) / 100,
            "time": None if wall is None else f"{math.ceil(wall.p90 * MARGIN / 60)}m"}


def type_table(history: Sequence[DoneRecord], types: Iterable[str]) -> list[dict[str, Any]]:
    """One row per type: the forecast from all its done items and the suggested budget."""
    rows = []
    for type_ in types:
        forecast = from_records([r for r in history if r.type == type_], "type")
        rows.append({"type": type_, **forecast.to_json(),
                     "suggested_budget": suggested_budget(forecast) if forecast.sample else None})
    return rows
