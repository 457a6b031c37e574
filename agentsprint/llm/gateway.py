"""The model gateway: every model call reserves before it calls, settles after, and is recorded.

Flow of `complete`: estimate input tokens; fit `max_tokens` into what is left of every budget scope
(shrinking it, or refusing below `run.min_reply_tokens` without calling); reserve atomically; call the
provider through litellm with `max_tokens` = the granted value; retry 429/5xx/connection errors on the
same reservation and timeouts on a new one (a timed-out attempt stays charged at its reservation, like
a call in flight when the process dies); settle with the reported usage and cost. litellm is imported
on the first call, not with this module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import BaseModel, Field

from agentsprint.config import ModelSettings, Settings
from agentsprint.llm import records, tokens
from agentsprint.llm.calls import PendingCall, overshoot, usage_anomaly
from agentsprint.llm.context import CallContext
from agentsprint.llm.errors import BudgetExhausted, PriceUnknown, ProviderError
from agentsprint.llm.ledger import BudgetState, CallRecord, Ledger, Reservation, fit
from agentsprint.llm.prices import Price, check_prices, price_for
from agentsprint.llm.ratelimit import RateLimiter, limiter_for
from agentsprint.redaction import redact, secret_texts
from agentsprint.store import Store
from agentsprint.store import ledger as store_ledger
from agentsprint.store.ledger import DUPLICATE_NOTE, DuplicateSettlement

if TYPE_CHECKING:
    from agentsprint.llm.provider import ProviderResult

log = logging.getLogger("agentsprint.llm")
RACE_ATTEMPTS = 20
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOOPBACK_KEY = "no-key-needed"
OVERSHOOT_USD_NOISE = 1e-12


class ToolCall(BaseModel):
    """One tool call of a reply."""

    id: str
    name: str
    arguments: str
    """The raw JSON text the model produced (validated by the caller, not here)."""


class Reply(BaseModel):
    """A settled model reply with its usage and cost (serializable: it is a durable step's output)."""

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    model: str = ""
    finish_reason: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    max_tokens: int = 0
    """The output cap granted and sent to the provider."""
    retries: int = 0
    latency_ms: float = 0.0
    call_id: int | None = None
    """The model_calls row of this call."""

    def to_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation, with secrets redacted.

        The model's own reply is sent back with every later call: a key it wrote (into a file, say)
        must not travel again. The tools still execute the reply as given.
        """
        content = redact(self.content) if self.content else self.content
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": redact(c.arguments)}}
                for c in self.tool_calls
            ]
        return message


class _NoReplyFits(Exception):
    """Not even a minimal reply fits (raised inside the reservation transaction to roll it back)."""

    def __init__(self, states: dict[str, BudgetState], binding: str | None) -> None:
        super().__init__(binding)
        self.states, self.binding = states, binding


def api_key_for(settings: ModelSettings) -> str | None:
    """The key to send upstream for `settings` (None: the provider library reads its own variable)."""
    if settings.api_key_env:
        value = os.environ.get(settings.api_key_env)
        if not value:
            raise ProviderError("auth", f"no API key: environment variable {settings.api_key_env} is not set")
        return value
    if settings.api_base and urlparse(settings.api_base).hostname in LOOPBACK_HOSTS:
        return LOOPBACK_KEY
    return None  # litellm reads the provider's own variable (OPENAI_API_KEY, ...)


class Gateway:
    """The one way to call a model: budgets, retries, fallbacks, recording."""

    def __init__(self, settings: Settings, store: Store, *, backoff: float = 0.5, max_backoff: float = 8.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.store = store
        self.ledger = Ledger(store)
        self.backoff = backoff
        """Seconds before the first retry; doubled on each further one (with jitter), up to max_backoff."""
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._prices: dict[tuple[str, str], Price | None] = {}

    def ensure_budget(self, scope: str, tokens: int | None = None, usd: float | None = None) -> None:
        """Set the limits of `scope` exactly (None = no cap)."""
        store_ledger.ensure_budget(self.store, scope, tokens, usd)

    def open_budget(self, scope: str, tokens: int | None = None, usd: float | None = None) -> None:
        """Create `scope` with these limits unless it exists (then its limits are kept)."""
        store_ledger.open_budget(self.store, scope, tokens, usd)

    def add_budget(self, scope: str, tokens: int | None = None, usd: float | None = None) -> None:
        """Raise the limits of `scope` (escalation retry)."""
        store_ledger.add_budget(self.store, scope, tokens, usd)

    def spend(self, scope: str) -> BudgetState:
        """Limits (None = no cap), settled spend and open reservations of `scope`."""
        return store_ledger.budgets(self.store, [scope])[scope]

    def check_prices(self, roles: Iterable[str], *, usd_budgets: bool = True) -> None:
        """PriceUnknown (a ConfigError) if a model of `roles` has no price while USD budgets are in play."""
        if usd_budgets:
            check_prices(self.settings, roles)

    def complete(self, ctx: CallContext, messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]] | None = None, idempotency_key: str | None = None) -> Reply:
        """One model reply within budget; BudgetExhausted (no call made) or ProviderError otherwise.

        With an `idempotency_key` already settled (a durable step replayed), the recorded reply is
        returned and nothing is paid twice.
        """
        replayed = self._replayed(idempotency_key)
        if replayed is not None:
            return replayed
        role_settings = self.settings.model_for(ctx.role)
        models = [role_settings.model, *role_settings.fallbacks]
        for index, model in enumerate(models):
            try:
                call = self._prepare(ctx, role_settings, model, messages, tools, idempotency_key)
                return self._complete(call)
            except ProviderError as exc:
                if not exc.retryable or index == len(models) - 1:
                    raise
                log.warning("%s failed (%s); falling back to %s", model, exc, models[index + 1])
        raise AssertionError("unreachable")

    def prepare(self, ctx: CallContext, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                *, imputed: bool = False) -> PendingCall:
        """A call of the role's own model, estimated and priced, for a caller that sends it itself."""
        settings = self.settings.model_for(ctx.role)
        call = self._prepare(ctx, settings, settings.model, messages, tools, None)
        call.imputed = imputed
        return call

    def reserve(self, call: PendingCall) -> Reservation:
        """Reserve `call` on its scopes, output cap shrunk to fit; BudgetExhausted (recorded) when none fits."""
        return self._reserve(call)

    def settle(self, call: PendingCall, reservation: Reservation, result: ProviderResult,
               latency_ms: float) -> Reply:
        """Settle a call its caller sent itself, from the usage in `result` (the reservation if none)."""
        return self._settle_ok(call, reservation, result, latency_ms)

    def settle_failed(self, call: PendingCall, reservation: Reservation, error: ProviderError,
                      charged: bool) -> None:
        """Release a failed call's reservation, or keep it charged when the provider may have billed it."""
        self._settle_failure(call, reservation, error, charged)

    def _replayed(self, idempotency_key: str | None) -> Reply | None:
        """The reply settled `ok` under this key, if any."""
        replayed = self.ledger.settled_reply(idempotency_key) if idempotency_key is not None else None
        if replayed is None:
            return None
        return Reply.model_validate_json(replayed[1]).model_copy(update={"call_id": replayed[0]})

    def _price(self, settings: ModelSettings, model: str) -> Price | None:
        key = (settings.model, model)
        if key not in self._prices:
            self._prices[key] = price_for(settings, model)
        return self._prices[key]

    def _prepare(self, ctx: CallContext, settings: ModelSettings, model: str, messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]] | None, idempotency_key: str | None) -> PendingCall:
        requested = ctx.max_tokens or settings.max_tokens
        estimate = tokens.estimate_input_tokens(model, messages, tools, self.settings.run.token_safety_factor)
        secrets = secret_texts()
        request = records.request_json(model, messages, tools, requested, settings.temperature, secrets)
        return PendingCall(ctx, settings, model, messages, tools, self._price(settings, model), estimate,
                           requested, api_key_for(settings), request, idempotency_key, secrets)

    def _complete(self, call: PendingCall) -> Reply:
        while True:
            reservation = self._reserve(call)
            try:
                result, latency_ms = self._attempt(call, reservation)
            except ProviderError as exc:
                self._settle_failure(call, reservation, exc, charged=exc.kind == "timeout")
                if exc.kind == "timeout" and call.retries < self.settings.run.num_retries:
                    self._pause(call)
                    continue
                raise ProviderError(exc.kind, exc.message, call.retries) from exc
            except Exception as exc:  # a defect after the request went out: charged like a crash
                self._settle_failure(call, reservation, ProviderError("unknown", repr(exc)), charged=True)
                raise
            return self._settle_ok(call, reservation, result, latency_ms)

    def _attempt(self, call: PendingCall, reservation: Reservation) -> tuple[ProviderResult, float]:
        """Call the provider, retrying 429/5xx/connection errors on the same reservation."""
        from agentsprint.llm import provider

        run = self.settings.run
        limiter = limiter_for(call.settings.api_base, call.model)
        while True:
            limiter.acquire()
            started = time.perf_counter()
            try:
                result = provider.complete(
                    call.model, call.messages, call.tools, max_tokens=reservation.granted_max_tokens,
                    temperature=call.settings.temperature, api_base=call.settings.api_base,
                    api_key=call.api_key, timeout=run.call_timeout_seconds)
                return result, (time.perf_counter() - started) * 1000
            except ProviderError as exc:
                if exc.kind == "timeout" or not exc.retryable or call.retries >= run.num_retries:
                    raise
                self._pause(call, limiter if exc.kind == "rate_limit" else None)

    def _pause(self, call: PendingCall, limiter: RateLimiter | None = None) -> None:
        """Back off before a retry; after a 429 every caller of that endpoint and model waits."""
        delay = min(self.max_backoff, self.backoff * 2**call.retries) * random.uniform(0.5, 1.0)
        call.retries += 1
        if limiter is not None:
            limiter.penalize(delay)
        elif delay > 0:
            self._sleep(delay)

    def _reserve(self, call: PendingCall) -> Reservation:
        minimum = min(self.settings.run.min_reply_tokens, call.requested)
        for _ in range(RACE_ATTEMPTS):
            try:
                reservation = self.ledger.reserve_fitting(call.ctx.scopes,
                                                          lambda states: self._fitted_call(call, states, minimum))
            except _NoReplyFits as refusal:
                raise self._refuse(call, refusal.states, refusal.binding, minimum) from None
            if reservation is not None:
                return reservation
        raise self._refuse(call, store_ledger.budgets(self.store, call.ctx.scopes), None, minimum)

    def _fitted_call(self, call: PendingCall, states: dict[str, BudgetState], minimum: int) -> CallRecord:
        """The largest reservation that fits `states` (PriceUnknown / _NoReplyFits when none may be made)."""
        if call.price is None and any(state.limit_usd is not None for state in states.values()):
            raise PriceUnknown([f"{call.ctx.role}: {call.model}"])
        fitted = fit(states, call.estimate, call.requested, call.price)
        granted = fitted.max_tokens
        if granted < minimum:
            raise _NoReplyFits(states, fitted.binding)
        usd = call.price.reserve_usd(call.estimate, granted) if call.price else 0.0
        return call.reserved_row(granted, usd)

    def _refuse(self, call: PendingCall, states: dict[str, BudgetState], binding: str | None,
                minimum: int) -> BudgetExhausted:
        capped = [s for s in states.values() if s.limit_tokens is not None or s.limit_usd is not None]
        state = states[binding] if binding else (capped[0] if capped else BudgetState("(none)"))
        needed_usd = call.price.reserve_usd(call.estimate, minimum) if call.price else 0.0
        error = BudgetExhausted(state.scope, call.estimate + minimum, state.left_tokens, needed_usd,
                                state.left_usd)
        self.ledger.refuse(call.refused_row(str(error)),
                           call.summary(outcome="refused", scope=state.scope, error=str(error)))
        return error

    def _cost(self, call: PendingCall, result: ProviderResult) -> float:
        from agentsprint.llm import provider

        if call.price is not None and call.price.source == "override":
            return call.price.cost(result.input_tokens, result.cached_input_tokens, result.output_tokens)
        reported = provider.completion_cost(result)
        if reported is not None:
            return reported
        if call.price is None:
            return 0.0  # no USD budget in play (checked at reservation); the row says the price is unknown
        return call.price.cost(result.input_tokens, result.cached_input_tokens, result.output_tokens)

    def _settle_ok(self, call: PendingCall, reservation: Reservation, result: ProviderResult,
                   latency_ms: float) -> Reply:
        anomaly = usage_anomaly(reservation, result)
        if anomaly is not None:
            result, usd = self._charge_anomaly(call, reservation, result, anomaly)
        elif result.input_tokens <= 0:  # no usage reported (litellm then says 0): never a silent zero
            log.warning("call %s: the provider reported no usage; charged at its reservation", reservation.call_id)
            result = dataclasses.replace(result, input_tokens=reservation.estimated_input_tokens,
                                         output_tokens=reservation.granted_max_tokens, usage_reported=False)
            usd = reservation.usd
        else:
            usd = self._cost(call, result)
        reply = Reply(
            content=result.content, tool_calls=[ToolCall(**c) for c in result.tool_calls], model=result.model,
            finish_reason=result.finish_reason, input_tokens=result.input_tokens,
            cached_input_tokens=result.cached_input_tokens, output_tokens=result.output_tokens, usd=usd,
            max_tokens=reservation.granted_max_tokens, retries=call.retries, latency_ms=round(latency_ms, 3),
            call_id=reservation.call_id)
        response = records.dumps(reply.model_dump(), call.secrets)
        fields = call.ok_fields(reservation, result, usd, reply.latency_ms, response)
        over_tokens, over_usd = overshoot(reservation, result, usd)
        if over_tokens or over_usd > OVERSHOOT_USD_NOISE:
            log.warning("call %s: usage exceeded its reservation by %d tokens, $%.6f", reservation.call_id,
                        over_tokens, over_usd)
        if anomaly is not None:
            fields = dataclasses.replace(fields, usage_anomaly=anomaly)
        try:
            self.ledger.settle(reservation, result.input_tokens + result.output_tokens, usd, fields,
                               call.ok_event(reservation, result, usd, reply.latency_ms))
        except DuplicateSettlement:  # the same step ran twice: both were paid, the first reply stands
            log.warning("call %s: %s", reservation.call_id, DUPLICATE_NOTE)
            return self._replayed(call.idempotency_key) or reply
        if anomaly is not None:
            self.ledger.record_anomaly(call.summary(call_id=reservation.call_id, anomaly=anomaly,
                                                    charged_tokens=result.input_tokens + result.output_tokens,
                                                    charged_usd=usd))
        return reply

    def _charge_anomaly(self, call: PendingCall, reservation: Reservation, result: ProviderResult,
                        anomaly: str) -> tuple[ProviderResult, float]:
        """Implausible usage: charge the reservation, or the reported usage where it is larger and sane."""
        log.warning("call %s (%s, %s): usage anomaly: %s; charged at least its reservation",
                    reservation.call_id, call.ctx.role, call.model, anomaly)
        charged = dataclasses.replace(
            result, input_tokens=max(result.input_tokens, reservation.estimated_input_tokens),
            cached_input_tokens=min(max(result.cached_input_tokens, 0), max(result.input_tokens, 0)),
            output_tokens=max(result.output_tokens, reservation.granted_max_tokens))
        usd = call.price.cost(charged.input_tokens, charged.cached_input_tokens, charged.output_tokens) \
            if call.price else 0.0
        return charged, max(usd, reservation.usd)

    def _settle_failure(self, call: PendingCall, reservation: Reservation, error: ProviderError,
                        charged: bool) -> None:
        """Release the reservation, or keep it charged when the provider may have billed (timeout)."""
        fields = call.failure_fields(reservation, error, charged)
        event = call.summary(outcome="error", error_kind=error.kind, error=error.message[:500],
                             charged=charged)
        spent = (fields.input_tokens or 0) + (fields.output_tokens or 0)
        self.ledger.settle(reservation, spent, fields.usd or 0.0, fields, event)
