"""Pure domain types: items, budgets, DoD gates, sprints and the status machine.

Nothing here does I/O; the backlog parser, the store and the runner all speak these types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Status(StrEnum):
    """Live status of an item; the coarse file status is one of todo, done, dropped."""

    TODO = "todo"
    PLANNED = "planned"
    RUNNING = "running"
    AWAITING_REVIEW = "awaiting_review"
    DONE = "done"
    ESCALATED = "escalated"
    FAILED = "failed"
    STOPPED = "stopped"
    DROPPED = "dropped"


FILE_STATUSES = frozenset({Status.TODO, Status.DONE, Status.DROPPED})

# Which live-status changes are allowed; anything else is a bug the store refuses.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.TODO: frozenset({Status.PLANNED, Status.RUNNING, Status.DROPPED, Status.DONE}),
    Status.PLANNED: frozenset({Status.TODO, Status.RUNNING, Status.STOPPED, Status.DROPPED}),
    Status.RUNNING: frozenset(
        # todo: a shadow run ends by putting the item back as it was (its outcome is in the events)
        {Status.AWAITING_REVIEW, Status.DONE, Status.ESCALATED, Status.FAILED, Status.STOPPED, Status.TODO}
    ),
    Status.AWAITING_REVIEW: frozenset(
        {Status.DONE, Status.RUNNING, Status.PLANNED, Status.ESCALATED, Status.DROPPED}
    ),
    Status.DONE: frozenset(),
    Status.ESCALATED: frozenset({Status.RUNNING, Status.DROPPED, Status.PLANNED, Status.TODO}),
    Status.FAILED: frozenset({Status.RUNNING, Status.DROPPED, Status.PLANNED, Status.TODO}),
    # A stop that lands while an item's final step runs must not undo that step's real outcome.
    Status.STOPPED: frozenset(
        {Status.RUNNING, Status.DROPPED, Status.PLANNED, Status.TODO, Status.AWAITING_REVIEW, Status.DONE,
         Status.ESCALATED, Status.FAILED}
    ),
    Status.DROPPED: frozenset({Status.TODO}),
}


def can_transition(current: Status, target: Status) -> bool:
    """True when the status machine allows moving from `current` to `target`."""
    return target in TRANSITIONS[current]


class ItemType(StrEnum):
    BUG = "bug"
    FEATURE = "feature"
    REFACTOR = "refactor"
    CHORE = "chore"
    SECURITY = "security"
    PERFORMANCE = "performance"


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


PRIORITY_RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class EscalationReason(StrEnum):
    BUDGET = "budget"
    ROUNDS = "rounds"
    TIME = "time"
    LOOP = "loop"
    SUPERVISOR = "supervisor"
    CONFLICT = "conflict"
    POLICY = "policy"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration such as "30m", "90s", "1.5h" or a bare number of seconds."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration: {text!r}")
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r} (use e.g. 90s, 30m, 2h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


class Budget(BaseModel):
    """Compute budget of an item, epic or sprint; None means no cap of that kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: int | None = Field(default=None, ge=0)
    usd: float | None = Field(default=None, ge=0)
    time: str | None = None  # kept as written ("30m") so the file round-trips
    rounds: int | None = Field(default=None, ge=0)

    @field_validator("time")
    @classmethod
    def _time_is_a_duration(cls, value: str | None) -> str | None:
        """Refuse a time budget parse_duration cannot read, rather than failing at run time."""
        if value is not None:
            parse_duration(value)
        return value

    @property
    def time_seconds(self) -> float | None:
        return None if self.time is None else parse_duration(self.time)


class GateKind(StrEnum):
    COMMAND = "command"  # "tests: pytest -q", "lint: ruff check", any "name: command"
    SECRETS = "secrets"
    SECURITY = "security"  # "security: agent"
    REVIEW = "review"  # "review: human"


