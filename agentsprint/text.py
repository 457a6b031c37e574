"""Text helpers every layer uses (standard library only)."""

from __future__ import annotations


def shorten(text: str, limit: int, marker: str = "...") -> str:
    """`text` cut to at most `limit` characters, ending in `marker` when it was cut."""
    return text if len(text) <= limit else text[: limit - len(marker)] + marker
