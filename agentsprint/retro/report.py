"""A retro report: the scoped history's figures, the scope itself and the findings, as one JSON-ready dict."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from agentsprint.retro.findings import findings
from agentsprint.retro.metrics import Params, compute
from agentsprint.retro.scope import Scope, in_scope
from agentsprint.store.history import History


def period(history: History, scope: Scope, now: float) -> tuple[float | None, float]:
    """The span per-day rates are taken over: the sprint's dates, else first recorded change to now."""
    sprint = scope.sprint
    first = min((t.at for t in history.transitions), default=None)
    start = sprint.start if sprint is not None and sprint.start is not None else first
    end = sprint.end if sprint is not None and sprint.end is not None and sprint.end < now else now
    return start, end


def params_for(history: History, scope: Scope, lines_per_hour: float, now: float,
               forecasts: dict[str, float] | None = None) -> Params:
    """The figures' parameters for this scope."""
    start, end = period(history, scope, now)
    planned = len(scope.item_ids) if scope.item_ids is not None else None
    capacity = scope.sprint.review_hours if scope.sprint is not None else None
    return Params(lines_per_hour=lines_per_hour, review_capacity_hours=capacity, period_start=start,
                  period_end=end, items_planned=planned, forecasts_usd=forecasts)


def scope_info(scope: Scope, now: float) -> dict[str, Any]:
    """The scope as the report states it."""
    sprint = scope.sprint
    return {"kind": scope.kind, "title": scope.describe(), "since": scope.since,
            "items": sorted(scope.item_ids) if scope.item_ids is not None else None,
            "sprint": None if sprint is None else {"name": sprint.name, "goal": sprint.goal, "start": sprint.start,
                                                   "end": sprint.end, "tokens": sprint.tokens, "usd": sprint.usd,
                                                   "review_hours": sprint.review_hours},
            "generated_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds")}


def build(history: History, scope: Scope, lines_per_hour: float = 400.0, now: float | None = None,
          forecasts: dict[str, float] | None = None) -> dict[str, Any]:
    """The retro of `scope` over the whole recorded `history`."""
    moment = time.time() if now is None else now
    scoped = in_scope(history, scope)
    figures = compute(scoped, params_for(scoped, scope, lines_per_hour, moment, forecasts))
    return {"schema_version": figures.pop("schema_version"), "scope": scope_info(scope, moment),
            "findings": findings(figures), **figures}
