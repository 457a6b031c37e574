"""Epic budgets: `backlog/epics/<name>.yml` holds an epic's own budget, a circuit breaker over its items.

```yaml
title: Billing
budget:
  tokens: 2000000
  usd: 20
```
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from agentsprint.backlog.errors import BacklogError
from agentsprint.domain import EPIC_NAME, Budget


def epic_path(backlog_dir: Path, name: str) -> Path:
    """`backlog/epics/<name>.yml`; BacklogError for a name that is not plain (it would leave the folder)."""
    if not re.fullmatch(EPIC_NAME, name):
        raise BacklogError(f"epic {name!r}: not a plain name (letters, digits, '_', '.', '-')")
    return backlog_dir / "epics" / f"{name}.yml"


def epic_budget(backlog_dir: Path, name: str) -> tuple[int | None, float | None]:
    """(tokens, usd) limits of an epic; (None, None) when it has no file or no budget."""
    path = epic_path(backlog_dir, name)
    if not path.is_file():
        return None, None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError("expected a mapping with a `budget` key")
        budget = Budget.model_validate(data.get("budget") or {})
    except (yaml.YAMLError, ValueError) as exc:
        raise BacklogError(f"{path}: {exc}") from exc
    return budget.tokens, budget.usd
