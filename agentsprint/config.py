"""Settings from agentsprint.toml (or [tool.agentsprint] in pyproject.toml) with AGENTSPRINT_* overrides.

Plain pydantic + tomllib rather than pydantic-settings: the latter costs ~100 ms of import on every
CLI start (measured), and the override rules here are small.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentsprint.domain import ItemType, Priority, parse_duration
from agentsprint.offline import offline_env as offline_env  # public here; stdlib-only there
from agentsprint.redaction import register_secret_names

CONFIG_FILE = "agentsprint.toml"
STATE_DIR = ".agentsprint"
BACKLOG_DIR = "backlog"
ENV_PREFIX = "AGENTSPRINT_"


class ConfigError(Exception):
    """A configuration problem; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_by_name=True, validate_by_alias=True)


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Backend = Literal["builtin", "claude-code", "codex", "aider", "gemini-cli", "opencode", "command"]
READY_BACKENDS = ("builtin", "command", "aider", "claude-code", "codex", "gemini-cli", "opencode")
"""The backends that can run (agents/backends/registry.py has an adapter for each but "builtin")."""


class ModelSettings(_Section):
    """How one role talks to its model."""

    model: str = "openai/gpt-4.1-mini"
    """Any litellm model string."""
    api_base: str | None = None
    """Base URL of an OpenAI-compatible endpoint, per role."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key (the key itself is never stored)."""
    input_cost_per_token: float | None = Field(default=None, ge=0)
    """USD per input token; overrides litellm's price map."""
    output_cost_per_token: float | None = Field(default=None, ge=0)
    """USD per output token; overrides litellm's price map."""
    max_tokens: int = Field(default=4096, gt=0)
    """Most output tokens one reply may use (shrunk to fit what is left of a budget)."""
    temperature: float = Field(default=0.0, ge=0, le=2)
    fallbacks: list[str] = Field(default_factory=list)
    """Models tried in order when this one keeps failing."""
    backend: Backend = "builtin"
    """Who does the role's work: the built-in tool loop, or an external agent CLI run through the metering
    proxy (a named agent, or "command": the `command` template). The coder only, for now."""
    command: str | None = None
    """For backend "command": the command line to run, with {prompt_file} where the prompt's path goes; for a
    named agent: its executable, when it is not the agent's usual name on PATH."""
    subscription: bool = False
    """The key in `api_key_env` is a subscription login's token (a Claude plan: `claude setup-token`), not
    an API key: the metering proxy sends it as a bearer token, and the role's USD is imputed at list
    price (reported as imputed, never as money spent; USD budgets still apply to it)."""

    @model_validator(mode="after")
    def _backend_ready(self) -> ModelSettings:
        if self.backend not in READY_BACKENDS:
            raise ValueError(f'backend "{self.backend}" is not available yet: use backend = "command" with its '
                             'command line (docs/agents-external.md)')
        if self.subscription and self.backend == "builtin":
            raise ValueError("subscription = true is for an external agent's login: set backend to the agent "
                             "(the built-in roles call the provider with an API key)")
        if self.backend == "command" and (not self.command or "{prompt_file}" not in self.command):
            raise ValueError('backend "command" needs command = "... {prompt_file}" (where the prompt file goes)')
        return self


class RunSettings(_Section):
    parallel: int = Field(default=4, ge=1, le=64)
    """Items executed at once."""
    call_timeout: str = "120s"
    """Timeout of one model call."""
    base_branch: str = "main"
    """Branch item worktrees start from and approved work merges into."""
    num_retries: int = Field(default=3, ge=0, le=10)
    """Retries of a model call on 429/5xx/timeouts (exponential backoff with jitter)."""
    min_reply_tokens: int = Field(default=256, gt=0)
    """Smallest reply worth paying for; below it a call is refused and the item escalates (budget)."""
    token_safety_factor: float = Field(default=1.2, ge=1.0, le=3.0)
    """Multiplier on tiktoken's input estimate for models with other tokenizers."""
    max_budget_refusals: int = Field(default=3, ge=0)
    """Budget refusals the metering proxy answers an external agent before it stops the agent."""
    max_malformed: int = Field(default=3, ge=0)
    """Malformed handoffs answered and retried before the item escalates."""
    max_policy_blocks: int = Field(default=5, ge=1)
    """Tool calls in a row the policy refuses (a command or path it does not allow) before the item
    escalates with reason `policy`: a person decides whether the policy or the item should change."""
    max_coder_steps: int = Field(default=40, gt=0)
    """Tool calls a coder may make in one round."""
    loop_repeat_threshold: int = Field(default=3, ge=2)
    """Identical tool calls (or identical gate output / diff across rounds) that count as a loop."""
    command_timeout: str = "300s"
    """Timeout of a coder `run` command or a DoD command gate."""
    output_cap: int = Field(default=20000, gt=0)
    """Characters of command output kept (head and tail) for prompts and records."""
    gate_checkout: Literal["clean", "worktree"] = "clean"
    """Where command gates run: "clean" = a fresh checkout of the round's commit (files the coder left
    untracked or git-ignored cannot sway them); "worktree" = the coder's own worktree."""

    _v_call = field_validator("call_timeout", "command_timeout")(_check_duration)

    @property
    def call_timeout_seconds(self) -> float:
        return parse_duration(self.call_timeout)

    @property
    def command_timeout_seconds(self) -> float:
        return parse_duration(self.command_timeout)


