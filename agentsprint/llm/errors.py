"""The gateway's errors: what crosses the llm/ boundary instead of a provider library's exceptions."""

from __future__ import annotations

from typing import Literal

from agentsprint.config import ConfigError

ProviderErrorKind = Literal["rate_limit", "server", "timeout", "connection", "auth", "bad_request", "unknown"]
RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limit", "server", "timeout", "connection"})


class LLMError(Exception):
    """Base of every error raised by the model gateway."""


class BudgetExhausted(LLMError):
    """Not even a minimal reply fits what is left of a budget scope; no call was made."""

    def __init__(
        self,
        scope: str,
        needed_tokens: int,
        remaining_tokens: int | None,
        needed_usd: float,
        remaining_usd: float | None,
    ) -> None:
        self.scope = scope
        self.needed_tokens = needed_tokens
        self.remaining_tokens = remaining_tokens
        self.needed_usd = needed_usd
        self.remaining_usd = remaining_usd
        super().__init__(self._describe())

    def _describe(self) -> str:
        tokens = "no cap" if self.remaining_tokens is None else f"{self.remaining_tokens:,} left"
        usd = "no cap" if self.remaining_usd is None else f"${self.remaining_usd:.4f} left"
        return (
            f"budget {self.scope} exhausted: a minimal call needs {self.needed_tokens:,} tokens "
            f"(${self.needed_usd:.4f}); tokens: {tokens}, usd: {usd}"
        )

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return (
            BudgetExhausted,
            (self.scope, self.needed_tokens, self.remaining_tokens, self.needed_usd, self.remaining_usd),
        )


class ProviderError(LLMError):
    """A model call failed after its retries (kind says how; never a raw provider traceback)."""

    def __init__(self, kind: ProviderErrorKind, message: str, retries: int = 0) -> None:
        self.kind: ProviderErrorKind = kind
        self.message = message
        self.retries = retries
        super().__init__(f"{kind}: {message}" + (f" (after {retries} retries)" if retries else ""))

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return (ProviderError, (self.kind, self.message, self.retries))


class PriceUnknown(LLMError, ConfigError):
    """A USD budget is in play but a model's price is unknown: fail closed before any call."""

    def __init__(self, models: list[str]) -> None:
        self.models = models
        super().__init__(
            f"price unknown for {', '.join(models)}: set input_cost_per_token and output_cost_per_token "
            "under [models.<role>] in agentsprint.toml, or use token-only budgets"
        )

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return (PriceUnknown, (self.models,))
