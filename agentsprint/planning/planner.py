"""Sprint planning: which items fit a sprint's token, USD and review capacity, and why the others do not.

Pure: items, forecasts, live facts and the sprint come in; a `Plan` comes out. The order is priority,
then value per forecast USD; an item is taken only when its dependencies are done or already taken,
and one that would exceed a capacity is skipped, not a reason to stop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentsprint.backlog.ids import id_sort_key
from agentsprint.backlog.scopes import overlapping_groups
from agentsprint.domain import PRIORITY_RANK, Budget, Item, Sprint, Status
from agentsprint.money import usd_text, usd_value
from agentsprint.planning.forecast import Forecast, from_budget

KINDS = ("tokens", "usd", "review_hours")
DEFAULT_LINES_PER_HOUR = 400.0


class PlanError(ValueError):
    """A hand adjustment names an item that cannot be planned (unknown id)."""


@dataclass(frozen=True)
class Cost:
    """What one item is forecast to take of each capacity (p50), and whether its review load is unknown."""

    tokens: float = 0.0
    usd: float = 0.0
    review_hours: float = 0.0
    review_unknown: bool = False
    usd_known: bool = True

    def of(self, kind: str) -> float:
        return float(getattr(self, kind))


@dataclass(frozen=True)
class PlanInput:
    """Everything the planner looks at."""

    sprint: Sprint
    items: Mapping[str, Item]
    forecasts: Mapping[str, Forecast] = field(default_factory=dict)
    done: frozenset[str] = frozenset()
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """Items that cannot be planned and why (in another sprint, running, awaiting review...)."""
    lines_per_hour: float = DEFAULT_LINES_PER_HOUR
    epics: Mapping[str, Budget] = field(default_factory=dict)
    epic_spent: Mapping[str, tuple[int, float]] = field(default_factory=dict)


@dataclass
class Plan:
    """The planned items, each left-out item with why, the capacity gauges, warnings and overlaps."""

    items: list[str]
    costs: dict[str, Cost]
    left_out: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    overlaps: list[list[str]] = field(default_factory=list)
    epics: list[dict[str, Any]] = field(default_factory=list)
    capacity: dict[str, float | None] = field(default_factory=dict)
    load: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))

    def take(self, item_id: str) -> None:
        """Put the item into the plan and add its cost to the load."""
        self.items.append(item_id)
        for kind in KINDS:
            self.load[kind] += self.costs[item_id].of(kind)

    def planned(self, kind: str) -> float:
        """The forecast total of one capacity kind over the planned items."""
        return self.load[kind]

    def gauges(self) -> dict[str, dict[str, float | None]]:
        return {kind: {"planned": _round(kind, self.planned(kind)), "capacity": self.capacity.get(kind)}
                for kind in KINDS}


def _round(kind: str, value: float) -> float:
    return usd_value(value) if kind == "usd" else round(value, 2) if kind == "review_hours" else round(value)


def cost_of(item: Item, forecast: Forecast, lines_per_hour: float) -> Cost:
    """The item's p50 tokens and USD, and review hours of its p50 changed lines when a human reviews it."""
    lines = forecast.p50("changed_lines")
    hours = (lines or 0.0) / lines_per_hour if item.needs_human_review else 0.0
    usd = forecast.p50("usd")
    return Cost(forecast.p50("tokens") or 0.0, usd or 0.0, hours, item.needs_human_review and lines is None,
                usd is not None)


def order_key(item: Item, cost: Cost) -> tuple[int, float, tuple[str, int]]:
    """Priority first, then value per forecast USD (an item with no USD forecast last among its priority)."""
    per_usd = item.value / cost.usd if cost.usd > 0 else (float("inf") if cost.usd_known else -1.0)
    return PRIORITY_RANK[item.priority], -per_usd, id_sort_key(item.id)


def plan_sprint(given: PlanInput, *, auto: bool, add: Sequence[str] = (), remove: Sequence[str] = ()) -> Plan:
    """The sprint's new plan: its items minus `remove`, plus `add`, then (with `auto`) every item that fits."""
    for item_id in [*add, *remove]:
        if item_id not in given.items:
            raise PlanError(f"unknown item {item_id}: no valid backlog item has that id")
    costs = {i: cost_of(item, given.forecasts.get(i) or from_budget(item.budget), given.lines_per_hour)
             for i, item in given.items.items()}
    capacity = given.sprint.capacity.model_dump()
    plan = Plan([], costs, capacity=capacity)
    for item_id in dict.fromkeys(i for i in given.sprint.items if i not in remove and i in given.items):
        plan.take(item_id)
    for item_id in add:
        _add_by_hand(plan, given, item_id)
    if auto:
        _fill(plan, given, set(remove))
    _finish(plan, given)
    return plan


def _add_by_hand(plan: Plan, given: PlanInput, item_id: str) -> None:
    """Take the item whatever it costs; warn with the numbers when it goes over a capacity or waits."""
    if item_id in plan.items:
        return
    over = _over(plan, plan.costs[item_id])
    plan.take(item_id)
    if over:
        plan.warnings.append(f"{item_id} added by hand over capacity: {over}")
    waits = _blocked(given.items[item_id], given, set(plan.items))
    if waits:
        plan.warnings.append(f"{item_id} added by hand but {waits}")


