"""Workspace against real git repositories: worktrees, diffs, commits, merges, conflicts, rebases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import git

from agentsprint.gitrepo import WorkspaceError
from agentsprint.workspace import Workspace


@pytest.fixture
def ws(git_repo: Path) -> Workspace:
    return Workspace(git_repo, git_repo / ".agentsprint" / "worktrees", "main")


class Killed(BaseException):
    """Stands for SIGKILL: unwinds past every `except Exception`, runs no cleanup of agentsprint's."""


def commit_on_main(repo: Path, name: str, text: str) -> str:
    """Commit a file on main in the main working tree, as a human would."""
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"main: {name}")
    return git(repo, "rev-parse", "HEAD").strip()


class TestWorktrees:
    def test_create_puts_worktree_on_item_branch_from_base(self, ws: Workspace, git_repo: Path) -> None:
        path = ws.create_worktree("AS-1")
        assert path == git_repo / ".agentsprint" / "worktrees" / "AS-1"
        assert (path / "README.md").read_text() == "# sample\n"
        assert git(path, "rev-parse", "--abbrev-ref", "HEAD").strip() == "agentsprint/AS-1"
        assert ws.head("AS-1") == ws.base_head()
        assert ws.branch_name("AS-1") == "agentsprint/AS-1" and ws.worktree_path("AS-1") == path

    def test_create_is_idempotent_and_keeps_work(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "work.py").write_text("x = 1\n")
        assert ws.create_worktree("AS-1") == path
        assert (path / "work.py").read_text() == "x = 1\n"

    def test_existing_branch_is_reattached(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "work.py").write_text("x = 1\n")
        ws.remove_worktree("AS-1")
        assert not path.exists()
        assert ws.create_worktree("AS-1") == path
        assert (path / "work.py").read_text() == "x = 1\n"  # committed by remove_worktree, not lost

    def test_stale_registration_of_deleted_folder_is_pruned(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "work.py").write_text("x = 1\n")
        ws.commit_all("AS-1", "work")
        shutil.rmtree(path)
        assert ws.create_worktree("AS-1") == path
        assert (path / "work.py").is_file()

    def test_nested_worktrees_do_not_show_in_main_status(self, ws: Workspace, git_repo: Path) -> None:
        ws.create_worktree("AS-1")
        assert git(git_repo, "status", "--porcelain") == ""

    def test_errors_are_workspace_errors(self, tmp_path: Path, git_repo: Path) -> None:
        with pytest.raises(WorkspaceError, match="no such commit"):
            Workspace(git_repo, git_repo / "wt", "develop").create_worktree("AS-1")
        with pytest.raises(WorkspaceError, match="not a valid item id"):
            Workspace(git_repo, git_repo / "wt", "main").create_worktree("../evil")
        (tmp_path / "plain").mkdir()
        with pytest.raises(WorkspaceError):
            Workspace(tmp_path / "plain", tmp_path / "wt", "main").base_head()


