"""The retro as one self-contained HTML file: inline CSS and SVG charts, nothing from the network."""

from __future__ import annotations

from typing import Any

from agentsprint.retro.charts import all_charts
from agentsprint.retro.tables import all_tables

TEMPLATE = "reports/retro.html.j2"


def render_html(report: dict[str, Any]) -> str:
    """The page: findings, each chart beside its table, then every section's table."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    from agentsprint.config import templates_dir

    env = Environment(loader=FileSystemLoader(templates_dir()), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(report=report, charts=all_charts(report), tables=all_tables(report))
