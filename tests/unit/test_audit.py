"""The audit chain on real SQLite: every kind of tampering is detected and located, anchors catch the rest."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from agentsprint.audit import anchors
from agentsprint.audit.chain import Verdict
from agentsprint.audit.verify import verify
from agentsprint.store import Store
from agentsprint.store.events import append_event, event_hash

KINDS = ["run.start", "item.status", "model.call", "tool.call", "round", "review", "budget.added",
         "item.status", "model.call", "run.finish"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'agentsprint.db'}")
    with opened.session() as session:
        for n, kind in enumerate(KINDS, 1):
            append_event(session, kind, item_id="AS-1", actor="runner", data={"n": n, "text": "évent"})
    yield opened
    opened.close()


def sql(store: Store, statement: str, **params: object) -> list[tuple[object, ...]]:
    with store.engine.begin() as conn:
        result = conn.execute(text(statement), params)
        return [tuple(row) for row in result] if result.returns_rows else []


def rehash_from(store: Store, seq: int) -> None:
    """What a careful forger does: recompute every hash from `seq` on so that the chain is consistent."""
    rows = sql(store, "SELECT id, at, kind, item_id, run_id, actor, data_json FROM events WHERE id >= :s "
                      "ORDER BY id", s=seq)
    prev = str(sql(store, "SELECT hash FROM events WHERE id < :s ORDER BY id DESC LIMIT 1", s=seq)[0][0])
    for row_id, at, kind, item_id, run_id, actor, data_json in rows:
        digest = event_hash(prev, at, kind, item_id, run_id, actor, data_json)  # type: ignore[arg-type]
        sql(store, "UPDATE events SET prev_hash = :p, hash = :h WHERE id = :i", p=prev, h=digest, i=row_id)
        prev = digest


def broken(verdict: Verdict) -> tuple[int, str, str]:
    assert verdict.broken is not None, "the tampering went unnoticed"
    return verdict.broken.seq, verdict.broken.kind, verdict.broken.problem


def test_intact_chain_verifies_and_reports_its_head(store: Store) -> None:
    verdict = verify(store)
    last_hash = sql(store, "SELECT hash FROM events WHERE id = 10")[0][0]
    assert (verdict.checked, verdict.broken, verdict.head_seq, verdict.head_hash) == (10, None, 10, last_hash)


def test_an_edited_event_is_named(store: Store) -> None:
    sql(store, "UPDATE events SET data_json = :d WHERE id = 5", d='{"n":99,"text":"évent"}')
    assert broken(verify(store)) == (5, "round", "altered")
    assert verify(store).checked == 4


def test_an_edited_and_rehashed_event_is_named(store: Store) -> None:
    sql(store, "UPDATE events SET actor = 'human:mallory' WHERE id = 6")
    row = sql(store, "SELECT prev_hash, at, kind, item_id, run_id, actor, data_json FROM events WHERE id = 6")[0]
    sql(store, "UPDATE events SET hash = :h WHERE id = 6", h=event_hash(*row))  # type: ignore[arg-type]
    verdict = verify(store)
    assert broken(verdict) == (6, "review", "altered")
    assert verdict.broken is not None and "re-hashed" in verdict.broken.detail


def test_a_changed_kind_is_named(store: Store) -> None:
    sql(store, "UPDATE events SET kind = 'note' WHERE id = 3")
    assert broken(verify(store)) == (3, "note", "altered")


def test_a_deleted_event_is_located(store: Store) -> None:
    sql(store, "DELETE FROM events WHERE id IN (4, 5)")
    verdict = verify(store)
    assert broken(verdict) == (6, "review", "deleted")
    assert verdict.broken is not None and "#4 to #5" in verdict.broken.detail


def test_deleting_the_first_event_is_located(store: Store) -> None:
    sql(store, "DELETE FROM events WHERE id = 1")
    assert broken(verify(store)) == (2, "item.status", "deleted")


def test_reordered_events_are_named(store: Store) -> None:
    columns = "at, kind, item_id, run_id, actor, data_json, prev_hash, hash"
    sql(store, f"CREATE TEMP TABLE swap AS SELECT id, {columns} FROM events WHERE id IN (4, 5)")
    for target, source in ((4, 5), (5, 4)):
        sql(store, f"UPDATE events SET ({columns}) = (SELECT {columns} FROM swap WHERE id = :s) WHERE id = :t",
            s=source, t=target)
    assert broken(verify(store)) == (4, "round", "reordered")


def test_an_inserted_event_is_named_even_with_a_valid_hash(store: Store) -> None:
    sql(store, "UPDATE events SET id = id + 100 WHERE id >= 5")
    prev = str(sql(store, "SELECT hash FROM events WHERE id = 4")[0][0])
    data_json = '{"decision":"approve"}'
    digest = event_hash(prev, 1.0, "review", "AS-1", None, "human:mallory", data_json)
    sql(store, "INSERT INTO events (id, at, kind, item_id, run_id, actor, data_json, prev_hash, hash) "
               "VALUES (5, 1.0, 'review', 'AS-1', NULL, 'human:mallory', :d, :p, :h)", d=data_json, p=prev, h=digest)
    verdict = verify(store)
    assert broken(verdict) == (5, "review", "inserted")
    assert verdict.checked == 5, "the forged event itself hashes correctly: only its successor gives it away"


def test_a_truncated_tail_is_caught_by_a_file_anchor(store: Store, tmp_path: Path) -> None:
    anchor_file = tmp_path / "anchors.jsonl"
    head = verify(store)
    anchors.append_to_file(anchor_file, anchors.new_anchor(head.head_seq, head.head_hash))
    sql(store, "DELETE FROM events WHERE id >= 9")
    assert verify(store).broken is None, "a cut tail leaves a consistent chain: only an anchor shows it"
    verdict = verify(store, anchors.read_file(anchor_file))
    assert broken(verdict) == (10, "(missing)", "truncated")
    assert verdict.broken is not None and "ends at #8" in verdict.broken.detail


def _git_repo(root: Path) -> Path:
    root.mkdir()
    for args in (["init", "-q", "-b", "main"], ["-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q",
                                                "--allow-empty", "-m", "start"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    return root


def test_a_consistently_forged_chain_is_caught_by_the_git_note_anchor(store: Store, tmp_path: Path) -> None:
    root = _git_repo(tmp_path / "repo")
    head = verify(store)
    anchors.append_to_git(root, anchors.new_anchor(head.head_seq, head.head_hash))
    sql(store, "UPDATE events SET actor = 'human:mallory' WHERE id = 6")
    rehash_from(store, 6)
    assert verify(store).broken is None, "the forged chain is consistent in itself"
    found = anchors.read_git(root)
    assert [(a.seq, a.hash) for a in found] == [(10, head.head_hash)]
    assert broken(verify(store, found)) == (10, "run.finish", "rewritten")


def test_a_bad_anchor_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "anchors.jsonl"
    path.write_text('{"seq": 1, "hash": "ab", "at": 1.0}\nnot json\n')
    with pytest.raises(anchors.AnchorError, match=r"anchors.jsonl:2: not an anchor"):
        anchors.read_file(path)