class PolicySettings(_Section):
    allowed_commands: list[str] = Field(default_factory=lambda: ["pytest", "python", "ruff"])
    """Command prefixes the coder's `run` tool may start."""
    protected_paths: list[str] = Field(
        default_factory=lambda: ["tests/**", ".github/**", "backlog/**", "agentsprint.toml"]
    )
    """Glob patterns the coder may not change (so it cannot weaken what judges it)."""
    precedence: list[ItemType] = Field(
        default_factory=lambda: [
            ItemType.SECURITY,
            ItemType.BUG,
            ItemType.FEATURE,
            ItemType.REFACTOR,
            ItemType.PERFORMANCE,
            ItemType.CHORE,
        ]
    )
    """Merge order by item type when approved items conflict."""
    sandbox: Literal["bwrap", "none"] = "bwrap"
    """Where agent commands (the coder's `run` tool, command gates) execute: "bwrap" = in a bubblewrap
    sandbox (refused when bubblewrap is missing); "none" = directly on this machine, unconfined."""
    network: bool = False
    """Whether agent commands may use the network (in the bubblewrap sandbox; "none" cannot stop it)."""
    max_file_bytes: int = Field(default=1_000_000, gt=0)
    """The largest file (UTF-8 bytes) the coder may write with write_file or make with edit_file."""


class DatabaseSettings(_Section):
    url: str = f"sqlite:///{STATE_DIR}/agentsprint.db"
    """SQLAlchemy URL; relative SQLite paths are relative to the project root."""


class ReviewSettings(_Section):
    lines_per_hour: float = Field(default=400, gt=0)
    """Changed lines a reviewer gets through in an hour (sprint planning's review capacity, the retro's review load)."""
    approvers: list[str] = Field(default_factory=list)
    """Who may approve a merge or top up a budget: git names, emails or "Name <email>"; empty = anyone.
    A refused attempt is recorded in the audit log."""


class BacklogSettings(_Section):
    id_prefix: str = Field(default="AS", pattern=r"^[A-Z][A-Z0-9]*$")
    """Prefix of new item ids (`AS` gives AS-1, AS-2, ...)."""


DEFAULT_IMPORT_LABELS = {"bug": "bug", "enhancement": "feature", "security": "security",
                         "performance": "performance", "refactor": "refactor", "chore": "chore",
                         "documentation": "chore", "critical": "critical", "high": "high", "low": "low"}


class ImportSettings(_Section):
    labels: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_IMPORT_LABELS))
    """Tracker label -> item type or priority; a table here replaces these defaults."""
    type: ItemType = ItemType.FEATURE
    """Type of an imported item none of whose labels maps to a type."""
    priority: Priority = Priority.MEDIUM
    """Priority of an imported item none of whose labels maps to a priority."""
    template: str | None = None
    """Item template whose defaults (budget, DoD, scope) imported items take, e.g. "bug"."""

    @field_validator("labels")
    @classmethod
    def _labels_name_a_type_or_priority(cls, labels: dict[str, str]) -> dict[str, str]:
        """Refuse a mapping to anything but a type or a priority, naming the label."""
        known = [*ItemType, *Priority]
        for label, target in labels.items():
            if target not in known:
                raise ValueError(f"label {label!r} maps to {target!r}, which is neither a type nor a priority "
                                 f"({', '.join(known)})")
        return labels


class NotifySettings(_Section):
    webhook: str | None = None
    """URL that receives a signed JSON POST on awaiting_review, done, escalated, failed."""
    secret_env: str = "AGENTSPRINT_WEBHOOK_SECRET"
    """Environment variable holding the HMAC secret."""


class TelemetrySettings(_Section):
    otlp_endpoint: str | None = None
    """OTLP/HTTP base URL traces go to (`/v1/traces` is added); else OTEL_EXPORTER_OTLP_ENDPOINT; else none."""
    content: bool = False
    """Put tool-call arguments and results on the spans (redacted); off by default."""


class TuiSettings(_Section):
    keys: dict[str, str] = Field(default_factory=dict)
    """Key remapping of the TUI: binding id = key(s), e.g. `inbox = "i"` or `approve = "ctrl+a,A"`."""


DEFAULT_ROLES = ("supervisor", "coder", "qa")


