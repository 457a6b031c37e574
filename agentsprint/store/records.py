"""Typed records of an item's history as the store keeps them: rounds, spend, escalation packages.

Rounds and packages are stored as JSON (events and escalations); these models are what leaves the
store, so readers use attributes instead of string keys. `model_dump()` gives back the stored JSON
(what `--json` prints). Records written by older versions load with defaults for missing fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class RoleSpend(_Record):
    """Spend of an item by one role and model (settled, and reserved for calls in flight)."""

    role: str
    model: str
    calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class RoundSpend(_Record):
    """Spend of one round of an item."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0


class RoundRecord(_Record):
    """One round: the plan, what the coder changed, the gates, the verdict and its reasons."""

    round: int
    plan: dict[str, Any] | None = None
    coder_summary: str = ""
    sha: str | None = None
    diff: str = ""
    diff_hash: str | None = None
    changed_files: list[str] = []
    added: int = 0
    removed: int = 0
    gates: list[dict[str, Any]] = []
    verdict: str = ""
    reasons: list[str] = []
    agent_transcript: str | None = None
    """An external agent's own record of the round (redacted, capped)."""
    partial: bool = False
    """The round the item stopped in (escalated mid-round): no verdict, the tool calls made so far."""
    tool_calls: list[dict[str, Any]] | None = None
    spend: RoundSpend | None = None

    @property
    def changed_lines(self) -> int:
        return self.added + self.removed

    def to_json(self) -> dict[str, Any]:
        """As stored: every field, but the optional ones only when set."""
        return self.model_dump(exclude=_unset(self, ("agent_transcript", "tool_calls", "spend")))


class EscalationPackage(_Record):
    """Everything a human needs to pick an escalated item up."""

    item_id: str
    title: str = ""
    reason: str = ""
    detail: str = ""
    branch: str | None = None
    worktree: str | None = None
    head: str | None = None
    plan: dict[str, Any] | None = None
    rounds: list[RoundRecord] = []
    spend: list[RoleSpend] = []
    budget: dict[str, Any] = {}
    item_diff: str | None = None
    """A merge conflict: the item's changes, the base's changes to the same files, the files."""
    base_diff: str | None = None
    conflicts: list[str] | None = None

    def last_finished_round(self) -> RoundRecord | None:
        """The last round that reached a verdict (not the unfinished one the item stopped in)."""
        finished = [r for r in self.rounds if not r.partial]
        return finished[-1] if finished else None

    def to_json(self) -> dict[str, Any]:
        """As stored and printed by `--json`: every field, but a conflict's only for a conflict."""
        data = self.model_dump(exclude={"rounds", *_unset(self, ("item_diff", "base_diff", "conflicts"))})
        return {**data, "rounds": [r.to_json() for r in self.rounds]}


def _unset(record: BaseModel, names: tuple[str, ...]) -> set[str]:
    return {name for name in names if getattr(record, name) is None}
