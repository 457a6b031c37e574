"""docs/architecture.md lists where each of the five limits is enforced: every place it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLACE = re.compile(r"`((?:agents|llm|runner)/[\w/]+\.py):([\w.]+)`")


def limits_section() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    return text.split("### Limits", 1)[1].split("\n#", 1)[0]


def defined(path: Path, qualname: str) -> bool:
    """Whether `qualname` (function, or Class.method) is defined at the top of the module at `path`."""
    scope: list[ast.stmt] = ast.parse(path.read_text(encoding="utf-8")).body
    for part in qualname.split("."):
        found = [n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part]
        if not found:
            return False
        scope = found[0].body
    return True


def test_the_table_names_each_of_the_five_limits() -> None:
    rows = [line for line in limits_section().splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split("|")[1].split(":")[0].strip() for row in rows] == [
        "loop caps", "loop guard", "wall clock", "round cap", "budget"]


def test_every_enforcement_place_it_names_exists() -> None:
    places = PLACE.findall(limits_section())
    assert len(places) >= 7
    missing = [f"{path}:{name}" for path, name in places if not defined(ROOT / "agentsprint" / path, name)]
    assert missing == []
