"""What the screens show and do, as plain values: the services the CLI calls, read in worker threads.

No widget here and no database session: rows come from the backlog, the store's queries and the runner's
actions. Every function opens what it needs and closes it, so a call never outlives its worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentsprint.config import Settings
from agentsprint.money import plural, usd_text

if TYPE_CHECKING:
    from agentsprint.store.runs import Escalation

Clock = Callable[[], float]
FILTER_FIELDS = ("type", "status", "priority", "label")


@dataclass(frozen=True)
class BacklogRow:
    """One line of the backlog table: a valid item, or a broken file with its file:line error."""

    id: str
    title: str
    type: str = ""
    priority: str = ""
    value: str = ""
    budget: str = ""
    dod: str = ""
    status: str = ""
    spend: str = ""
    labels: tuple[str, ...] = ()
    problem: str = ""
    haystack: str = field(default="", compare=False)

    def cells(self) -> tuple[str, ...]:
        """id, title, type, priority, value, budget, dod, status, spend."""
        return (self.id, self.title, self.type, self.priority, self.value, self.budget, self.dod, self.status,
                self.spend)

    def matches(self, terms: list[tuple[str, str]]) -> bool:
        """True when every (field, text) term matches; field '' searches id, title and labels."""
        return all(self._match(name, text) for name, text in terms)

    def _match(self, name: str, text: str) -> bool:
        if name == "label":
            return any(text in label.lower() for label in self.labels)
        if name:
            return str(getattr(self, name)).lower().startswith(text)
        return text in self.haystack


def parse_filter(query: str) -> list[tuple[str, str]]:
    """`type:bug pagin` -> [("type", "bug"), ("", "pagin")]; unknown `x:` prefixes search as text."""
    terms = []
    for word in query.lower().split():
        name, sep, text = word.partition(":")
        terms.append((name, text) if sep and name in FILTER_FIELDS else ("", word))
    return terms


def tokens_text(tokens: int) -> str:
    """500000 -> 500k, 1500000 -> 1.5M."""
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if tokens >= size:
            return f"{tokens / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(tokens)


def spend_text(spent_tokens: int, spent_usd: float, limit_tokens: int | None, limit_usd: float | None) -> str:
    """`12k/60k tok $0.01/$0.50`: spend against the limits ('-' for none)."""
    if not spent_tokens and not spent_usd:
        return "-"
    tokens = tokens_text(spent_tokens) + (f"/{tokens_text(limit_tokens)}" if limit_tokens is not None else "")
    usd = usd_text(spent_usd) + (f"/{usd_text(limit_usd)}" if limit_usd is not None else "")
    return f"{tokens} tok {usd}"


def wait_text(since: float, now: float) -> str:
    """`42m`, `3h05m`, `2d04h`: how long something has waited."""
    minutes = max(0, int((now - since) / 60))
    if minutes >= 24 * 60:
        return f"{minutes // 1440}d{minutes % 1440 // 60:02d}h"
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def backlog_rows(settings: Settings) -> list[BacklogRow]:
    """Every item of the backlog with its live status and spend, then one row per broken file."""
    from agentsprint.backlog import load_backlog
    from agentsprint.backlog.ids import id_sort_key
    from agentsprint.store.live import item_budgets, live_statuses

    cache = settings.state_dir / "cache" if settings.state_dir.is_dir() else None
    loaded = load_backlog(settings.backlog_dir, cache)
    live, budgets = live_statuses(settings.database_url), item_budgets(settings.database_url)
    rows = [_item_row(loaded.items[i], live.get(i), budgets.rows.get(f"item:{i}"))
            for i in sorted(loaded.items, key=id_sort_key)]
    return rows + [_problem_row(p, settings.root) for p in loaded.problems]


def _item_row(item: Any, live: tuple[str, int] | None, budget: tuple[Any, ...] | None) -> BacklogRow:
    limit_tokens, limit_usd, spent_tokens, spent_usd = budget or (item.budget.tokens, item.budget.usd, 0, 0.0)
    labels = tuple(item.labels)
    return BacklogRow(item.id, item.title, item.type.value, item.priority.value, str(item.value),
                      _budget_text(limit_tokens, limit_usd, item.budget.rounds),
                      ", ".join(g.name for g in item.dod) or "-", live[0] if live else item.status.value,
                      spend_text(spent_tokens, spent_usd, limit_tokens, limit_usd), labels,
                      haystack=" ".join((item.id, item.title, *labels)).lower())


def _budget_text(tokens: int | None, usd: float | None, rounds: int | None) -> str:
    parts = [f"{tokens_text(tokens)} tok"] if tokens is not None else []
    parts += [usd_text(usd)] if usd is not None else []
    parts += [plural(rounds, "round")] if rounds is not None else []
    return ", ".join(parts) or "-"


def _problem_row(problem: Any, root: Path) -> BacklogRow:
    shown = problem.shown_from(root)
    name = problem.path.stem
    return BacklogRow(name, shown, status="invalid", problem=shown, haystack=shown.lower())


@contextmanager
def services(settings: Settings) -> Iterator[Any]:
    """The runner's services (settings, store, workspace), closed afterwards."""
    from agentsprint.runner.actions import open_project

    svc = open_project(settings)
    try:
        yield svc
    finally:
        svc.store.close()


