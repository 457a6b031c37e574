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

from pydantic import ValidationError

from agentsprint.backlog.errors import MAX_QUOTED, BacklogError
from agentsprint.backlog.files import read_text
from agentsprint.backlog.frontmatter import FrontMatterError, load_yaml
from agentsprint.domain import EPIC_NAME, Budget
from agentsprint.text import shorten


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
        data = load_yaml(read_text(path)) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise BacklogError(f"{path}:1: cannot read: {exc}") from None
    except FrontMatterError as exc:
        raise BacklogError(f"{path}:{exc.line}: {exc}") from None
    if not isinstance(data, dict):
        raise BacklogError(f"{path}:1: expected a mapping with a `budget` key")
    try:
        budget = Budget.model_validate(data.get("budget") or {})
    except ValidationError as exc:
        raise BacklogError(f"{path}: budget: {shorten(str(exc), MAX_QUOTED)}") from None
    return budget.tokens, budget.usd
