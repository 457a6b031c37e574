"""Backlog files: parsing, every validation error at its line, ids across branches, atomic writes, cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import git

from agentsprint.backlog import (
    BacklogError,
    atomic_write,
    load_backlog,
    next_id,
    parse_item_text,
    render_item,
    set_file_status,
    write_item,
)
from agentsprint.backlog.cache import RACY_NS
from agentsprint.backlog.service import create_item, load_template
from agentsprint.config import templates_dir
from agentsprint.domain import GateKind, Item, ItemType, Priority, Status

DESIGN_EXAMPLE = """---
id: AS-12
title: Fix off-by-one in pagination
type: bug            # bug | feature | refactor | chore | security | performance
priority: high       # critical | high | medium | low
value: 8             # business value points, for ROI
status: todo         # todo | done | dropped  (coarse, committed; live status comes from the DB)
epic: billing        # optional; backlog/epics/billing.yml holds the epic's own budget (a circuit breaker)
labels: [api]
depends_on: [AS-10]
scope: ["src/pagination/**"]   # where the coder may write; empty = whole repo minus protected paths
budget:
  tokens: 500000     # all roles together: input + output tokens
  usd: 2.50
  time: 30m          # wall clock for the item
  rounds: 3          # QA rejections before escalation to a human
dod:
  - tests: pytest -q tests/test_pagination.py
  - lint: ruff check src
  - secrets            # built-in secret scan of the diff
  - security: agent    # the security reviewer role reviews the diff; its reject overrides QA's approve
  - review: human      # a person approves in the review inbox
