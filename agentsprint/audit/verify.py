"""`audit verify`: walk the chain, name the first break, and check the chain against its anchors."""

from __future__ import annotations

from collections.abc import Iterable

from agentsprint.audit.anchors import Anchor
from agentsprint.audit.chain import Break, Verdict, Walk, content_matches, walk
from agentsprint.store.audit_log import AuditEvent, event_at, event_by_hash, iter_events
from agentsprint.store.core import Store
from agentsprint.store.events import GENESIS


def verify(store: Store, anchors: Iterable[Anchor] = ()) -> Verdict:
    """Recompute the whole chain; then, if it holds, check that every anchor is still in it."""
    result = walk(iter_events(store))
    head = result.last
    verdict = Verdict(result.checked, head.seq if head else 0, head.hash if head else GENESIS)
    broken = locate(store, result) if result.offender is not None else check_anchors(store, anchors, verdict.head_seq)
    return Verdict(verdict.checked, verdict.head_seq, verdict.head_hash, broken)


def _break(event: AuditEvent, problem: str, detail: str) -> Break:
    return Break(event.seq, event.at, event.kind, problem, detail)


def locate(store: Store, result: Walk) -> Break:
    """Which event to blame for the break the walk stopped at, and how it was tampered with."""
    last, offender = result.last, result.offender
    assert offender is not None
    if offender.prev_hash == (last.hash if last else GENESIS):
        return _break(offender, "altered", "its content does not match its hash")
    predecessor = event_by_hash(store, offender.prev_hash)
    if predecessor is None:
        return _no_predecessor(last, offender)
    if last is not None and predecessor.seq < last.seq and last.prev_hash == offender.prev_hash:
        return _break(last, "inserted", f"it claims the place of event #{offender.seq}, which follows "
                                        f"event #{predecessor.seq} in the chain")
    return _break(offender, "reordered", f"it follows event #{predecessor.seq} in the chain, "
                                         f"but is stored as event #{offender.seq}")


def _no_predecessor(last: AuditEvent | None, offender: AuditEvent) -> Break:
    after = last.seq if last else 0
    if not content_matches(offender.prev_hash, offender):
        return _break(offender, "altered", "its previous-hash field was changed")
    if offender.seq > after + 1:
        return _break(offender, "deleted", f"events #{after + 1} to #{offender.seq - 1} before it were deleted")
    if last is None:
        return _break(offender, "altered", "the first event does not start from the genesis hash")
    return _break(last, "altered", f"it was changed and re-hashed: event #{offender.seq} still names its old hash")


def check_anchors(store: Store, anchors: Iterable[Anchor], head_seq: int) -> Break | None:
    """The first anchor the table no longer holds: a truncated tail or a rewritten chain."""
    for anchor in sorted(anchors, key=lambda a: a.seq):
        event = event_at(store, anchor.seq)
        if event is None:
            return Break(anchor.seq, anchor.at, "(missing)", "truncated",
                         f"event #{anchor.seq}, anchored in {anchor.source}, is no longer in the table "
                         f"(it ends at #{head_seq}): events were removed from the end")
        if event.hash != anchor.hash:
            return _break(event, "rewritten", f"its hash differs from the one anchored in {anchor.source}: "
                                              "the chain was rebuilt")
    return None