class TestDiff:
    def test_diff_includes_committed_modified_and_untracked(self, ws: Workspace, git_repo: Path) -> None:
        path = ws.create_worktree("AS-1")
        (path / "committed.py").write_text("a = 1\n")
        ws.commit_all("AS-1", "first")
        (path / "README.md").write_text("# sample\nchanged\n")
        (path / "src").mkdir()
        (path / "src" / "new.py").write_text("b = 2\n")
        diff = ws.diff("AS-1")
        assert "+++ b/committed.py" in diff and "+++ b/src/new.py" in diff and "+changed" in diff
        assert ws.changed_files("AS-1") == ["README.md", "committed.py", "src/new.py"]
        assert ws.diff_stats("AS-1").model_dump() == {"files": 3, "added": 3, "removed": 0}
        # The snapshot used a temporary index: the worktree's own index did not change.
        assert git(path, "status", "--porcelain") == " M README.md\n?? src/\n"
        assert git(git_repo, "status", "--porcelain") == ""

    def test_deletions_and_renames_give_both_names(self, ws: Workspace, git_repo: Path) -> None:
        commit_on_main(git_repo, "old_name.py", "".join(f"line {n}\n" for n in range(20)))
        commit_on_main(git_repo, "gone.py", "x = 1\n")
        path = ws.create_worktree("AS-1")
        (path / "old_name.py").rename(path / "new_name.py")
        (path / "gone.py").unlink()
        assert ws.changed_files("AS-1") == ["gone.py", "new_name.py", "old_name.py"]
        assert ws.diff_stats("AS-1").model_dump() == {"files": 2, "added": 0, "removed": 1}

    def test_diff_is_against_merge_base_not_moved_base(self, ws: Workspace, git_repo: Path) -> None:
        path = ws.create_worktree("AS-1")
        (path / "mine.py").write_text("m = 1\n")
        commit_on_main(git_repo, "theirs.py", "t = 1\n")
        assert ws.changed_files("AS-1") == ["mine.py"]

    def test_diff_hash_is_stable_and_tracks_content(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        assert ws.diff("AS-1") == ""
        (path / "a.py").write_text("a = 1\n")
        first = ws.diff_hash("AS-1")
        assert ws.diff_hash("AS-1") == first and len(first) == 64
        ws.commit_all("AS-1", "same content, now committed")
        assert ws.diff_hash("AS-1") == first
        (path / "a.py").write_text("a = 2\n")
        assert ws.diff_hash("AS-1") != first

    def test_diff_of_removed_worktree_uses_the_branch(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "a.py").write_text("a = 1\n")
        ws.remove_worktree("AS-1")
        assert ws.changed_files("AS-1") == ["a.py"]


class TestCommit:
    def test_commit_all_commits_as_agentsprint(self, ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
            monkeypatch.delenv(name)  # a machine with no git identity at all
        path = ws.create_worktree("AS-1")
        (path / "a.py").write_text("a = 1\n")
        sha = ws.commit_all("AS-1", "add a")
        assert sha == ws.head("AS-1")
        assert git(path, "log", "-1", "--format=%an <%ae>|%cn|%s").strip() == (
            "agentsprint <agentsprint@localhost>|agentsprint|add a"
        )
        assert ws.commit_all("AS-1", "nothing") is None


class TestMerge:
    def test_fast_forward_updates_base_and_checked_out_tree(self, ws: Workspace, git_repo: Path) -> None:
        path = ws.create_worktree("AS-1")
        (path / "feature.py").write_text("f = 1\n")
        result = ws.merge("AS-1", "AS-1: add feature")
        assert result.merged and result.fast_forward and result.conflicts == []
        assert result.sha == ws.base_head() == ws.head("AS-1")
        assert (git_repo / "feature.py").read_text() == "f = 1\n"
        assert git(git_repo, "status", "--porcelain") == ""

    def test_merge_commit_when_base_moved(self, ws: Workspace, git_repo: Path) -> None:
        path = ws.create_worktree("AS-1")
        (path / "feature.py").write_text("f = 1\n")
        main_sha = commit_on_main(git_repo, "other.py", "o = 1\n")
        result = ws.merge("AS-1", "AS-1: merge feature")
        assert result.merged and not result.fast_forward
        parents = git(git_repo, "log", "-1", "--format=%P %s", "main").split()
        assert parents[:2] == [main_sha, ws.head("AS-1")] and " ".join(parents[2:]) == "AS-1: merge feature"
        assert (git_repo / "feature.py").is_file() and (git_repo / "other.py").is_file()

    def test_file_updates_land_in_the_merge(self, ws: Workspace, git_repo: Path) -> None:
        commit_on_main(git_repo, "backlog/AS-1-x.md", "---\nid: AS-1\nstatus: todo\n---\n")
        path = ws.create_worktree("AS-1")
        (path / "feature.py").write_text("f = 1\n")
        done = "---\nid: AS-1\nstatus: done\n---\n"
        result = ws.merge("AS-1", "AS-1: done", file_updates={"backlog/AS-1-x.md": done})
        assert result.merged
        assert git(git_repo, "show", "main:backlog/AS-1-x.md") == done
        assert (git_repo / "backlog" / "AS-1-x.md").read_text() == done

    def test_base_not_checked_out_is_moved_by_ref(self, ws: Workspace, git_repo: Path) -> None:
        git(git_repo, "switch", "-q", "-c", "elsewhere")
        path = ws.create_worktree("AS-1")
        (path / "feature.py").write_text("f = 1\n")
        result = ws.merge("AS-1", "AS-1")
        assert result.merged and ws.base_head() == result.sha
        assert not (git_repo / "feature.py").exists()  # the checked-out branch was left alone

    def test_dirty_untouched_files_survive(self, ws: Workspace, git_repo: Path) -> None:
        commit_on_main(git_repo, "notes.txt", "notes\n")
        commit_on_main(git_repo, "staged.txt", "s\n")
        path = ws.create_worktree("AS-1")
        (path / "feature.py").write_text("f = 1\n")
        (git_repo / "notes.txt").write_text("my unsaved notes\n")
        (git_repo / "staged.txt").write_text("staged edit\n")
        git(git_repo, "add", "staged.txt")
        (git_repo / "scratch.txt").write_text("untracked\n")
        assert ws.merge("AS-1", "AS-1").merged
        assert (git_repo / "feature.py").is_file()
        assert (git_repo / "notes.txt").read_text() == "my unsaved notes\n"
        assert (git_repo / "staged.txt").read_text() == "staged edit\n"
        assert (git_repo / "scratch.txt").read_text() == "untracked\n"

    def test_an_update_of_the_checked_out_base_killed_midway_is_repaired_by_the_next_merge(
            self, ws: Workspace, git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        commit_on_main(git_repo, "a.txt", "a old\n")
        path = ws.create_worktree("AS-1")
        (path / "a.txt").write_text("a new\n")
        (path / "b.txt").write_text("b new\n")
        (git_repo / "notes.txt").write_text("my own notes\n")  # the human's, untouched by the merge
        base = ws.base_head()
        real = Workspace.run_git

        def killed_in_checkout(self: Workspace, cwd: Path, *args: str, **kwargs: object) -> tuple[int, str, str]:
            if args[:1] == ("merge",) and cwd == git_repo:  # what a SIGKILLed `git merge` leaves behind:
                (git_repo / "a.txt").write_text("a n")  # a file half written, b.txt not yet there,
                (git_repo / ".git" / "index.lock").write_text("")  # its lock, and the ref not moved
                raise Killed
            return real(self, cwd, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Workspace, "run_git", killed_in_checkout)
        with pytest.raises(Killed):
            ws.merge("AS-1", "AS-1")
        monkeypatch.setattr(Workspace, "run_git", real)
        assert ws.base_head() == base and (git_repo / ".git" / "index.lock").exists()

        resumed = Workspace(git_repo, git_repo / ".agentsprint" / "worktrees", "main").merge("AS-1", "AS-1")

        assert resumed.merged and ws.base_head() == ws.head("AS-1")
        assert (git_repo / "a.txt").read_text() == "a new\n" and (git_repo / "b.txt").read_text() == "b new\n"
        status = git(git_repo, "status", "--porcelain").splitlines()
        # only the human's file and the kept copy (`agentsprint init` git-ignores .agentsprint/, this repo does not)
        assert sorted(status) == ["?? .agentsprint/", "?? notes.txt"]
        assert (git_repo / "notes.txt").read_text() == "my own notes\n"
        assert not (git_repo / ".git" / "index.lock").exists()
        kept = list((git_repo / ".agentsprint" / "recovered").rglob("a.txt"))
        assert [f.read_text() for f in kept] == ["a n"], "content that matched neither side is kept"

    def test_an_update_killed_after_the_ref_moved_leaves_nothing_to_repair(
            self, ws: Workspace, git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        path = ws.create_worktree("AS-1")
        (path / "a.txt").write_text("a\n")
        real = Workspace.run_git

        def killed_after(self: Workspace, cwd: Path, *args: str, **kwargs: object) -> tuple[int, str, str]:
            result = real(self, cwd, *args, **kwargs)  # type: ignore[arg-type]
            if args[:1] == ("merge",) and cwd == git_repo:
                raise Killed  # git finished; the process died before removing its marker
            return result

        monkeypatch.setattr(Workspace, "run_git", killed_after)
        with pytest.raises(Killed):
            ws.merge("AS-1", "AS-1")
        monkeypatch.setattr(Workspace, "run_git", real)
        other = ws.create_worktree("AS-2")
        (other / "c.txt").write_text("c\n")
        assert ws.merge("AS-2", "AS-2").merged
        assert (git_repo / "a.txt").read_text() == "a\n" and (git_repo / "c.txt").read_text() == "c\n"
        assert git(git_repo, "status", "--porcelain") == ""
        assert not (git_repo / ".agentsprint" / "recovered").exists(), "nothing to keep aside"

    def test_refuses_when_main_tree_has_changes_to_touched_files(self, ws: Workspace, git_repo: Path) -> None:
        path = ws.create_worktree("AS-1")
        (path / "README.md").write_text("# sample\nfrom the agent\n")
        (git_repo / "README.md").write_text("# sample\nhuman, unsaved\n")
        base = ws.base_head()
        with pytest.raises(WorkspaceError, match="README.md"):
            ws.merge("AS-1", "AS-1", file_updates={"backlog/AS-1.md": "status: done\n"})
        assert ws.base_head() == base
        assert (git_repo / "README.md").read_text() == "# sample\nhuman, unsaved\n"
        assert not (path / "backlog").exists()  # the file-updates commit was taken back

    @pytest.mark.parametrize("use_merge_tree", [True, False], ids=["merge-tree", "scratch-worktree"])
    def test_conflict_aborts_cleanly_and_loses_nothing(
        self, ws: Workspace, git_repo: Path, use_merge_tree: bool
    ) -> None:
        ws.use_merge_tree = use_merge_tree
        commit_on_main(git_repo, "backlog/AS-1.md", "status: todo\n")
        path = ws.create_worktree("AS-1")
        (path / "README.md").write_text("# agent version\n")
        (path / "extra.py").write_text("e = 1\n")
        base = commit_on_main(git_repo, "README.md", "# human version\n")
        result = ws.merge("AS-1", "AS-1", file_updates={"backlog/AS-1.md": "status: done\n"})
        assert not result.merged and result.conflicts == ["README.md"] and result.sha is None
        assert ws.base_head() == base
        assert (git_repo / "README.md").read_text() == "# human version\n"
        assert git(git_repo, "status", "--porcelain") == ""
        assert (path / "README.md").read_text() == "# agent version\n"  # the agent's work is kept...
        assert git(path, "show", "HEAD:extra.py") == "e = 1\n"  # ...committed on its branch
        assert git(path, "show", "HEAD:backlog/AS-1.md") == "status: todo\n"  # file update taken back
        assert git(path, "status", "--porcelain") == ""
        assert len(ws.worktrees()) == 2  # no scratch worktree left behind

    def test_clean_merge_with_scratch_worktree(self, ws: Workspace, git_repo: Path) -> None:
        ws.use_merge_tree = False
        path = ws.create_worktree("AS-1")
        (path / "feature.py").write_text("f = 1\n")
        commit_on_main(git_repo, "other.py", "o = 1\n")
        result = ws.merge("AS-1", "AS-1: merge")
        assert result.merged and not result.fast_forward
        assert (git_repo / "feature.py").is_file() and len(ws.worktrees()) == 2

    def test_already_merged_is_a_no_op(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "feature.py").write_text("f = 1\n")
        first = ws.merge("AS-1", "AS-1")
        again = ws.merge("AS-1", "AS-1")
        assert again.merged and again.sha == first.sha == ws.base_head()


class TestRebase:
    def test_rebase_onto_moved_base(self, ws: Workspace, git_repo: Path) -> None:
        path = ws.create_worktree("AS-1")
        (path / "feature.py").write_text("f = 1\n")
        base = commit_on_main(git_repo, "other.py", "o = 1\n")
        result = ws.rebase_onto_base("AS-1")
        assert result.merged and result.sha == ws.head("AS-1")
        assert ws.is_ancestor(base, ws.head("AS-1"))
        assert (path / "other.py").is_file() and (path / "feature.py").is_file()
        assert ws.changed_files("AS-1") == ["feature.py"]

    def test_rebase_conflict_aborts_and_changes_nothing(self, ws: Workspace, git_repo: Path) -> None:
        path = ws.create_worktree("AS-1")
        (path / "README.md").write_text("# agent version\n")
        ws.commit_all("AS-1", "agent edit")
        before = ws.head("AS-1")
        commit_on_main(git_repo, "README.md", "# human version\n")
        result = ws.rebase_onto_base("AS-1")
        assert not result.merged and result.conflicts == ["README.md"]
        assert ws.head("AS-1") == before
        assert (path / "README.md").read_text() == "# agent version\n"
        assert git(path, "status", "--porcelain") == ""
        assert not (Path(git(path, "rev-parse", "--absolute-git-dir").strip()) / "rebase-merge").exists()
