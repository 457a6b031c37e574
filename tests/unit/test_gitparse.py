"""Parsers of git's machine-readable output, on literal samples of what git prints."""

from __future__ import annotations

from pathlib import Path

from agentsprint import gitparse


def test_name_status_gives_both_names_of_renames_and_copies() -> None:
    output = "M\0src/a.py\0R087\0old name.py\0new name.py\0D\0gone.py\0C100\0x.py\0y.py\0A\0new.py\0"
    assert gitparse.name_status_files(output) == [
        "gone.py", "new name.py", "new.py", "old name.py", "src/a.py", "x.py", "y.py",
    ]


def test_numstat_counts_renames_once_and_binaries_as_zero() -> None:
    output = "3\t1\tsrc/a.py\0" "2\t0\t\0old.py\0new.py\0" "-\t-\tlogo.png\0"
    assert gitparse.numstat_totals(output) == (3, 5, 1)
    assert gitparse.numstat_totals("") == (0, 0, 0)


def test_porcelain_paths_include_staged_unstaged_untracked_and_renames() -> None:
    output = " M notes.txt\0M  staged.txt\0R  new.txt\0old.txt\0?? scratch/file.txt\0"
    assert gitparse.porcelain_paths(output) == {"notes.txt", "staged.txt", "new.txt", "old.txt",
                                                "scratch/file.txt"}


def test_worktree_branches_and_version() -> None:
    output = "worktree /r\nHEAD abc\nbranch refs/heads/main\n\nworktree /r/wt/AS-1\nHEAD def\ndetached\n"
    assert gitparse.worktree_branches(output) == {Path("/r"): "refs/heads/main", Path("/r/wt/AS-1"): None}
    assert gitparse.version_at_least("git version 2.39.5", (2, 38))
    assert not gitparse.version_at_least("git version 2.34.1", (2, 38))
    assert gitparse.version_at_least("git version 3.0.0.windows.1", (2, 38))
