"""Item files on disk: names, listing, and atomic writes that leave either the old or the new file."""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import unicodedata
from pathlib import Path

from agentsprint.backlog.errors import BacklogError
from agentsprint.backlog.parse import check_text
from agentsprint.backlog.render import render_item, with_status
from agentsprint.domain import Item, Status

SLUG_MAX = 48
SKIPPED_NAMES = {"readme.md"}
MAX_FILE_BYTES = 32 * 1024 * 1024
"""A backlog file (item or epic) larger than this is refused unread: one item never needs it."""


def slugify(title: str) -> str:
    """A short ASCII file-name slug of a title ("Fix off-by-one!" -> "fix-off-by-one")."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    if len(slug) > SLUG_MAX:
        slug = slug[:SLUG_MAX].rsplit("-", 1)[0] if "-" in slug[:SLUG_MAX] else slug[:SLUG_MAX]
    return slug


def file_name(item: Item) -> str:
    """`<ID>-<slug>.md`, or `<ID>.md` when the title has no usable characters."""
    slug = slugify(item.title)
    return f"{item.id}-{slug}.md" if slug else f"{item.id}.md"


def item_files(backlog_dir: Path) -> list[Path]:
    """The item files of a backlog folder: `*.md` except hidden files (temp files) and README.md."""
    try:
        names = os.listdir(backlog_dir)
    except FileNotFoundError:
        return []
    return [backlog_dir / name for name in sorted(names)
            if name.endswith(".md") and not name.startswith(".") and name.lower() not in SKIPPED_NAMES]


def existing_path(backlog_dir: Path, item_id: str) -> Path | None:
    """The file already holding `item_id`, judged by its name."""
    for path in item_files(backlog_dir):
        if path.stem == item_id or path.stem.startswith(item_id + "-"):
            return path
    return None


def atomic_write(path: Path, text: str, *, durable: bool = True) -> None:
    """Write via a hidden temp file in the same folder, fsync, then rename over `path`."""
    mode = _mode_for(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if durable:
                os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path: Path) -> str:
    """A file's text exactly as stored (no newline translation); OSError for a FIFO, socket or device
    (never opened: a FIFO blocks its reader) and for a file over MAX_FILE_BYTES."""
    mode, size = _stat(path)
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file")
    if size > MAX_FILE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_FILE_BYTES // 2**20} MiB ({size} bytes)")
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _stat(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_mode, info.st_size


def write_item(backlog_dir: Path, item: Item) -> Path:
    """Write `item` to its file (the existing one for its id, else `<ID>-<slug>.md`); returns the path.

    An existing file that does not parse is left alone (BacklogError): it may hold work to recover.
    """
    backlog_dir.mkdir(parents=True, exist_ok=True)
    path = existing_path(backlog_dir, item.id)
    if path is not None:
        _, problems = check_text(read_text(path), path)
        if problems:
            raise BacklogError(f"{path}: not rewritten because it does not parse", problems)
    path = path or backlog_dir / file_name(item)
    atomic_write(path, render_item(item))
    return path


def set_file_status(path: Path, status: Status | str) -> str:
    """The text of `path` with only its status line changed; BacklogError if the file is invalid."""
    text = read_text(path)
    _, problems = check_text(text, path)
    if problems:
        raise BacklogError(f"{path}: not rewritten because it does not parse", problems)
    return with_status(text, status, path)
