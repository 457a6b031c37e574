"""Prompt templates (Jinja2) from `templates/prompts/`: wording lives there, not in code."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jinja2

from agentsprint.config import templates_dir
from agentsprint.redaction import redact

_BLANK_RUNS = re.compile(r"\n{3,}")


def description(body: str) -> str:
    """An item body without its "## Acceptance criteria" section (templates list the criteria apart)."""
    kept: list[str] = []
    inside = False
    for line in body.splitlines():
        heading = line.strip().lower()
        if heading.startswith("## "):
            inside = heading == "## acceptance criteria"
            if inside:
                continue
        if not inside:
            kept.append(line)
    return "\n".join(kept).strip()


@cache
def environment() -> jinja2.Environment:
    """The prompt environment: undefined variables are errors, whitespace as written."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir() / "prompts"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["description"] = description
    return env


def render(name: str, **values: Any) -> str:
    """The text of prompt template `name` (e.g. "coder_system.j2") with `values`, secrets redacted.

    Item bodies, plans and findings are written by people and models: a key pasted into an item
    must not reach the provider, the call records or the events.
    """
    text = environment().get_template(name).render(**values)
    return redact(_BLANK_RUNS.sub("\n\n", text).strip()) + "\n"
