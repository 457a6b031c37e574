"""Loop guards: pure, deterministic detectors of an agent going round in circles.

`LoopGuard` watches the tool calls within one round; `RoundGuard` watches what each round produced.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentsprint.agents.errors import LoopDetected
from agentsprint.text import shorten

__all__ = ["LoopDetected", "LoopGuard", "RoundGuard", "call_key", "fingerprint"]


def call_key(name: str, args: dict[str, Any]) -> str:
    """A canonical key of one tool call: same name and same arguments give the same key."""
    return name + json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class LoopGuard:
    """Within a round: the same call `threshold` times in a row, or A/B/A/B over 2*threshold calls."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.keys: list[str] = []
        self.nudged = False
        self.pattern: str | None = None  # what the last trip saw, for the nudge message

    def observe(self, name: str, args: dict[str, Any]) -> Literal["nudge"] | None:
        """Record a call; "nudge" the first time a loop shows, LoopDetected the time after."""
        self.keys.append(call_key(name, args))
        pattern = self.pattern = self._pattern()
        if pattern is None:
            return None
        if self.nudged:
            raise LoopDetected(f"{pattern} (still repeating after a nudge)")
        self.nudged = True
        return "nudge"

    def _pattern(self) -> str | None:
        keys, n = self.keys, self.threshold
        last = keys[-n:]
        if len(last) == n and len(set(last)) == 1:
            return f"the same call repeated {n} times in a row: {_short(last[0])}"
        window = keys[-2 * n :]
        if (
            len(window) == 2 * n
            and window[0] != window[1]
            and all(window[i] == window[i % 2] for i in range(2 * n))
        ):
            return f"two calls alternating for {2 * n} steps: {_short(window[0])} / {_short(window[1])}"
        return None


def _short(key: str) -> str:
    return shorten(key, 160)


_VOLATILE = [
    (re.compile(r"\b\d+(?:\.\d+)?\s*(?:ms|s|sec|seconds)\b"), "<time>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<addr>"),
    (re.compile(r"/tmp/[^\s:'\"]+"), "<tmp>"),
]


def fingerprint(text: str) -> str:
    """sha256 of text with timings, addresses and temp paths masked, so reruns of one failure match."""
    for pattern, mask in _VOLATILE:
        text = pattern.sub(mask, text)
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


class RoundGuard(BaseModel):
    """Across rounds: the same failing gate output, or the same diff, `threshold` times -> LoopDetected.

    A pydantic model so the runner can keep it in durable state between rounds.
    """

    threshold: int = Field(ge=2)
    gate_hashes: list[str] = Field(default_factory=list)
    diff_hashes: list[str] = Field(default_factory=list)

    def observe(self, failing_gate_hash: str | None, diff_hash: str | None) -> None:
        """Record one round's failing gate output hash (None if gates passed) and diff hash."""
        if failing_gate_hash is not None:
            self.gate_hashes.append(failing_gate_hash)
            if self.gate_hashes.count(failing_gate_hash) >= self.threshold:
                raise LoopDetected(f"the same gate failure in {self.threshold} rounds")
        if diff_hash is not None:
            self.diff_hashes.append(diff_hash)
            if self.diff_hashes.count(diff_hash) >= self.threshold:
                raise LoopDetected(f"the same diff in {self.threshold} rounds")
