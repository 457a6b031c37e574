"""One pending model call and the rows and audit events the gateway records for it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from agentsprint.config import ModelSettings
from agentsprint.llm import records
from agentsprint.llm.errors import ProviderError
from agentsprint.llm.ledger import CallRecord, CallSettlement, Reservation
from agentsprint.llm.prices import Price

if TYPE_CHECKING:
    from agentsprint.llm.context import CallContext
    from agentsprint.llm.provider import ProviderResult

CHARGED_NOTE = " (charged at its reservation: the provider may have billed it)"
OUTPUT_TOLERANCE = 0.10
"""Reported output above the granted max_tokens by more than this share (plus OUTPUT_SLACK) is an anomaly."""
OUTPUT_SLACK = 16
INPUT_TOLERANCE = 2.0
"""Reported input above this multiple of the estimate (plus INPUT_SLACK) is an anomaly: the estimate
already carries a safety factor for other tokenizers."""
INPUT_SLACK = 256


@dataclass
class PendingCall:
    """One call to one model (the role's own or a fallback), across its retries."""

    ctx: CallContext
    settings: ModelSettings
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    price: Price | None
    estimate: int
    requested: int
    api_key: str | None
    request_json: str
    idempotency_key: str | None
    secrets: tuple[str, ...]
    retries: int = 0
    imputed: bool = False
    """A subscription login: the provider bills no money per call, so USD is imputed at list price."""

    def cost_basis(self, usage_reported: bool) -> str:
        """How the call's cost is known: measured (reported usage and a price), imputed or estimated."""
        if not usage_reported:
            return "estimated"
        return "imputed" if self.imputed else "measured"

    def reserved_row(self, granted: int, usd: float) -> CallRecord:
        """The model_calls row as reserved: charged at the estimate and the granted output until settled."""
        ctx = self.ctx
        return CallRecord(item_id=ctx.item_id, run_id=ctx.run_id, round=ctx.round, role=ctx.role, model=self.model,
                          requested_max_tokens=self.requested, granted_max_tokens=granted,
                          estimated_input_tokens=self.estimate, reserved_tokens=self.estimate + granted,
                          reserved_usd=usd, input_tokens=self.estimate, output_tokens=granted, usd=usd,
                          request_json=self.request_json, idempotency_key=self.idempotency_key,
                          started_at=time.time(),
                          attributes_json=records.attributes(self.model, granted, self.settings.temperature))

    def refused_row(self, error: str) -> CallRecord:
        """The model_calls row of a call refused for budget: nothing reserved, nothing sent."""
        return replace(self.reserved_row(0, 0.0), reserved_tokens=0, input_tokens=0,
                       scopes_json=json.dumps(sorted(set(self.ctx.scopes))), error=error, finished_at=time.time())

    def summary(self, **data: Any) -> dict[str, Any]:
        """The audit event's data: who called which model, and the outcome (never the prompt)."""
        ctx = self.ctx
        return {"item_id": ctx.item_id, "run_id": ctx.run_id, "round": ctx.round, "role": ctx.role,
                "model": self.model, "retries": self.retries, **data}

    def ok_fields(self, reservation: Reservation, result: ProviderResult, usd: float, latency_ms: float,
                  response_json: str) -> CallSettlement:
        """The settled row of a successful call, with its overshoot (usage beyond the reservation)."""
        over_tokens, over_usd = overshoot(reservation, result, usd)
        extra = {"agentsprint.overshoot_tokens": over_tokens, "agentsprint.overshoot_usd": over_usd,
                 "agentsprint.price": self.price.source if self.price else "unknown",
                 "agentsprint.usage": "reported" if result.usage_reported else "missing: charged at reservation",
                 "agentsprint.cost": self.cost_basis(result.usage_reported)}
        attributes = records.attributes(
            self.model, reservation.granted_max_tokens, self.settings.temperature,
            response_model=result.model, input_tokens=result.input_tokens, output_tokens=result.output_tokens,
            finish_reason=result.finish_reason, extra=extra)
        return CallSettlement(outcome="ok", input_tokens=result.input_tokens,
                              cached_input_tokens=result.cached_input_tokens, output_tokens=result.output_tokens,
                              usd=usd, latency_ms=latency_ms, retries=self.retries, response_json=response_json,
                              attributes_json=attributes)

    def ok_event(self, reservation: Reservation, result: ProviderResult, usd: float,
                 latency_ms: float) -> dict[str, Any]:
        """The audit event of a successful call."""
        over_tokens, over_usd = overshoot(reservation, result, usd)
        return self.summary(outcome="ok", input_tokens=result.input_tokens,
                            output_tokens=result.output_tokens,
                            cached_input_tokens=result.cached_input_tokens, usd=usd, latency_ms=latency_ms,
                            granted_max_tokens=reservation.granted_max_tokens, overshoot_tokens=over_tokens,
                            overshoot_usd=over_usd, finish_reason=result.finish_reason)

    def failure_fields(self, reservation: Reservation, error: ProviderError, charged: bool) -> CallSettlement:
        """The settled row of a failed call: released, or charged at its reservation when it may be billed."""
        attributes = records.attributes(self.model, reservation.granted_max_tokens, self.settings.temperature,
                                        extra={"error.type": error.kind,
                                               "agentsprint.cost": "estimated" if charged else "none"})
        return CallSettlement(outcome="error", error=f"{error}{CHARGED_NOTE if charged else ''}",
                              retries=self.retries, input_tokens=reservation.estimated_input_tokens if charged else 0,
                              output_tokens=reservation.granted_max_tokens if charged else 0,
                              usd=reservation.usd if charged else 0.0, attributes_json=attributes)


def usage_anomaly(reservation: Reservation, result: ProviderResult) -> str | None:
    """What is implausible about the usage a provider reported, or None when it is plausible."""
    counts = {"input": result.input_tokens, "cached input": result.cached_input_tokens,
              "output": result.output_tokens}
    problems = [f"negative {name} tokens ({count:,})" for name, count in counts.items() if count < 0]
    if result.output_tokens > reservation.granted_max_tokens * (1 + OUTPUT_TOLERANCE) + OUTPUT_SLACK:
        problems.append(f"output of {result.output_tokens:,} tokens above the granted max_tokens "
                        f"{reservation.granted_max_tokens:,}")
    if result.input_tokens > reservation.estimated_input_tokens * INPUT_TOLERANCE + INPUT_SLACK:
        problems.append(f"input of {result.input_tokens:,} tokens far above the estimate "
                        f"{reservation.estimated_input_tokens:,}")
    if result.cached_input_tokens > max(result.input_tokens, 0):
        problems.append("more cached input tokens than input tokens")
    return "; ".join(problems) or None


def overshoot(reservation: Reservation, result: ProviderResult, usd: float) -> tuple[int, float]:
    """Tokens and USD the provider reported beyond what was reserved (0 when within)."""
    spent = result.input_tokens + result.output_tokens
    return max(0, spent - reservation.tokens), max(0.0, usd - reservation.usd)
