"""SQLModel tables. Timestamps are UTC epoch seconds (float): portable across SQLite and Postgres,
exact, and what the retro computes with.

Rows never leave the store package: repositories convert them to domain objects or plain dicts.
"""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class MigrationRow(SQLModel, table=True):
    __tablename__ = "schema_migrations"
    name: str = Field(primary_key=True)
    applied_at: float


class ItemStateRow(SQLModel, table=True):
    """Live state of an item (its definition lives in backlog/<ID>-*.md)."""

    __tablename__ = "item_state"
    item_id: str = Field(primary_key=True)
    status: str = Field(index=True)
    sprint: str | None = Field(default=None, index=True)
    round: int = 0
    reason: str | None = None  # escalation reason / failure reason / stop reason
    detail: str | None = None  # last error or human-readable explanation
    branch: str | None = None
    attempt: int = 0  # how many times a workflow was started for this item
    workflow_id: str | None = None  # the durable workflow executing (or last executed) it
    pending_findings: str | None = None  # JSON list: findings the next round starts with (human reject)
    rounds_override: int | None = None  # round cap of the next attempt (escalations retry --add-rounds)
    paused_seconds: float = 0.0  # time spent stopped, not counted against the item's wall-clock budget
    # snapshot of the definition when it last ran: the retro must not depend on later file edits
    title: str = ""
    type: str = ""
    priority: str = ""
    value: int = 0
    budget_json: str = "{}"
    updated_at: float


class ItemTransitionRow(SQLModel, table=True):
    """Every status change, with who made it: review queue, waits and wall time come from here."""

    __tablename__ = "item_transitions"
    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(index=True)
    from_status: str | None = None
    to_status: str
    at: float = Field(index=True)
    actor: str = "system"  # system | runner | human:<name> | worker:<id>
    reason: str | None = None
    run_id: str | None = None


class SprintRow(SQLModel, table=True):
    __tablename__ = "sprints"
    name: str = Field(primary_key=True)
    tokens: int | None = None
    usd: float | None = None
    review_hours: float | None = None
    created_at: float
    started_at: float | None = None
    closed_at: float | None = None


class SprintItemRow(SQLModel, table=True):
    __tablename__ = "sprint_items"
    sprint: str = Field(primary_key=True)
    item_id: str = Field(primary_key=True)
    added_at: float
    forecast_tokens: int | None = None
    forecast_usd: float | None = None


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    id: str = Field(primary_key=True)
    started_at: float
    finished_at: float | None = None
    sprint: str | None = None
    mode: str = "normal"  # normal | ci | shadow
    status: str = "running"  # running | finished | stopped | crashed
    host: str = ""
    pid: int = 0


class BudgetRow(SQLModel, table=True):
    """Limit, settled spend and open reservations of one budget scope ("item:AS-3", "sprint:S1", "epic:x").

    Reservations are taken with one conditional UPDATE (spent + reserved + ask <= limit), so two processes
    sharing a scope cannot both take the last tokens.
    """

    __tablename__ = "budgets"
    scope: str = Field(primary_key=True)
    limit_tokens: int | None = None
    limit_usd: float | None = None
    spent_tokens: int = 0
    spent_usd: float = 0.0
    reserved_tokens: int = 0
    reserved_usd: float = 0.0
    updated_at: float


class ModelCallRow(SQLModel, table=True):
    """One model call: its reservation, then its settled usage. Spend per item, round, role and model."""

    __tablename__ = "model_calls"
    id: int | None = Field(default=None, primary_key=True)
    item_id: str | None = Field(default=None, index=True)
    run_id: str | None = None
    round: int = 0
    role: str = ""
    model: str = ""
    scopes_json: str = "[]"  # budget scopes this call is charged to
    requested_max_tokens: int = 0
    granted_max_tokens: int = 0
    estimated_input_tokens: int = 0
    reserved_tokens: int = 0
    reserved_usd: float = 0.0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    latency_ms: float | None = None
    retries: int = 0
    # "<workflow id>:<step id>" of the durable step that made the call: a replayed step returns the
    # settled reply instead of paying for the call again
    idempotency_key: str | None = Field(default=None, index=True)
    # reserved (in flight) | ok | error | refused | interrupted (its process ended in flight: charged at
    # the reservation when the item resumed) | duplicate (a second settlement under a settled key, migration 004)
    outcome: str = Field(default="reserved", index=True)
    error: str | None = None
    started_at: float
    finished_at: float | None = None
    request_json: str = "{}"  # redacted
    response_json: str = "{}"  # redacted
    attributes_json: str = "{}"  # OpenTelemetry GenAI names: gen_ai.request.model, gen_ai.usage.*
    # what was wrong with the usage the provider reported (negative, above max_tokens, far above the
    # estimate); such a call is charged at least its reservation (migration 003)
    usage_anomaly: str | None = None


