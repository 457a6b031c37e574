"""The retro's own error: a scope or an output that cannot be made (a usage error, exit 2)."""

from __future__ import annotations


class RetroError(Exception):
    """A retro that cannot be made as asked: unknown sprint, bad date, unknown format."""
