"""How plans and sprints are shown: JSON records and the text pages of `sprint plan | list | show | close`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentsprint.config import Settings
    from agentsprint.domain import Item, Sprint
    from agentsprint.planning.forecast import Forecast
    from agentsprint.planning.planner import Plan

BAR = 20
LABELS = {"tokens": "tokens", "usd": "USD", "review_hours": "review h"}


def plan_record(sprint: Sprint, plan: Plan, items: Mapping[str, Item]) -> dict[str, Any]:
    """The JSON of a plan: items with their forecast cost, gauges, left-out reasons, warnings, overlaps, epics."""
    from agentsprint.money import usd_value

    planned = [{"id": i, "title": items[i].title, "priority": items[i].priority.value, "value": items[i].value,
                "forecast": {"tokens": round(plan.costs[i].tokens), "usd": usd_value(plan.costs[i].usd),
                             "review_hours": round(plan.costs[i].review_hours, 2)}} for i in plan.items]
    return {"sprint": sprint.name, "state": sprint.state.value, "items": planned, "capacity": plan.gauges(),
            "left_out": [{"id": i, "reason": why} for i, why in plan.left_out.items()],
            "warnings": plan.warnings, "overlaps": plan.overlaps, "epics": plan.epics}


def amount(kind: str, value: float | None) -> str:
    """A capacity figure as people read it ('-' for no cap)."""
    from agentsprint.cli.views import count
    from agentsprint.money import usd_text

    if value is None:
        return "-"
    return usd_text(value) if kind == "usd" else f"{value:g}" if kind == "review_hours" else count(round(value))


def gauge(kind: str, planned: float, capacity: float | None) -> str:
    """`tokens    [########------------]  800k / 2M (40%)`."""
    if capacity is None:
        return f"  {LABELS[kind]:<9} {amount(kind, planned)} (no cap)"
    share = planned / capacity if capacity else (0.0 if not planned else 2.0)
    filled = min(BAR, round(share * BAR))
    over = "  OVER" if share > 1 + 1e-9 else ""
    return (f"  {LABELS[kind]:<9} [{'#' * filled}{'-' * (BAR - filled)}] {amount(kind, planned)} / "
            f"{amount(kind, capacity)} ({share:.0%}){over}")


def plan_lines(record: dict[str, Any]) -> list[str]:
    """The text page of a plan."""
    lines = [f"sprint {record['sprint']}: {len(record['items'])} item(s) planned"]
    for entry in record["items"]:
        cost = entry["forecast"]
        lines.append(f"  {entry['id']:<10} {entry['priority']:<8} value {entry['value']:<4} "
                     f"{amount('tokens', cost['tokens']):>7} tok  {amount('usd', cost['usd']):>9}  "
                     f"{cost['review_hours']:g} h  {entry['title']}")
    lines.append("capacity (forecast p50 / capacity)")
    lines += [gauge(kind, g["planned"], g["capacity"]) for kind, g in record["capacity"].items()]
    lines += ["left out"] + [f"  {e['id']:<10} {e['reason']}" for e in record["left_out"]] if record["left_out"] else []
    lines += [f"warning: {w}" for w in record["warnings"]]
    lines += [f"overlapping scopes (may conflict when merged): {', '.join(g)}" for g in record["overlaps"]]
    lines += [_epic_line(e) for e in record["epics"]]
    return lines


def _epic_line(epic: dict[str, Any]) -> str:
    budget, total = epic["budget"], epic["forecast_total"]
    return (f"epic {epic['epic']}: {len(epic['items'])} item(s), spent + forecast "
            f"{amount('tokens', total['tokens'])} tok / {amount('tokens', budget['tokens'])}, "
            f"{amount('usd', total['usd'])} / {amount('usd', budget['usd'])}")


def sprint_summary(sprint: Sprint, statuses: dict[str, str], spend: dict[str, tuple[int, float]]) -> dict[str, Any]:
    """One sprint in `sprint list`: state, dates, item counts by live status, spend and capacity."""
    from collections import Counter

    from agentsprint.money import usd_value

    tokens, usd = spend.get(f"sprint:{sprint.name}", (0, 0.0))
    return {"name": sprint.name, "goal": sprint.goal, "state": sprint.state.value,
            "start": sprint.start.isoformat() if sprint.start else None,
            "end": sprint.end.isoformat() if sprint.end else None, "items": sprint.items,
            "by_status": dict(Counter(statuses.get(i, "todo") for i in sprint.items)),
            "capacity": sprint.capacity.model_dump(), "spent": {"tokens": tokens, "usd": usd_value(usd)}}


def summary_line(record: dict[str, Any]) -> str:
    """`S14  active  2026-12-01..2026-12-12  3 items (1 done)  $1.20 / $40.00  800 / 2M tok`."""
    dates = f"{record['start'] or '?'}..{record['end'] or '?'}" if record["start"] or record["end"] else "-"
    done = record["by_status"].get("done", 0)
    capacity, spent = record["capacity"], record["spent"]
    return (f"{record['name']:<12} {record['state']:<8} {dates:<22} {len(record['items'])} items ({done} done)  "
            f"{amount('usd', spent['usd'])} / {amount('usd', capacity['usd'])}  "
            f"{amount('tokens', spent['tokens'])} / {amount('tokens', capacity['tokens'])} tok")


def sprint_detail(settings: Settings, sprint: Sprint, items: Mapping[str, Item]) -> dict[str, Any]:
    """`sprint show`: every item with live status, forecast and spend; the sprint's spend and review queue."""
    from agentsprint.cli.items import item_budgets
    from agentsprint.money import usd_value
    from agentsprint.planning.inputs import item_forecasts
    from agentsprint.store.done_items import last_changed_lines, live_statuses, scope_spend

    statuses = live_statuses(settings.database_url)
    budgets = item_budgets(settings)
    forecasts = item_forecasts(settings, items)
    entries = [_entry(i, items.get(i), statuses.get(i, "todo"), budgets.rows.get(f"item:{i}"), forecasts.get(i))
               for i in sprint.items]
    lines = last_changed_lines(settings.database_url)
    queue: list[dict[str, Any]] = [{"id": e["id"], "changed_lines": lines.get(e["id"], 0)}
             for e in entries if e["status"] == "awaiting_review"]
    hours = sum(q["changed_lines"] for q in queue) / settings.review.lines_per_hour
    tokens, usd = scope_spend(settings.database_url).get(f"sprint:{sprint.name}", (0, 0.0))
    return {**sprint_summary(sprint, statuses, {}), "items": entries,
            "spent": {"tokens": tokens, "usd": usd_value(usd)},
            "review_queue": {"items": queue, "hours": round(hours, 2), "capacity": sprint.capacity.review_hours}}


