"""What a retro covers: a sprint, a list of items, a time window, or everything; and the history in it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agentsprint.retro.errors import RetroError
from agentsprint.store.history import History, SprintRecord


@dataclass(frozen=True)
class SprintInfo:
    """A sprint's name, dates, capacity and items, from its file or the database."""

    name: str
    items: list[str]
    goal: str | None = None
    start: float | None = None
    end: float | None = None
    tokens: int | None = None
    usd: float | None = None
    review_hours: float | None = None


@dataclass(frozen=True)
class Scope:
    """The items (None: all) and the moment from which history counts (None: from the start)."""

    kind: str  # all | sprint | items | since
    item_ids: frozenset[str] | None = None
    since: float | None = None
    sprint: SprintInfo | None = None
    labels: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line naming the scope, for report titles."""
        if self.sprint is not None:
            return f"sprint {self.sprint.name}"
        if self.kind == "items":
            return "items " + ", ".join(sorted(self.item_ids or ()))
        if self.since is not None:
            return "since " + dt.datetime.fromtimestamp(self.since, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return "all items"


def parse_since(text: str) -> float:
    """Epoch seconds of an ISO date or date-time (UTC unless it says otherwise)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RetroError(f"--since {text!r}: not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _epoch(value: Any, field_name: str, path: Path) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    raise RetroError(f"{path}: {field_name}: not a date: {value!r}")


def sprint_from_file(path: Path) -> SprintInfo:
    """A sprint file (backlog/sprints/NAME.yml) as the backlog's sprint loader reads and checks it."""
    from agentsprint.backlog.errors import BacklogError
    from agentsprint.backlog.sprints import load_sprint as read_sprint

    try:
        sprint = read_sprint(path.parent.parent, path.stem)
    except BacklogError as exc:
        raise RetroError(str(exc)) from None
    capacity = sprint.capacity
    return SprintInfo(name=sprint.name, items=sprint.items, goal=sprint.goal or None,
                      start=_epoch(sprint.start, "start", path), end=_epoch(sprint.end, "end", path),
                      tokens=capacity.tokens, usd=capacity.usd, review_hours=capacity.review_hours)


def sprint_from_record(record: SprintRecord) -> SprintInfo:
    """A database sprint as SprintInfo."""
    return SprintInfo(name=record.name, items=record.items, start=record.started_at, end=record.closed_at,
                      tokens=record.tokens, usd=record.usd, review_hours=record.review_hours)


def load_sprint(backlog_dir: Path, name: str, record: SprintRecord | None) -> SprintInfo:
    """The sprint `name`: its file backlog/sprints/NAME.yml if there is one, else the database's record.

    The one place that resolves --sprint; the file is read by agentsprint.backlog.sprints.load_sprint.
    """
    path = backlog_dir / "sprints" / f"{name}.yml"
    if path.is_file():
        return sprint_from_file(path)
    if record is not None:
        return sprint_from_record(record)
    raise RetroError(f"no sprint named {name!r} (no {path} and none in the database)")


def in_scope(history: History, scope: Scope) -> History:
    """The part of `history` the scope covers: its items, and only what happened since `since`."""
    ids, since = scope.item_ids, scope.since or float("-inf")

    def keep(item_id: str | None, at: float) -> bool:
        """Whether a record of this item at this moment is in scope."""
        return (ids is None or item_id in ids) and at >= since

    touched = {t.item_id for t in history.transitions if t.at >= since} if scope.since is not None else None
    return replace(
        history,
        items=[i for i in history.items if (ids is None or i.item_id in ids) and (touched is None
                                                                                   or i.item_id in touched)],
        calls=[c for c in history.calls if keep(c.item_id, c.at)],
        transitions=[t for t in history.transitions if keep(t.item_id, t.at)],
        reviews=[r for r in history.reviews if keep(r.item_id, r.decided_at)],
        escalations=[e for e in history.escalations if keep(e.item_id, e.created_at)],
        handoffs=[h for h in history.handoffs if keep(h.item_id, h.at)],
        rounds=[r for r in history.rounds if keep(r.item_id, r.at)],
        policy_blocks=[b for b in history.policy_blocks if keep(b[0], b[1])],
    )
