"""backlog/*.md <-> Item: parsing with file:line problems, rendering in DESIGN's format, atomic writes,
ids that do not collide across branches, and item templates."""

from __future__ import annotations

from agentsprint.backlog.errors import BacklogError, Problem
from agentsprint.backlog.files import atomic_write, item_files, set_file_status, slugify, write_item
from agentsprint.backlog.ids import next_id
from agentsprint.backlog.loader import Backlog, load_backlog
from agentsprint.backlog.parse import KEYS, check_text, parse_item_text
from agentsprint.backlog.render import render_item

__all__ = [
    "KEYS",
    "Backlog",
    "BacklogError",
    "Problem",
    "atomic_write",
    "check_text",
    "item_files",
    "load_backlog",
    "next_id",
    "parse_item_text",
    "render_item",
    "set_file_status",
    "slugify",
    "write_item",
]