class Gate(BaseModel):
    """One entry of an item's definition of done."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: GateKind
    name: str
    command: str | None = None
    value: str | None = None  # "human" for review, "agent" for security

    def to_entry(self) -> str | dict[str, str]:
        """The YAML form this gate is written back as."""
        if self.kind is GateKind.SECRETS:
            return "secrets"
        if self.kind is GateKind.COMMAND:
            return {self.name: self.command or ""}
        return {self.name: self.value or ""}


BUILTIN_GATES = {"secrets", "security", "review"}


def parse_gate(entry: object) -> Gate:
    """A Gate from one DoD list entry (a bare word or a one-key mapping); ValueError if unknown."""
    if isinstance(entry, str):
        if ":" in entry:
            name, _, rest = entry.partition(":")
            return parse_gate({name.strip(): rest.strip()})
        if entry == "secrets":
            return Gate(kind=GateKind.SECRETS, name="secrets")
        raise ValueError(
            f"unknown DoD entry {entry!r} (expected secrets, review: human, security: agent, or name: command)"
        )
    if isinstance(entry, dict) and len(entry) == 1:
        name, value = next(iter(entry.items()))
        name = str(name).strip()
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"DoD entry {name!r} needs a non-empty text value")
        value = value.strip()
        if name == "review":
            if value != "human":
                raise ValueError(f"review gate must be 'review: human', got {value!r}")
            return Gate(kind=GateKind.REVIEW, name="review", value="human")
        if name == "security":
            if value != "agent":
                raise ValueError(f"security gate must be 'security: agent', got {value!r}")
            return Gate(kind=GateKind.SECURITY, name="security", value="agent")
        if name == "secrets":
            raise ValueError("secrets gate takes no value: write it as a bare 'secrets'")
        if not re.fullmatch(r"[A-Za-z][\w.-]*", name):
            raise ValueError(f"bad DoD gate name {name!r}")
        return Gate(kind=GateKind.COMMAND, name=name, command=value)
    raise ValueError(f"unknown DoD entry {entry!r}")


EPIC_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""An epic's name: letters, digits, `_`, `.` and `-`, not starting with `.` (no path of any kind)."""


class Item(BaseModel):
    """A backlog item as defined in its Markdown file."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z][A-Z0-9]*-\d+$")
    title: str = Field(min_length=1)
    type: ItemType = ItemType.FEATURE
    priority: Priority = Priority.MEDIUM
    value: int = Field(default=0, ge=0)
    status: Status = Status.TODO
    epic: str | None = Field(default=None, pattern=EPIC_NAME)
    """A plain name: `backlog/epics/<epic>.yml` must not leave that folder."""
    source: str | None = Field(default=None, min_length=1, max_length=2000, pattern=r"^[^\r\n]+$")
    """Where the item came from (an issue's URL): `agentsprint import` skips a source it already has."""
    labels: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    scope: list[str] = Field(default_factory=list)
    budget: Budget = Field(default_factory=Budget)
    dod: list[Gate] = Field(default_factory=list)
    body: str = ""

    @property
    def needs_human_review(self) -> bool:
        return any(g.kind is GateKind.REVIEW for g in self.dod)

    @property
    def needs_security_review(self) -> bool:
        return any(g.kind is GateKind.SECURITY for g in self.dod)

    @property
    def command_gates(self) -> list[Gate]:
        return [g for g in self.dod if g.kind is GateKind.COMMAND]

    @property
    def acceptance_criteria(self) -> list[str]:
        """Bullets under a "## Acceptance criteria" heading of the body."""
        lines = self.body.splitlines()
        criteria: list[str] = []
        inside = False
        for line in lines:
            if line.strip().lower().startswith("## "):
                inside = line.strip().lower() == "## acceptance criteria"
                continue
            bullet = line.strip()
            if inside and bullet[:2] in ("- ", "* "):
                criteria.append(bullet[2:].strip())
        return criteria


SPRINT_NAME = EPIC_NAME
"""A sprint's name: the same plain names as epics (it becomes `backlog/sprints/<name>.yml`)."""


class SprintState(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    CLOSED = "closed"


class Capacity(BaseModel):
    """What a sprint can spend and review; None means no cap of that kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: int | None = Field(default=None, ge=0)
    usd: float | None = Field(default=None, ge=0)
    review_hours: float | None = Field(default=None, ge=0)


class Sprint(BaseModel):
    """A sprint as defined in `backlog/sprints/<name>.yml`: items sharing one capacity."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SPRINT_NAME)
    goal: str = ""
    start: date | None = None
    end: date | None = None
    state: SprintState = SprintState.PLANNED
    capacity: Capacity = Field(default_factory=Capacity)
    items: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Sprint:
        """Refuse an end date before the start date."""
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def budget(self) -> Budget:
        """The token and USD capacity as a Budget (the sprint's budget scope limits)."""
        return Budget(tokens=self.capacity.tokens, usd=self.capacity.usd)


class Epic(BaseModel):
    """An epic as defined in `backlog/epics/<name>.yml`: a budget over the items that name it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=EPIC_NAME)
    title: str = ""
    budget: Budget = Field(default_factory=Budget)


@dataclass(frozen=True)
class DoneRecord:
    """What one done item cost, the history forecasts are made from (labels come from its file)."""

    item_id: str
    type: str
    tokens: int
    usd: float
    rounds: int
    changed_lines: int | None
    wall_seconds: float | None
    labels: tuple[str, ...] = ()
