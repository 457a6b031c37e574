"""The budget ledger: fit a call into what is left of its scopes, reserve it atomically, settle it.

Scopes are `item:<ID>`, `sprint:<NAME>`, `epic:<NAME>`. A reservation is charged to every scope of
the call in one transaction (see agentsprint.store.ledger). A call in flight when the process dies
keeps its `model_calls` row in outcome "reserved" and its scopes stay charged at the reservation:
`settle` never runs for it and nothing releases it later. That is the contract, not a leak: the
provider may have billed the call, so the budget must assume it did.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from agentsprint.llm.prices import Price
from agentsprint.store import Store
from agentsprint.store import ledger as store_ledger
from agentsprint.store.ledger import BudgetState, CallRecord, CallSettlement

__all__ = ["BudgetState", "CallRecord", "CallSettlement", "Ledger", "ReplyRoom", "Reservation", "fit"]


@dataclass(frozen=True)
class Reservation:
    """Tokens and USD held on `scopes` for one call, recorded as model_calls row `call_id`."""

    call_id: int
    scopes: tuple[str, ...]
    tokens: int
    usd: float
    granted_max_tokens: int
    estimated_input_tokens: int


@dataclass(frozen=True)
class ReplyRoom:
    """The largest reply that fits every scope, and the scope that limits it (None: nothing does)."""

    max_tokens: int
    binding: str | None


def _usd_room(state: BudgetState, estimate: int, price: Price, requested: int) -> int:
    """Most output tokens whose reservation passes the store's check `spent + reserved + usd <= limit`."""
    assert state.limit_usd is not None
    held = state.spent_usd + state.reserved_usd
    if price.output <= 0:
        return requested if held + price.reserve_usd(estimate, 0) <= state.limit_usd else -1
    room = math.floor((state.limit_usd - held - estimate * price.input) / price.output)
    room = min(room, requested)
    while room >= 0 and held + price.reserve_usd(estimate, room) > state.limit_usd:
        room -= 1  # float rounding at the boundary: step down until the database would agree
    return room


def fit(states: Mapping[str, BudgetState], estimate: int, requested: int, price: Price | None) -> ReplyRoom:
    """Shrink `requested` output tokens until estimate + reply fits every scope's tokens and USD."""
    grant, binding = requested, None
    for state in states.values():
        rooms = []
        if state.left_tokens is not None:
            rooms.append(state.left_tokens - estimate)
        if state.limit_usd is not None and price is not None:
            rooms.append(_usd_room(state, estimate, price, requested))
        for room in rooms:
            if room < grant:
                grant, binding = room, state.scope
    return ReplyRoom(grant, binding)


class Ledger:
    """Budget operations of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def reserve(self, scopes: Iterable[str], tokens: int, usd: float, *, granted_max_tokens: int = 0,
                estimated_input_tokens: int = 0) -> Reservation | None:
        """Hold `tokens` and `usd` on every scope at once, or on none (None when any lacks room)."""
        call = CallRecord(started_at=time.time(), reserved_tokens=tokens, reserved_usd=usd,
                          granted_max_tokens=granted_max_tokens, estimated_input_tokens=estimated_input_tokens)
        return self.reserve_fitting(scopes, lambda _states: call)

    def reserve_fitting(
        self, scopes: Iterable[str], decide: Callable[[dict[str, BudgetState]], CallRecord]
    ) -> Reservation | None:
        """Read the scopes and reserve the call `decide` makes in one transaction (None: a concurrent call won)."""
        scope_list = tuple(sorted(set(scopes)))
        made: list[CallRecord] = []

        def charged_to_scopes(states: dict[str, BudgetState]) -> CallRecord:
            made.append(replace(decide(states), scopes_json=json.dumps(list(scope_list))))
            return made[-1]

        call_id = store_ledger.reserve_fitting(self.store, scope_list, charged_to_scopes)
        if call_id is None:
            return None
        call = made[-1]
        return Reservation(call_id, scope_list, call.reserved_tokens, call.reserved_usd, call.granted_max_tokens,
                           call.estimated_input_tokens)

    def settle(self, reservation: Reservation, actual_tokens: int, actual_usd: float, settlement: CallSettlement,
               event: dict[str, Any] | None = None) -> bool:
        """Replace the reservation by the actual spend on its scopes; False if it was already settled."""
        data = {"reserved_tokens": reservation.tokens, "spent_tokens": actual_tokens, "usd": actual_usd,
                **(event or {}), "call_id": reservation.call_id}
        return store_ledger.settle(self.store, reservation.call_id, actual_tokens, actual_usd, settlement, data)

    def refuse(self, call: CallRecord, event: dict[str, Any]) -> int:
        """Record a call refused before any request (nothing reserved, nothing spent)."""
        return store_ledger.record_call(self.store, replace(call, outcome="refused"), event)

    def record_anomaly(self, event: dict[str, Any]) -> None:
        """Record implausible provider usage as a `model.usage_anomaly` audit event."""
        store_ledger.record_anomaly(self.store, event)

    def settled_reply(self, idempotency_key: str) -> tuple[int, str] | None:
        """(call id, stored reply JSON) of the settled call made under this key, if any."""
        return store_ledger.settled_call(self.store, idempotency_key)