def _entry(item_id: str, item: Item | None, status: str, row: tuple[Any, ...] | None,
           forecast: Forecast | None) -> dict[str, Any]:
    """One item of `sprint show`: title, live status, spend, forecast."""
    from agentsprint.money import usd_value

    return {"id": item_id, "title": item.title if item else None, "status": status,
            "spent": {"tokens": row[2] if row else 0, "usd": usd_value(row[3] if row else 0.0)},
            "forecast": forecast.to_json() if forecast else None}


def show_lines(record: dict[str, Any]) -> list[str]:
    """The text page of `sprint show`."""
    lines = [summary_line({**record, "items": record["items"]})]
    if record["goal"]:
        lines.append(f"  goal: {record['goal']}")
    for entry in record["items"]:
        spent = entry["spent"]
        lines.append(f"  {entry['id']:<10} {entry['status']:<16} {amount('tokens', spent['tokens']):>7} tok "
                     f"{amount('usd', spent['usd']):>9}  {entry['title'] or '(no valid item file)'}")
    queue = record["review_queue"]
    lines.append(f"review queue: {len(queue['items'])} item(s), {queue['hours']:g} h of "
                 f"{amount('review_hours', queue['capacity'])} h")
    return lines


def close_lines(record: dict[str, Any]) -> list[str]:
    """The closing summary: done vs planned, spend vs capacity, and where the unfinished items went."""
    capacity, spent = record["capacity"], record["spent"]
    lines = [f"sprint {record['sprint']} closed: {record['items_done']} of {record['items_planned']} item(s) done, "
             f"spent {amount('usd', spent['usd'])} of {amount('usd', capacity['usd'])}, "
             f"{amount('tokens', spent['tokens'])} of {amount('tokens', capacity['tokens'])} tokens"]
    where = f"moved to sprint {record['carried_over_to']}" if record["carried_over_to"] else "back to the backlog"
    lines += [f"  not finished: {i} ({status}), {where}" for i, status in record["unfinished"].items()]
    return lines
