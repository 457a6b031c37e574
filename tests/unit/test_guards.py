"""Loop guards: repetition within a round, the same failure across rounds."""

from __future__ import annotations

import pickle

import pytest

from agentsprint.agents.errors import Escalate, LoopDetected
from agentsprint.agents.guards import LoopGuard, RoundGuard, call_key, fingerprint
from agentsprint.domain import EscalationReason


def test_same_call_nudges_then_trips() -> None:
    guard = LoopGuard(threshold=3)
    seen = [guard.observe("read_file", {"path": "a.py"}) for _ in range(3)]
    assert seen == [None, None, "nudge"]
    assert guard.pattern is not None and "3 times in a row" in guard.pattern
    with pytest.raises(LoopDetected) as caught:
        guard.observe("read_file", {"path": "a.py"})
    assert caught.value.reason is EscalationReason.LOOP
    assert "after a nudge" in caught.value.detail


def test_argument_order_does_not_matter_but_values_do() -> None:
    assert call_key("run", {"a": 1, "b": 2}) == call_key("run", {"b": 2, "a": 1})
    guard = LoopGuard(threshold=2)
    assert guard.observe("read_file", {"path": "a.py"}) is None
    assert guard.observe("read_file", {"path": "b.py"}) is None
    assert guard.observe("read_file", {"path": "a.py"}) is None


def test_alternating_calls_trip_after_twice_the_threshold() -> None:
    guard = LoopGuard(threshold=2)
    calls = [("run", {"command": "pytest"}), ("read_file", {"path": "a"})] * 2
    assert [guard.observe(name, args) for name, args in calls] == [None, None, None, "nudge"]
    assert guard.pattern is not None and "alternating" in guard.pattern
    with pytest.raises(LoopDetected):
        guard.observe(*calls[0])


def test_progress_between_repeats_is_not_a_loop() -> None:
    guard = LoopGuard(threshold=3)
    for n in range(20):
        assert guard.observe("edit_file", {"path": "a", "old": str(n), "new": str(n + 1)}) is None


def test_round_guard_trips_on_the_same_gate_failure() -> None:
    guard = RoundGuard(threshold=2)
    guard.observe(fingerprint("FAILED test_x - 1 failed in 0.31s"), "diff-1")
    with pytest.raises(LoopDetected, match="same gate failure"):
        guard.observe(fingerprint("FAILED test_x - 1 failed in 0.47s"), "diff-2")


def test_round_guard_trips_on_the_same_diff_and_survives_serialization() -> None:
    guard = RoundGuard(threshold=3)
    guard.observe(None, "d")
    guard.observe("g1", "d")
    restored = RoundGuard.model_validate_json(guard.model_dump_json())
    with pytest.raises(LoopDetected, match="same diff"):
        restored.observe(None, "d")


def test_round_guard_passes_changing_rounds() -> None:
    guard = RoundGuard(threshold=2)
    for n in range(5):
        guard.observe(f"gate-{n}", f"diff-{n}")
    assert guard.diff_hashes == [f"diff-{n}" for n in range(5)]


def test_fingerprint_masks_volatile_parts_only() -> None:
    assert fingerprint("at 0x7f00ab in /tmp/pytest-1/x.py took 2.5s") == fingerprint(
        "at 0x7f99cd in /tmp/pytest-9/x.py took 3s"
    )
    assert fingerprint("assert 1 == 2") != fingerprint("assert 1 == 3")


def test_escalations_pickle_with_their_fields() -> None:
    loop = pickle.loads(pickle.dumps(LoopDetected("same call")))
    assert isinstance(loop, LoopDetected) and loop.detail == "same call"
    esc = pickle.loads(pickle.dumps(Escalate("budget", "out of tokens")))
    assert esc.reason is EscalationReason.BUDGET and str(esc) == "budget: out of tokens"
