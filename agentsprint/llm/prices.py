"""Per-token prices: the role's override from agentsprint.toml, else litellm's local price map.

An unknown price is None here, never zero; the gateway refuses a call whose scopes carry a USD budget
when its price is None (fail closed). Reservations use the highest tier the price map lists (long-context
and cache-write rates), so a tiered bill cannot exceed what was reserved for the same token counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agentsprint.config import ModelSettings, Settings
from agentsprint.llm.errors import PriceUnknown


@dataclass(frozen=True)
class Price:
    """USD per token for one model."""

    input: float
    output: float
    cached_input: float
    source: str  # "override" | "litellm"

    def reserve_usd(self, input_tokens: int, output_tokens: int) -> float:
        """What to reserve for a call of this size (all input at the full rate)."""
        return input_tokens * self.input + output_tokens * self.output

    def cost(self, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float:
        """What a call of this reported usage costs."""
        cached = min(cached_input_tokens, input_tokens)
        return (input_tokens - cached) * self.input + cached * self.cached_input + output_tokens * self.output


def _highest(info: dict[str, Any], base: str, *extra: str) -> float | None:
    if info.get(base) is None:
        return None
    values = [float(info[base])]
    for key, value in info.items():
        tiered = key.startswith(f"{base}_above_") and key.endswith("_tokens")
        if value is not None and (tiered or key in extra):
            values.append(float(value))
    return max(values)


def price_for(settings: ModelSettings, model: str | None = None) -> Price | None:
    """The price of `model` (default: the role's own model); overrides apply to the role's own model only."""
    name = model or settings.model
    own = name == settings.model
    input_price = settings.input_cost_per_token if own else None
    output_price = settings.output_cost_per_token if own else None
    if input_price is not None and output_price is not None:
        return Price(input_price, output_price, input_price, "override")
    from agentsprint.llm import provider

    info = provider.model_info(name) or {}
    mapped_input = _highest(info, "input_cost_per_token", "cache_creation_input_token_cost")
    input_price = input_price if input_price is not None else mapped_input
    output_price = output_price if output_price is not None else _highest(info, "output_cost_per_token")
    if input_price is None or output_price is None:
        return None
    cached = info.get("cache_read_input_token_cost")
    cached_price = min(float(cached), input_price) if cached is not None else input_price
    return Price(input_price, output_price, cached_price, "litellm")


def check_prices(settings: Settings, roles: Iterable[str]) -> dict[str, Price]:
    """The price of every model of `roles` (fallbacks included); PriceUnknown names those without one."""
    known: dict[str, Price] = {}
    unknown: list[str] = []
    for role in roles:
        model_settings = settings.model_for(role)
        for model in (model_settings.model, *model_settings.fallbacks):
            price = price_for(model_settings, model)
            if price is None:
                unknown.append(f"{role}: {model}")
            else:
                known[f"{role}:{model}"] = price
    if unknown:
        raise PriceUnknown(unknown)
    return known
