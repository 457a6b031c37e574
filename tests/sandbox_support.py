"""Whether the bubblewrap sandbox tests can run here (the tests folder is on sys.path via its conftest)."""

from __future__ import annotations

import os

import pytest

from agentsprint.sandbox import bwrap_problem

SANDBOX_REQUIRED = bool(os.environ.get("AGENTSPRINT_TEST_SANDBOX_REQUIRED"))
"""Read at import (collection), before the tests' isolated environment drops AGENTSPRINT_* variables."""


def require_bwrap() -> None:
    """Skip unless bubblewrap works here; fail instead when AGENTSPRINT_TEST_SANDBOX_REQUIRED is set
    (CI sets it after installing bubblewrap: sandbox tests must not pass as skips)."""
    problem = bwrap_problem()
    if problem is None:
        return
    if SANDBOX_REQUIRED:
        pytest.fail(f"AGENTSPRINT_TEST_SANDBOX_REQUIRED is set but {problem}")
    pytest.skip(problem)
