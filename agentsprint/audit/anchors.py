"""Anchors: the chain head hash written outside the database (a git note or a file), to check against later."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agentsprint.gitcmd import run_git

NOTES_REF = "agentsprint-audit"
"""Notes ref (refs/notes/agentsprint-audit) holding the anchors, one JSON line each, on the commit of the day."""

_FALLBACK_IDENTITY = ("user.name=agentsprint audit", "user.email=audit@agentsprint.invalid")


class AnchorError(Exception):
    """An anchor could not be written or read (the message names the file or the git error)."""


@dataclass(frozen=True)
class Anchor:
    """The chain head at one moment: its sequence number and hash, when, and where it is kept."""

    seq: int
    hash: str
    at: float
    source: str = ""

    def line(self) -> str:
        """The anchor as one JSON line (without its source)."""
        fields = {k: v for k, v in asdict(self).items() if k != "source"}
        return json.dumps(fields, sort_keys=True)


def parse_lines(text: str, source: str) -> list[Anchor]:
    """Anchors from JSON lines; AnchorError naming the source and line of a line that is not one."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            found.append(Anchor(int(data["seq"]), str(data["hash"]), float(data["at"]), source))
        except (ValueError, KeyError, TypeError) as exc:
            raise AnchorError(f"{source}:{number}: not an anchor ({exc})") from None
    return found


def new_anchor(seq: int, digest: str) -> Anchor:
    """An anchor for the head (`seq`, `digest`) taken now."""
    return Anchor(seq, digest, round(time.time(), 3))


def append_to_file(path: Path, anchor: Anchor) -> None:
    """Append `anchor` to `path` as one line (the file is created if needed)."""
    try:
        with path.open("a", encoding="utf-8") as out:
            out.write(anchor.line() + "\n")
    except OSError as exc:
        raise AnchorError(f"{path}: {exc.strerror or exc}") from None


def read_file(path: Path) -> list[Anchor]:
    """The anchors in `path`."""
    try:
        return parse_lines(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise AnchorError(f"{path}: {exc.strerror or exc}") from None


def _git(root: Path, *args: str, config: tuple[str, ...] = ()) -> str:
    done = run_git(root, list(args), config=config)
    if done.returncode != 0:
        raise AnchorError(f"git {' '.join(args[:3])} in {root}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode("utf-8", errors="replace")


def append_to_git(root: Path, anchor: Anchor) -> str:
    """Append `anchor` to the git note of HEAD under NOTES_REF; returns the commit it is attached to."""
    commit = _git(root, "rev-parse", "--verify", "HEAD").strip()
    has_identity = run_git(root, ["config", "user.email"]).returncode == 0
    _git(root, "notes", "--ref", NOTES_REF, "append", "-m", anchor.line(), commit,
         config=() if has_identity else _FALLBACK_IDENTITY)
    return commit


def read_git(root: Path) -> list[Anchor]:
    """Every anchor in the git notes of `root` (none when the notes ref does not exist)."""
    if run_git(root, ["rev-parse", "--verify", "-q", f"refs/notes/{NOTES_REF}"]).returncode != 0:
        return []
    found: list[Anchor] = []
    for line in _git(root, "notes", "--ref", NOTES_REF, "list").splitlines():
        blob, commit = line.split()
        found += parse_lines(_git(root, "cat-file", "blob", blob), f"git note on {commit[:12]}")
    return found