---
What is wrong and what done looks like. A "## Acceptance criteria" list is passed to QA.
"""


def item_text(item_id: str = "AS-1", **overrides: str) -> str:
    """A valid item file; `overrides` replace whole front-matter lines by key (value '' drops the line)."""
    lines = {"id": f"id: {item_id}", "title": "title: Something", "type": "type: bug", "priority": "priority: low",
             "value": "value: 3", "status": "status: todo", "depends_on": "depends_on: []",
             "budget": "budget:\n  tokens: 1000\n  time: 5m", "dod": "dod:\n  - secrets"}
    lines.update(overrides)
    return "---\n" + "".join(line + "\n" for line in lines.values() if line) + "---\nBody.\n"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(folder: Path) -> list[tuple[str, int, str]]:
    return [(p.path.name, p.line, p.message) for p in load_backlog(folder).problems]


class TestParse:
    def test_design_example_parses_to_every_field(self) -> None:
        item = parse_item_text(DESIGN_EXAMPLE, "backlog/AS-12-fix-pagination.md")
        assert (item.id, item.title, item.type, item.priority, item.value) == (
            "AS-12", "Fix off-by-one in pagination", ItemType.BUG, Priority.HIGH, 8)
        assert (item.epic, item.labels, item.depends_on, item.scope) == (
            "billing", ["api"], ["AS-10"], ["src/pagination/**"])
        assert (item.budget.tokens, item.budget.usd, item.budget.time, item.budget.rounds) == (500000, 2.5, "30m", 3)
        assert [g.kind for g in item.dod] == [GateKind.COMMAND, GateKind.COMMAND, GateKind.SECRETS,
                                              GateKind.SECURITY, GateKind.REVIEW]
        assert item.dod[0].command == "pytest -q tests/test_pagination.py"
        assert item.body.startswith("What is wrong")

    def test_render_writes_design_format_exactly(self) -> None:
        item = parse_item_text(DESIGN_EXAMPLE, "backlog/AS-12-fix-pagination.md")
        without_comments = "".join(line.split("  #")[0].rstrip() + "\n" for line in DESIGN_EXAMPLE.splitlines())
        assert render_item(item) == without_comments

    def test_minimal_file_gets_defaults_and_empty_optional_keys_are_not_written(self) -> None:
        item = parse_item_text("---\nid: AS-3\ntitle: Tiny\n---\n", "AS-3-tiny.md")
        assert (item.type, item.priority, item.status, item.value) == (ItemType.FEATURE, Priority.MEDIUM,
                                                                       Status.TODO, 0)
        assert render_item(item) == ("---\nid: AS-3\ntitle: Tiny\ntype: feature\npriority: medium\nvalue: 0\n"
                                     "status: todo\nbudget: {}\ndod: []\n---\n")

    def test_bare_number_of_seconds_is_a_time_budget(self) -> None:
        item = parse_item_text(item_text(budget="budget:\n  time: 90"), "AS-1.md")
        assert item.budget.time == "90" and item.budget.time_seconds == 90.0
        assert "time: '90'" in render_item(item)


# Every validation error: the file, where it must be reported (a line number, or the text of the
# offending line), and what the message says.
ERRORS = [
    ("yaml syntax", item_text(labels="labels: [api"), "labels: [api", "YAML syntax error"),
    ("unknown key", item_text(owner="owner: me"), "owner: me", "unknown key 'owner'"),
    ("wrong type", item_text(value="value: lots"), "value: lots", "value: Input should be a valid integer"),
    ("list expected", item_text(depends_on="depends_on: AS-2"), "depends_on", "depends_on: Input should be a valid"),
    ("negative budget", item_text(budget="budget:\n  tokens: -5"), "tokens: -5", "budget.tokens: must not be negative"),
    ("bad duration", item_text(budget="budget:\n  time: soon"), "time: soon", "budget.time: bad duration 'soon'"),
    ("unknown budget key", item_text(budget="budget:\n  dollars: 5"), "dollars", "unknown key 'budget.dollars'"),
    ("unknown dod kind", item_text(dod="dod:\n  - secrets\n  - vibes"), "- vibes", "unknown DoD entry 'vibes'"),
    ("bad review gate", item_text(dod="dod:\n  - review: robot"), "review: robot", "must be 'review: human'"),
    ("live status in file", item_text(status="status: running"), "status:", "status in a file is todo, done or"),
    ("bad type value", item_text(type="type: epic"), "type: epic", "type: Input should be 'bug'"),
    ("bad id", item_text(id="id: as12"), "id: as12", "id: 'as12' is not an item id like AS-12"),
    ("duplicate key", item_text(again="title: Again"), "title: Again", "duplicate key 'title'"),
    ("missing title", item_text(title=""), 1, "missing key 'title'"),
    ("not a mapping", "---\n- just\n- a list\n---\n", 2, "front matter must be a mapping"),
    ("no front matter", "# AS-1\nJust Markdown.\n", 1, "missing front matter"),
    ("unclosed front matter", "---\nid: AS-1\ntitle: x\n", 1, "front matter is not closed"),
]


@pytest.mark.parametrize(("text", "where", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_each_validation_error_names_its_line(tmp_path: Path, text: str, where: int | str, message: str) -> None:
    write(tmp_path, "AS-1-broken.md", text)
    line = where if isinstance(where, int) else 1 + next(
        i for i, line in enumerate(text.splitlines()) if where in line)
    (name, found_line, found_message), = problems_of(tmp_path)
    assert (name, found_line) == ("AS-1-broken.md", line), found_message
    assert message in found_message


def test_id_must_match_file_name(tmp_path: Path) -> None:
    write(tmp_path, "AS-2-renamed.md", item_text("AS-1"))
    assert problems_of(tmp_path) == [("AS-2-renamed.md", 2, "id AS-1 does not match the file name "
                                                            "AS-2-renamed.md (expected AS-1-<slug>.md)")]


def test_duplicate_ids_are_reported_in_both_files(tmp_path: Path) -> None:
    write(tmp_path, "AS-1-a.md", item_text("AS-1"))
    write(tmp_path, "AS-1-b.md", item_text("AS-1"))
    found = problems_of(tmp_path)
    assert [(name, line) for name, line, _ in found] == [("AS-1-a.md", 2), ("AS-1-b.md", 2)]
    assert [message for _, _, message in found] == ["duplicate id AS-1 (also in AS-1-b.md)",
                                                    "duplicate id AS-1 (also in AS-1-a.md)"]


def test_unknown_dependency_is_reported_at_its_entry(tmp_path: Path) -> None:
    write(tmp_path, "AS-1-a.md", item_text("AS-1", depends_on="depends_on:\n  - AS-1\n  - AS-7"))
    found = problems_of(tmp_path)
    assert ("AS-1-a.md", 10, "unknown dependency AS-7") in found


def test_dependency_cycle_is_named(tmp_path: Path) -> None:
    write(tmp_path, "AS-1-a.md", item_text("AS-1", depends_on="depends_on: [AS-3]"))
    write(tmp_path, "AS-2-b.md", item_text("AS-2", depends_on="depends_on: [AS-1]"))
    write(tmp_path, "AS-3-c.md", item_text("AS-3", depends_on="depends_on: [AS-2]"))
    write(tmp_path, "AS-4-d.md", item_text("AS-4", depends_on="depends_on: [AS-1]"))
    assert problems_of(tmp_path) == [("AS-1-a.md", 8, "dependency cycle: AS-1 -> AS-3 -> AS-2 -> AS-1")]


def test_self_dependency_is_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, "AS-1-a.md", item_text("AS-1", depends_on="depends_on: [AS-1]"))
    assert problems_of(tmp_path) == [("AS-1-a.md", 8, "dependency cycle: AS-1 -> AS-1")]


def test_broken_file_does_not_stop_the_others(tmp_path: Path) -> None:
    write(tmp_path, "AS-1-good.md", item_text("AS-1"))
    write(tmp_path, "AS-2-bad.md", "---\nid: AS-2\ntitle: [unclosed\n---\n")
    write(tmp_path, "AS-3-good.md", item_text("AS-3"))
    write(tmp_path, ".AS-4-x.md.tmp-abc123", "partial")
    write(tmp_path, "README.md", "# Our backlog\n")
    backlog = load_backlog(tmp_path)
    assert sorted(backlog.items) == ["AS-1", "AS-3"]
    assert [p.path.name for p in backlog.problems] == ["AS-2-bad.md"]


class TestStatusRewrite:
    def test_only_the_status_value_changes(self, tmp_path: Path) -> None:
        path = write(tmp_path, "AS-12-fix-pagination.md", DESIGN_EXAMPLE)
        updated = set_file_status(path, "done")
        assert updated == DESIGN_EXAMPLE.replace("status: todo   ", "status: done   ")
        assert parse_item_text(updated, path).status is Status.DONE

    def test_missing_status_is_added_and_quotes_and_crlf_are_handled(self, tmp_path: Path) -> None:
        path = tmp_path / "AS-1.md"
        path.write_bytes(b"---\r\nid: AS-1\r\ntitle: 'x'\r\n---\r\nbody\r\n")
        expected = "---\r\nid: AS-1\r\ntitle: 'x'\r\nstatus: dropped\r\n---\r\nbody\r\n"
        assert set_file_status(path, Status.DROPPED) == expected
        path.write_text("---\nid: AS-1\ntitle: x\nstatus: 'todo'  # keep me\n---\n")
        assert set_file_status(path, "done") == "---\nid: AS-1\ntitle: x\nstatus: done  # keep me\n---\n"

    def test_unparseable_file_is_refused(self, tmp_path: Path) -> None:
        path = write(tmp_path, "AS-1.md", "---\nid: AS-1\ntitle: [x\n---\n")
        with pytest.raises(BacklogError, match="not rewritten"):
            set_file_status(path, "done")

    def test_live_status_is_not_a_file_status(self, tmp_path: Path) -> None:
        path = write(tmp_path, "AS-1.md", item_text())
        with pytest.raises(BacklogError, match="todo, done or dropped"):
            set_file_status(path, "running")


class TestIds:
    def test_next_id_follows_the_highest_number_in_the_folder(self, tmp_path: Path) -> None:
        assert next_id(tmp_path / "missing") == "AS-1"
        for name in ("AS-2-a.md", "AS-10-b.md", "AS-9.md", "XY-50-c.md", "notes.txt"):
            write(tmp_path, name, "")
        assert next_id(tmp_path) == "AS-11"
        assert next_id(tmp_path, prefix="XY") == "XY-51"

    def test_two_branches_adding_items_get_different_ids(self, git_repo: Path) -> None:
        backlog = git_repo / "backlog"
        create_item(backlog, {"title": "On main"})
        git(git_repo, "add", "backlog")
        git(git_repo, "commit", "-qm", "AS-1")
        git(git_repo, "checkout", "-qb", "feature")
        feature_item, _ = create_item(backlog, {"title": "On the feature branch"})
        git(git_repo, "add", "backlog")
        git(git_repo, "commit", "-qm", "AS-2")
        git(git_repo, "checkout", "-q", "main")
        assert not (backlog / "AS-2-on-the-feature-branch.md").exists()
        main_item, _ = create_item(backlog, {"title": "Also on main"})
        assert (feature_item.id, main_item.id) == ("AS-2", "AS-3")

    def test_remote_tracking_branches_and_other_worktrees_count(self, git_repo: Path, tmp_path: Path) -> None:
        (git_repo / "backlog").mkdir()
        git(git_repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "wt")
        write(tmp_path / "wt" / "backlog", "AS-5-uncommitted.md", item_text("AS-5"))
        assert next_id(git_repo / "backlog") == "AS-6"
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", str(git_repo), str(clone))
        write(clone / "backlog", "AS-9-pushed-elsewhere.md", item_text("AS-9"))
        git(clone, "add", "backlog")
        git(clone, "commit", "-qm", "AS-9")
        git(git_repo, "fetch", "-q", str(clone), "HEAD:refs/remotes/clone/main")
        assert next_id(git_repo / "backlog") == "AS-10"


class TestWrites:
    def test_write_item_keeps_an_existing_file_name(self, tmp_path: Path) -> None:
        item = parse_item_text(item_text("AS-1"))
        first = write_item(tmp_path, item)
        assert first.name == "AS-1-something.md"
        renamed = write_item(tmp_path, item.model_copy(update={"title": "New title"}))
        assert renamed == first and parse_item_text(first.read_text()).title == "New title"

    def test_write_item_never_replaces_a_file_it_cannot_parse(self, tmp_path: Path) -> None:
        broken = write(tmp_path, "AS-1-a.md", "---\nid: AS-1\ntitle: [half an edit\n---\n")
        with pytest.raises(BacklogError, match="not rewritten"):
            write_item(tmp_path, parse_item_text(item_text("AS-1")))
        assert broken.read_text() == "---\nid: AS-1\ntitle: [half an edit\n---\n"

    def test_failed_write_leaves_the_old_file_and_no_temp_file(self, tmp_path: Path) -> None:
        path = write(tmp_path, "AS-1-a.md", item_text())
        with pytest.raises(UnicodeEncodeError):
            atomic_write(path, "---\nid: AS-1\ntitle: \ud800\n---\n")  # a lone surrogate cannot be encoded
        assert path.read_text() == item_text()
        assert os.listdir(tmp_path) == ["AS-1-a.md"]

    def test_replace_is_all_or_nothing_and_keeps_the_mode(self, tmp_path: Path) -> None:
        path = write(tmp_path, "AS-1-a.md", item_text())
        path.chmod(0o640)
        atomic_write(path, item_text(title="title: New"))
        assert path.read_text() == item_text(title="title: New")
        assert path.stat().st_mode & 0o777 == 0o640

    def test_create_item_refuses_unknown_dependency_and_writes_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(BacklogError, match="unknown dependency AS-4"):
            create_item(tmp_path, {"title": "x", "depends_on": ["AS-4"]})
        assert os.listdir(tmp_path) == []

    @pytest.mark.parametrize("name", ["bug", "feature", "refactor", "security"])
    def test_packaged_templates_are_valid_and_have_acceptance_criteria(self, name: str) -> None:
        defaults, body = load_template(templates_dir() / "items" / f"{name}.md")
        assert defaults["type"] == name and defaults["dod"] and defaults["budget"]
        item = Item.model_validate({"id": "AS-1", "title": "t", "body": body,
                                    **{k: v for k, v in defaults.items() if k not in ("dod", "budget")}})
        assert item.acceptance_criteria


class TestCache:
    def old(self, path: Path) -> Path:
        """Backdate a file past the racy window, as if written a while ago."""
        past = time.time() - 2 * RACY_NS / 1e9
        os.utime(path, (past, past))
        return path

    def test_cached_items_are_reused_until_the_file_changes(self, tmp_path: Path) -> None:
        backlog, cache = tmp_path / "backlog", tmp_path / "cache"
        path = self.old(write(backlog, "AS-1-a.md", item_text(title="title: First")))
        assert load_backlog(backlog, cache).items["AS-1"].title == "First"
        assert "AS-1-a.md" in (cache / "backlog.json").read_text()
        path.write_text(item_text(title="title: Second"))
        assert load_backlog(backlog, cache).items["AS-1"].title == "Second"
        path.write_text(item_text(title="title: [broken"))
        assert load_backlog(backlog, cache).problems

    def test_recently_changed_files_are_not_cached(self, tmp_path: Path) -> None:
        backlog, cache = tmp_path / "backlog", tmp_path / "cache"
        write(backlog, "AS-1-a.md", item_text())
        load_backlog(backlog, cache)
        assert "AS-1-a.md" not in (cache / "backlog.json").read_text()

    def test_corrupt_cache_is_ignored(self, tmp_path: Path) -> None:
        backlog, cache = tmp_path / "backlog", tmp_path / "cache"
        self.old(write(backlog, "AS-1-a.md", item_text()))
        write(cache, "backlog.json", "{not json")
        assert list(load_backlog(backlog, cache).items) == ["AS-1"]
        assert load_backlog(backlog, cache).items["AS-1"] == load_backlog(backlog).items["AS-1"]