def item_detail(settings: Settings, item_id: str) -> dict[str, Any]:
    """One item: its definition, rounds, spend by role and status transitions."""
    from agentsprint.runner.actions import load_item
    from agentsprint.store.monitor import item_transitions
    from agentsprint.store.runs import rounds_of, spend_by_role

    with services(settings) as svc:
        item = load_item(svc, item_id)
        return {"item": item, "rounds": rounds_of(svc.store, item_id), "spend": spend_by_role(svc.store, item_id),
                "transitions": item_transitions(svc.store, item_id)}


def monitor_snapshot(settings: Settings) -> dict[str, Any]:
    """Items in flight and runs not finished, as the store records them (whoever started the run)."""
    from agentsprint.store.monitor import open_runs, running_items
    from agentsprint.store.sqlite_direct import sqlite_path

    path = sqlite_path(settings.database_url)
    if path is not None and not path.is_file():
        return {"items": [], "runs": []}
    with services(settings) as svc:
        return {"items": running_items(svc.store), "runs": open_runs(svc.store)}


@dataclass(frozen=True)
class InboxEntry:
    """One thing waiting on a human: a review, an escalation or a dead letter."""

    kind: str
    item_id: str
    since: float
    what: str
    spend: str
    approving: str


def inbox(settings: Settings) -> list[InboxEntry]:
    """Reviews, escalations and dead letters in one list, oldest first."""
    from agentsprint.store.sqlite_direct import sqlite_path

    path = sqlite_path(settings.database_url)
    if path is not None and not path.is_file():
        return []
    with services(settings) as svc:
        entries = _reviews(svc) + _escalations(svc)
    return sorted(entries, key=lambda e: e.since)


def _spend(svc: Any, item_id: str) -> str:
    from agentsprint.store.ledger import budgets

    state = budgets(svc.store, [f"item:{item_id}"])[f"item:{item_id}"]
    return spend_text(state.spent_tokens, state.spent_usd, state.limit_tokens, state.limit_usd)


def _reviews(svc: Any) -> list[InboxEntry]:
    from agentsprint.merging import merge_preview
    from agentsprint.runner.actions import review_inbox

    found = []
    for e in review_inbox(svc):
        what = f"review round {e['round']}: {plural(e['files'], 'file')}, {e['changed_lines']} lines"
        approving = "never merged (shadow run)" if e["shadow"] else _preview(merge_preview, svc, e["id"])
        found.append(InboxEntry("review", e["id"], e["since"], what, _spend(svc, e["id"]), approving))
    return found


def _preview(preview: Callable[[Any, str], str], svc: Any, item_id: str) -> str:
    from agentsprint.gitrepo import WorkspaceError

    try:
        return str(preview(svc.workspace, item_id))
    except WorkspaceError as exc:
        return f"unknown: {exc}"


def _escalations(svc: Any) -> list[InboxEntry]:
    from agentsprint.store.runs import open_escalations

    return [InboxEntry("dead letter" if e.reason == "failed" else "escalation", e.item_id, e.created_at,
                       f"{e.reason}: {e.detail}", _spend(svc, e.item_id), "retry or drop")
            for e in open_escalations(svc.store)]


def review_detail(settings: Settings, item_id: str) -> dict[str, Any]:
    """The reviewer's view: diff, stats, gates and QA's reasons (ActionError when not awaiting review)."""
    from agentsprint.runner.actions import review_detail as detail

    with services(settings) as svc:
        return detail(svc, item_id)


def escalation_detail(settings: Settings, item_id: str) -> Escalation:
    """The item's latest escalation with its package (ActionError when it has none)."""
    from agentsprint.runner.actions import escalation_detail as detail

    with services(settings) as svc:
        return detail(svc, item_id)


def approve(settings: Settings, item_id: str) -> str:
    """Approve and merge, as `review approve`; the item's status afterwards."""
    from agentsprint.runner.actions import approve as approve_item

    with services(settings) as svc:
        return approve_item(svc, item_id).value


def reject(settings: Settings, item_id: str, comment: str) -> None:
    """Reject with a comment that becomes the next round's finding, as `review reject -m`."""
    from agentsprint.runner.actions import reject as reject_item

    with services(settings) as svc:
        reject_item(svc, item_id, comment)


def retry(settings: Settings, item_id: str, tokens: int, usd: float, rounds: int | None) -> None:
    """Raise the budget and queue the item again, as `escalations retry`."""
    from agentsprint.runner.actions import retry as retry_item

    with services(settings) as svc:
        retry_item(svc, item_id, tokens, usd, rounds)


def drop(settings: Settings, item_id: str) -> None:
    """Give up on the item, as `escalations drop`."""
    from agentsprint.runner.actions import drop as drop_item

    with services(settings) as svc:
        drop_item(svc, item_id)


def stop(settings: Settings) -> list[str]:
    """The kill switch, as `agentsprint stop`: ids of the items stopped."""
    from agentsprint.runner.control import stop_all

    return stop_all(settings)


def start_run(settings: Settings) -> str:
    """Launch `agentsprint run` detached; a line saying where its log goes."""
    from agentsprint.runner.launch import launch_run

    pid, log = launch_run(settings)
    return f"run started (pid {pid}); log: {log.relative_to(settings.root)}"


def now() -> float:
    return time.time()
