"""`python -m agentsprint`: the same as the `agentsprint` script."""

from __future__ import annotations

from agentsprint.cli.main import main

main()
