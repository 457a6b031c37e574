"""`--as NAME` on the commands that record a human decision, and where it is not allowed."""

from __future__ import annotations

from typing import Any

from agentsprint.cli.context import fail

AS_HELP = ("Record the decision under this name instead of your git identity (not for approve or a "
           "budget top-up when [review] approvers is set).")


def claimed_name(settings: Any, as_name: str | None, guarded: bool) -> str | None:
    """`as_name`, or exit 2 when it would let anyone pass as an approver."""
    if as_name is not None and guarded and settings.review.approvers:
        fail("--as is not allowed here: [review] approvers is set, so your git identity decides")
    return as_name
