"""Parallel items touching the same code: precedence decides merge order; conflicts rebase or escalate."""

from __future__ import annotations

from pathlib import Path

from runner_support import git, item, make_project, query

from agentsprint.domain import ItemType
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner import actions
from agentsprint.runner.conflicts import overlap_groups, overlapping_pairs, scopes_overlap, static_prefix
from agentsprint.runner.demo_script import PLANS, Reply, ScriptBook
from agentsprint.runner.service import run_items

START = "    start = page * per_page"


def _edit(new: str, latency: float = 0.0) -> list[Reply]:
    """Edit the start line; `latency` slows the reply so this item would finish last without precedence."""
    edit = tool_call("edit_file", path="shop/pagination.py", old=START, new=new)
    return [ScriptedReply(tool_calls=[edit], latency=latency), tool_call("finish", summary="edited")]



def test_static_prefix_and_overlap_rules() -> None:
    assert static_prefix("src/api/**") == "src/api/"
    assert static_prefix("src/*.py") == "src/"
    assert static_prefix("agentsprint.toml") == "agentsprint.toml"
    assert scopes_overlap(["src/**"], ["src/api/**"])
    assert not scopes_overlap(["src/api/**"], ["docs/**"])
    assert scopes_overlap([], ["docs/**"]), "an unscoped item may touch anything"
    a, b, c = item("AS-1", scope=["shop/**"]), item("AS-2", scope=["shop/api/**"]), item("AS-3", scope=["docs/**"])
    assert overlapping_pairs([a, b, c]) == [("AS-1", "AS-2")]


def test_same_line_conflict_higher_precedence_merges_first_later_escalates_with_both_diffs(
        tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"], "AS-2": PLANS["AS-1"]},
                      {("AS-1", 1): _edit("    start = (page - 1) * per_page", latency=2.0),
                       ("AS-2", 1): _edit("    start = max(page - 1, 0) * per_page")})
    items = [item("AS-2", type_=ItemType.CHORE, dod=[]), item("AS-1", type_=ItemType.BUG, dod=[])]
    settings = make_project(tmp_path / "p", server, items, book)

    report = run_items(settings, ["AS-2", "AS-1"], parallel=2)

    assert report.results == {"AS-1": "done", "AS-2": "escalated"}
    assert any("AS-1" in w and "AS-2" in w for w in report.warnings), "overlap flagged at run start"
    detail = actions.escalation_detail(actions.open_project(settings), "AS-2").to_json()
    assert detail["reason"] == "conflict"
    package = detail["package"]
    assert package["conflicts"] == ["shop/pagination.py"]
    assert "max(page - 1, 0)" in package["item_diff"] and "(page - 1) * per_page" in package["base_diff"]
    assert "max(page - 1, 0)" in git(settings.root, "show", "agentsprint/AS-2:shop/pagination.py")
    assert "(page - 1) * per_page" in (settings.root / "shop" / "pagination.py").read_text()


def test_different_files_with_overlapping_scopes_both_merge(tmp_path: Path, server: ScriptedServer) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"], "AS-2": PLANS["AS-1"]},
                      {("AS-1", 1): _edit("    start = (page - 1) * per_page", latency=2.0),
                       ("AS-2", 1): [tool_call("write_file", path="shop/extra.py", content="EXTRA = 1\n"),
                                     tool_call("finish", summary="added")]})
    items = [item("AS-1", type_=ItemType.BUG, dod=[]), item("AS-2", type_=ItemType.FEATURE, dod=[])]
    settings = make_project(tmp_path / "p", server, items, book)

    assert run_items(settings, ["AS-1", "AS-2"], parallel=2).results == {"AS-1": "done", "AS-2": "done"}

    assert (settings.root / "shop" / "extra.py").read_text() == "EXTRA = 1\n"
    assert "(page - 1) * per_page" in (settings.root / "shop" / "pagination.py").read_text()
    done = query(settings, "SELECT item_id FROM item_transitions WHERE to_status = 'done' ORDER BY at, id")
    assert [d[0] for d in done] == ["AS-1", "AS-2"], "the bug merges before the feature (policy.precedence)"


def test_overlap_groups_join_chains_and_keep_apart_what_does_not_touch() -> None:
    pairs = [("AS-1", "AS-2"), ("AS-7", "AS-9"), ("AS-2", "AS-3"), ("AS-3", "AS-1")]
    assert overlap_groups(pairs) == [["AS-1", "AS-2", "AS-3"], ["AS-7", "AS-9"]]
    assert overlap_groups([]) == []


def test_skipped_line_counts_by_status_most_common_first() -> None:
    from agentsprint.runner.selection import skipped_line

    assert skipped_line({"AS-1": "dropped", "AS-2": "escalated", "AS-3": "escalated"}) == \
        "skipped 3 items: 2 escalated, 1 dropped"
    assert skipped_line({"AS-1": "done"}) == "skipped 1 item: 1 done"
