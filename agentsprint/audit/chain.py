"""Recompute the audit chain and locate the first event that was altered, deleted, inserted or reordered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256
from json.encoder import encode_basestring

from agentsprint.store.audit_log import AuditEvent
from agentsprint.store.events import GENESIS, event_hash


@dataclass(frozen=True)
class Break:
    """Where the chain breaks: the event an auditor should look at, and what happened to it."""

    seq: int
    at: float
    kind: str
    problem: str  # altered | deleted | inserted | reordered | truncated | rewritten
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of a verification: events checked, the chain head, and the first break if any."""

    checked: int
    head_seq: int
    head_hash: str
    broken: Break | None = None


def _text(value: str | None) -> str:
    return "null" if value is None else str(encode_basestring(value))


def fast_hash(prev_hash: str, event: AuditEvent) -> str:
    """event_hash for an event stored as written (its data_json already canonical), without re-parsing it."""
    _, at, kind, item_id, run_id, actor, data_json, _, _ = event
    body = (f'{{"actor":{encode_basestring(actor)},"at":{at!r},"data":{data_json},'
            f'"item_id":{_text(item_id)},"kind":{encode_basestring(kind)},"run_id":{_text(run_id)}}}')
    return sha256((prev_hash + body).encode()).hexdigest()


def content_matches(prev_hash: str, event: AuditEvent) -> bool:
    """Whether `event.hash` is the hash of its content chained after `prev_hash`."""
    if fast_hash(prev_hash, event) == event.hash:
        return True
    return event_hash(prev_hash, event.at, event.kind, event.item_id, event.run_id, event.actor,
                      event.data_json) == event.hash


@dataclass(frozen=True)
class Walk:
    """How far a walk got: the last good event, and the first one that does not follow it (if any)."""

    checked: int
    last: AuditEvent | None
    offender: AuditEvent | None


def walk(events: Iterable[AuditEvent]) -> Walk:
    """Follow the chain from the genesis hash until an event does not follow its predecessor."""
    prev, last, checked = GENESIS, None, 0
    for event in events:
        if event.prev_hash != prev or (fast_hash(prev, event) != event.hash and not content_matches(prev, event)):
            return Walk(checked, last, event)
        prev, last, checked = event.hash, event, checked + 1
    return Walk(checked, last, None)
