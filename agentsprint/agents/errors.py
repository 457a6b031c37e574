"""Control-flow exceptions of the agent loop: each carries what the runner needs to escalate."""

from __future__ import annotations

from typing import Any

from agentsprint.domain import EscalationReason


class Escalate(Exception):
    """The agent cannot go on; the runner escalates the item with this reason and detail."""

    def __init__(self, reason: EscalationReason | str, detail: str) -> None:
        self.reason = EscalationReason(reason)
        self.detail = detail
        super().__init__(f"{self.reason.value}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable (durable workflows may record the exception that ended a step).
        return (Escalate, (self.reason.value, self.detail))


class LoopDetected(Escalate):
    """A loop guard tripped (the same calls over and over, or the same failure round after round)."""

    def __init__(self, detail: str) -> None:
        super().__init__(EscalationReason.LOOP, detail)

    def __reduce__(self) -> tuple[Any, ...]:
        return (LoopDetected, (self.detail,))