class HandoffRow(SQLModel, table=True):
    """A reply where an agent had to call one of the offered tools; malformed ones are counted."""

    __tablename__ = "handoffs"
    id: int | None = Field(default=None, primary_key=True)
    item_id: str | None = Field(default=None, index=True)
    run_id: str | None = None
    round: int = 0
    role: str = ""
    model: str = ""
    call_id: int | None = None
    tool: str | None = None
    valid: bool = True
    error: str | None = None
    at: float


class ReviewRow(SQLModel, table=True):
    """A human review decision; requested_at is when the item entered awaiting_review."""

    __tablename__ = "reviews"
    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(index=True)
    decision: str  # approve | reject
    comment: str | None = None
    reviewer: str = ""
    requested_at: float | None = None
    decided_at: float
    changed_lines: int = 0


class EscalationRow(SQLModel, table=True):
    __tablename__ = "escalations"
    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(index=True)
    reason: str  # budget | rounds | time | loop | supervisor | conflict | policy | failed
    detail: str = ""
    package_json: str = "{}"
    created_at: float
    resolved_at: float | None = None
    resolution: str | None = None  # retried | dropped | approved


class EventRow(SQLModel, table=True):
    """Append-only audit log; hash = sha256(prev_hash + canonical JSON of the event)."""

    __tablename__ = "events"
    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    kind: str = Field(index=True)
    item_id: str | None = Field(default=None, index=True)
    run_id: str | None = None
    actor: str = "system"
    data_json: str = "{}"
    prev_hash: str = ""
    hash: str = ""


class WorkerRow(SQLModel, table=True):
    """A process serving the run queue; a stale heartbeat lets another worker recover its items."""

    __tablename__ = "workers"
    executor_id: str = Field(primary_key=True)
    host: str = ""
    pid: int = 0
    started_at: float
    heartbeat_at: float
    recovered_by: str | None = None
    stopped_at: float | None = None


class RunLockRow(SQLModel, table=True):
    """Who holds a project's one `agentsprint run` (migration 005): a second one is refused while it lives."""

    __tablename__ = "run_lock"
    name: str = Field(primary_key=True)  # always "run": one holder per database, hence per project
    token: str  # the holder's own random id: only it releases or beats, a take-over replaces it
    host: str
    pid: int
    process: str | None = None  # boot id and start time of `pid` (Linux), so a reused pid is not the holder
    since: float
    heartbeat_at: float


class WebhookRow(SQLModel, table=True):
    """A webhook delivery (an outbox row): kept until delivered or given up, so a killed process's are sent later."""

    __tablename__ = "webhook_outbox"
    delivery_id: str = Field(primary_key=True)
    item_id: str = Field(index=True)
    event: str
    body: str
    """The exact JSON that is signed and posted (the URL and secret come from the settings at send time)."""
    created_at: float
    claimed_by: str | None = None
    """`host:pid` of the process sending it."""
    claimed_at: float | None = None
    attempts: int = 0
    delivered_at: float | None = None
    failed_at: float | None = None
    last_error: str | None = None

ALL_TABLES = [
    MigrationRow,
    ItemStateRow,
    ItemTransitionRow,
    SprintRow,
    SprintItemRow,
    RunRow,
    BudgetRow,
    ModelCallRow,
    HandoffRow,
    ReviewRow,
    EscalationRow,
    EventRow,
    WorkerRow,
    WebhookRow,
]
