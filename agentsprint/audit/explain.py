"""The policy explains itself: the effective policy, and which rule allows or refuses a command or a path."""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from typing import Any

from agentsprint import policy as pol
from agentsprint.config import Settings
from agentsprint.domain import Item


@dataclass(frozen=True)
class Ruling:
    """One rule's answer about a command or a path: allowed or not, the rule, and why."""

    subject: str  # command | path
    allowed: bool
    rule: str
    detail: str


def effective_policy(settings: Settings) -> dict[str, Any]:
    """What the coder works under, and who may approve, as the settings in force say."""
    p = settings.policy
    return {"source": settings.source, "allowed_commands": list(p.allowed_commands),
            "protected_paths": list(p.protected_paths), "sandbox": p.sandbox, "network": p.network,
            "max_file_bytes": p.max_file_bytes, "precedence": [str(t) for t in p.precedence],
            "approvers": list(settings.review.approvers)}


def _prefix(argv: list[str], allowed: list[str]) -> str:
    return next(p for p in allowed if shlex.split(p) and argv[: len(shlex.split(p))] == shlex.split(p))


def _sandbox(settings: Settings) -> Ruling:
    if settings.policy.sandbox == "none":
        return Ruling("command", True, "sandbox", 'runs directly on this machine, unconfined (sandbox = "none")')
    network = "with" if settings.policy.network else "without"
    return Ruling("command", True, "sandbox", f"runs in bubblewrap: only the worktree writable, private /tmp, "
                                              f"{network} network, a scrubbed environment")


def check_command(settings: Settings, command: str) -> list[Ruling]:
    """Whether the coder's run tool (and a command gate) may start `command`, and where it would run."""
    allowed = list(settings.policy.allowed_commands)
    try:
        argv = pol.check_command(command, allowed)
    except pol.PolicyViolation as exc:
        return [Ruling("command", False, "allowed_commands", exc.detail)]
    return [Ruling("command", True, "allowed_commands", f"starts with the allowed prefix {_prefix(argv, allowed)!r}"),
            _sandbox(settings)]


def _confined(settings: Settings, path: str) -> Ruling:
    try:
        pol.resolve_path(settings.root, path)
    except pol.PolicyViolation as exc:
        return Ruling("path", False, "confinement", exc.detail)
    return Ruling("path", True, "confinement", "inside the worktree")


def _protected(settings: Settings, path: str) -> Ruling:
    hit = next((p for p in settings.policy.protected_paths if pol.matches_any(path, [p])), None)
    if hit is None:
        return Ruling("path", True, "protected_paths", "matches no protected pattern")
    return Ruling("path", False, "protected_paths", f"matches {hit!r}: a change to it fails the protected-path gate")


def _scope(item: Item, path: str) -> Ruling:
    if not item.scope:
        return Ruling("path", True, f"scope of {item.id}", "the item has no scope: the whole repository")
    if pol.matches_any(path, item.scope):
        return Ruling("path", True, f"scope of {item.id}", f"inside {', '.join(item.scope)}")
    return Ruling("path", False, f"scope of {item.id}",
                  f"outside {', '.join(item.scope)}: a change to it fails the scope gate")


def check_path(settings: Settings, path: str, item: Item | None = None) -> list[Ruling]:
    """Whether the coder may write `path` (for `item`, if given), rule by rule."""
    confined = _confined(settings, path)
    if not confined.allowed:
        return [confined]
    size = Ruling("path", True, "max_file_bytes", f"files up to {settings.policy.max_file_bytes} bytes")
    return [confined, _protected(settings, path), *([_scope(item, path)] if item else []), size]


def as_json(rulings: list[Ruling]) -> list[dict[str, Any]]:
    """The rulings as plain dicts."""
    return [asdict(r) for r in rulings]
