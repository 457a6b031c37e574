"""Who is calling the model and which budget scopes pay for it (the gateway's and the call records' input)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CallContext(BaseModel):
    """Who is calling and which budget scopes pay for it."""

    role: str
    item_id: str | None = None
    run_id: str | None = None
    round: int = 0
    scopes: list[str] = Field(default_factory=list)
    max_tokens: int | None = None
    """Output cap for this call; default: the role's `max_tokens`."""