class Settings(_Section):
    """All settings of one project."""

    models: dict[str, ModelSettings] = Field(
        default_factory=lambda: {role: ModelSettings() for role in DEFAULT_ROLES}
    )
    run: RunSettings = Field(default_factory=RunSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    backlog: BacklogSettings = Field(default_factory=BacklogSettings)
    import_: ImportSettings = Field(default_factory=ImportSettings, alias="import")
    """The [import] table (`import` is a Python keyword, hence the alias)."""
    tui: TuiSettings = Field(default_factory=TuiSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    root: Path = Field(default_factory=Path.cwd, exclude=True)
    """Project root (the folder holding agentsprint.toml / the git work tree)."""
    source: str = Field(default="(defaults)", exclude=True)
    """Where the settings came from, for error messages."""

    def model_for(self, role: str) -> ModelSettings:
        """The model settings of a role; security falls back to qa, any role to coder."""
        for name in (role, "qa" if role == "security" else role, "coder"):
            if name in self.models:
                return self.models[name]
        return ModelSettings()

    def fingerprint(self) -> str:
        """sha256 of the effective settings as canonical JSON (the database URL left out: it may hold a password)."""
        import hashlib

        effective = self.model_dump(mode="json", by_alias=True, exclude={"database"})
        return hashlib.sha256(json.dumps(effective, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def backlog_dir(self) -> Path:
        return self.root / BACKLOG_DIR

    @property
    def worktrees_dir(self) -> Path:
        return self.state_dir / "worktrees"

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute against the root."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.root / url[len(prefix) :])
        return url


def find_root(start: Path | None = None) -> Path:
    """The nearest folder upwards holding agentsprint.toml, else a git work tree, else `start`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file() or _has_tool_table(folder / "pyproject.toml"):
            return folder
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def _has_tool_table(pyproject: Path) -> bool:
    """Whether a pyproject.toml holds a [tool.agentsprint] table (cheap byte check, no parse)."""
    try:
        return pyproject.is_file() and b"[tool.agentsprint" in pyproject.read_bytes()
    except OSError:
        return False


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; ConfigError naming the file (and line, where there is one) otherwise."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                          "TOML files are UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _file_data(root: Path) -> tuple[dict[str, Any], str]:
    toml_path = root / CONFIG_FILE
    if toml_path.is_file():
        return _read_toml(toml_path), str(toml_path)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        data = _read_toml(pyproject).get("tool", {}).get("agentsprint")
        if isinstance(data, dict):
            return data, f"{pyproject} [tool.agentsprint]"
    return {}, "(defaults)"


def _env_value(raw: str) -> Any:
    text = raw.strip()
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return raw
    return raw


_LIST_KEYS = {("policy", "allowed_commands"), ("policy", "protected_paths"), ("policy", "precedence")}


def _split_list(value: Any) -> Any:
    """A comma-separated env value as a list (JSON lists pass through)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> list[str]:
    """Merge AGENTSPRINT_<SECTION>_<KEY> (and AGENTSPRINT_MODELS_<ROLE>_<KEY>) into `data`."""
    applied: list[str] = []
    sections = {info.alias or name for name, info in Settings.model_fields.items()} - {"root", "source", "models"}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section == "models":
            role, _, key = key.partition("_")
            if role and key:
                value = _split_list(_env_value(raw)) if key == "fallbacks" else _env_value(raw)
                _table(_table(data, "models", name), role, name)[key] = value
                applied.append(name)
        elif section in sections and key:
            value = _env_value(raw)
            if (section, key) in _LIST_KEYS:
                value = _split_list(value)
            _table(data, section, name)[key] = value
            applied.append(name)
    return applied


def _table(data: dict[str, Any], key: str, env_name: str) -> dict[str, Any]:
    """The sub-table `key` of `data`, created if missing; a non-table there is a ConfigError."""
    table = data.setdefault(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{key}: must be a table to take {env_name}, got {table!r}")
    return table


def _describe(exc: ValidationError, source: str, env_names: list[str]) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        lines.append(f"{source}: {key}: {err['msg']}")
    if env_names:
        lines.append(f"(environment overrides in effect: {', '.join(sorted(env_names))})")
    return "\n".join(lines)


def load_settings(root: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings of the project at `root` (found upwards from the cwd when None)."""
    project_root = root if root is not None else find_root()
    data, source = _file_data(project_root)
    env_names = _apply_env(data, dict(os.environ if environ is None else environ))
    if "models" in data and isinstance(data["models"], dict):
        defaults: dict[str, Any] = {role: {} for role in DEFAULT_ROLES}
        data["models"] = {**defaults, **data["models"]}
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, env_names)) from exc
    settings.root = project_root
    settings.source = source
    register_secret_names(m.api_key_env for m in settings.models.values() if m.api_key_env)
    return settings


def templates_dir() -> Path:
    """Item, prompt and report templates: shipped inside the wheel, or the repo's templates/."""
    packaged = Path(__file__).parent / "_templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"
