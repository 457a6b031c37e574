"""A model call step's outcome keeps the gateway's error whole (kind, message, retries), and step
outputs recorded before it had a typed failure still load (a workflow recovered across an upgrade)."""

from __future__ import annotations

import pickle

from agentsprint.agents.errors import Escalate
from agentsprint.llm.errors import BudgetExhausted, LLMError, ProviderError
from agentsprint.runner.steps import CallFailure, ModelOutcome


def test_a_provider_error_comes_back_as_it_was_raised() -> None:
    recorded = ModelOutcome(failure=CallFailure.of(ProviderError("server", "boom", 3)), at=1.0)
    outcome = pickle.loads(pickle.dumps(recorded))
    assert outcome.failure is not None
    error = outcome.failure.error()
    assert isinstance(error, ProviderError)
    assert (error.kind, error.message, error.retries) == ("server", "boom", 3)
    assert str(error) == "server: boom (after 3 retries)"


def test_a_budget_refusal_becomes_a_budget_escalation_with_the_gateway_text() -> None:
    refused = BudgetExhausted("item:AS-1", 900, 100, 0.01, None)
    error = CallFailure.of(refused).error()
    assert isinstance(error, Escalate) and error.reason.value == "budget" and error.detail == str(refused)


def test_any_other_gateway_error_is_an_unknown_provider_error() -> None:
    error = CallFailure.of(LLMError("odd")).error()
    assert isinstance(error, ProviderError) and (error.kind, error.message) == ("unknown", "odd")


def _legacy(fields: dict[str, object]) -> ModelOutcome:
    """A ModelOutcome as pickle restores one recorded by the version with error_kind / provider_kind / error."""
    outcome = ModelOutcome.__new__(ModelOutcome)
    outcome.__setstate__({"__dict__": {"reply": None, **fields}, "__pydantic_fields_set__": set(fields),
                          "__pydantic_extra__": None, "__pydantic_private__": None})
    return outcome


def test_an_outcome_recorded_before_the_typed_failure_still_loads() -> None:
    failed = _legacy({"error_kind": "provider", "provider_kind": "timeout", "error": "timeout: slow", "at": 2.0})
    assert failed.failure == CallFailure(kind="timeout", message="timeout: slow") and failed.at == 2.0
    refused = _legacy({"error_kind": "budget", "provider_kind": None, "error": "budget item:AS-1 exhausted", "at": 3.0})
    assert refused.failure == CallFailure(budget=True, message="budget item:AS-1 exhausted")
    answered = _legacy({"error_kind": None, "provider_kind": None, "error": None, "at": 4.0})
    assert answered.failure is None and answered.at == 4.0