def _fill(plan: Plan, given: PlanInput, removed: set[str]) -> None:
    """Take candidates in order until nothing more fits; items waiting on a dependency get another pass."""
    taken = set(plan.items)
    candidates = [item for i, item in given.items.items()
                  if i not in taken and i not in removed and _candidate(item, given, plan)]
    pending = sorted(candidates, key=lambda item: order_key(item, plan.costs[item.id]))
    while pending:
        waiting = [item for item in pending if not _try(plan, given, item, taken)]
        if len(waiting) == len(pending):
            return
        pending = waiting


def _candidate(item: Item, given: PlanInput, plan: Plan) -> bool:
    """Open items the planner may take; unavailable ones are left out with their reason."""
    if item.status is not Status.TODO or item.id in given.done:
        return False
    if item.id in given.unavailable:
        plan.left_out[item.id] = given.unavailable[item.id]
        return False
    return True


def _try(plan: Plan, given: PlanInput, item: Item, taken: set[str]) -> bool:
    """Take `item` if its dependencies allow and it fits; True when it is settled (taken or skipped for good)."""
    waits = _blocked(item, given, taken)
    if waits:
        plan.left_out[item.id] = waits
        return False
    over = _over(plan, plan.costs[item.id])
    if over:
        plan.left_out[item.id] = over
        return True
    plan.take(item.id)
    plan.left_out.pop(item.id, None)
    taken.add(item.id)
    return True


def _blocked(item: Item, given: PlanInput, taken: set[str]) -> str:
    """Why the item must wait ('' when every dependency is done or taken into this sprint)."""
    for dep in item.depends_on:
        if dep not in given.items:
            return f"missing dependency {dep} (no such item)"
        if dep in given.done or dep in taken:
            continue
        if given.items[dep].status is Status.DROPPED:
            return f"dependency {dep} is dropped"
        if _cyclic(item.id, given.items):
            return f"dependency cycle through {item.id}"
        return f"waits for {dep} (not done, not in this sprint)"
    return ""


def _cyclic(start: str, items: Mapping[str, Item]) -> bool:
    """Whether following depends_on from `start` comes back to it."""
    seen: set[str] = set()
    stack = list(items[start].depends_on)
    while stack:
        node = stack.pop()
        if node == start:
            return True
        if node in seen or node not in items:
            continue
        seen.add(node)
        stack.extend(items[node].depends_on)
    return False


def _over(plan: Plan, cost: Cost) -> str:
    """Which capacities taking `cost` would exceed, with the numbers ('' when it fits)."""
    parts = []
    for kind in KINDS:
        limit = plan.capacity.get(kind)
        after = plan.load[kind] + cost.of(kind) if limit is not None else 0.0
        if limit is not None and after > limit + 1e-9:
            parts.append(f"{_label(kind)} capacity: would be {_amount(kind, after)} of {_amount(kind, limit)}")
    return "; ".join(parts)


def _label(kind: str) -> str:
    return {"tokens": "token", "usd": "USD", "review_hours": "review"}[kind]


def _amount(kind: str, value: float) -> str:
    if kind == "usd":
        return usd_text(value)
    return f"{value:.1f} h" if kind == "review_hours" else f"{round(value):,} tokens"


def _finish(plan: Plan, given: PlanInput) -> None:
    """Overlap groups, epic budgets and the review load nobody can forecast yet."""
    planned = [given.items[i] for i in plan.items]
    plan.overlaps = overlapping_groups(planned)
    plan.epics = _epics(plan, given)
    plan.warnings += [e["warning"] for e in plan.epics if e["warning"]]
    unknown = [i for i in plan.items if plan.costs[i].review_unknown]
    if unknown:
        plan.warnings.append(f"review load unknown for {', '.join(unknown)}: no done items like them yet "
                             "(their review hours count as 0)")


def _epics(plan: Plan, given: PlanInput) -> list[dict[str, Any]]:
    """Per epic of the planned items: its budget, what it spent, what the plan forecasts, and a warning if over."""
    found = []
    for name in sorted({e for i in plan.items if (e := given.items[i].epic)}):
        members = [i for i in plan.items if given.items[i].epic == name]
        budget = given.epics.get(name, Budget())
        spent_tokens, spent_usd = given.epic_spent.get(name, (0, 0.0))
        tokens = spent_tokens + sum(plan.costs[i].tokens for i in members)
        usd = spent_usd + sum(plan.costs[i].usd for i in members)
        over = _epic_over(budget, tokens, usd)
        found.append({"epic": name, "items": members, "budget": {"tokens": budget.tokens, "usd": budget.usd},
                      "spent": {"tokens": spent_tokens, "usd": usd_value(spent_usd)},
                      "forecast_total": {"tokens": round(tokens), "usd": usd_value(usd)},
                      "warning": f"epic {name}: spent plus this plan's forecast is {' and '.join(over)} "
                                 "(its budget stops the items when reached)" if over else ""})
    return found


def _epic_over(budget: Budget, tokens: float, usd: float) -> list[str]:
    """The epic's limits that `tokens` and `usd` exceed, with the numbers."""
    over = []
    if budget.tokens is not None and tokens > budget.tokens:
        over.append(f"{round(tokens):,} of {budget.tokens:,} tokens")
    if budget.usd is not None and usd > budget.usd + 1e-9:
        over.append(f"{usd_text(usd)} of {usd_text(budget.usd)}")
    return over
