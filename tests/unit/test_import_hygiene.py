"""DESIGN section 2 as a test: each third-party boundary is imported in one place only, and the CLI
starts without loading the heavy libraries."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeGuard

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "agentsprint"

# top-level module -> the only files (relative to agentsprint/) allowed to import it
BOUNDARIES: dict[str, Callable[[str], bool]] = {
    "textual": lambda rel: rel.startswith("tui/"),
    "typer": lambda rel: rel.startswith("cli/"),
    "click": lambda rel: rel.startswith("cli/"),
    "litellm": lambda rel: rel.startswith("llm/"),
    "git": lambda rel: False,  # GitPython passes agentsprint's whole environment to git: gitcmd.py instead
    "dbos": lambda rel: rel == "runner/durable.py",  # the DBOS adapter: an upgrade of DBOS is one file
    "opentelemetry": lambda rel: rel == "audit/otel.py",  # the optional `otel` extra: loaded only when configured
}


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """(top-level module, line) of every import anywhere in a module, including function bodies."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_each_boundary_library_is_imported_only_in_its_place() -> None:
    wrong = []
    for path in modules():
        rel = path.relative_to(PACKAGE).as_posix()
        for name, line in imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
            allowed = BOUNDARIES.get(name)
            if allowed is not None and not allowed(rel):
                wrong.append(f"agentsprint/{rel}:{line}: imports {name}")
    assert wrong == []


def _starts_git(node: ast.AST) -> TypeGuard[ast.Call]:
    """A call like subprocess.run(["git", ...]) / Popen / check_output: git started by hand."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"run", "Popen", "call", "check_call", "check_output"}
            and bool(node.args) and isinstance(node.args[0], ast.List) and bool(node.args[0].elts)
            and isinstance(node.args[0].elts[0], ast.Constant) and node.args[0].elts[0].value == "git")


def test_git_is_started_only_through_the_hardened_helper() -> None:
    """Every git call goes through gitcmd (hooks, fsmonitor and repository drivers off, scrubbed env)."""
    wrong = [f"agentsprint/{path.relative_to(PACKAGE).as_posix()}:{node.lineno}"
             for path in modules() if path.name != "gitcmd.py"
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if _starts_git(node)]
    assert wrong == []


def top_level_imports(path: Path) -> list[tuple[str, int]]:
    """Imports executed when the module is imported (not inside functions or TYPE_CHECKING blocks)."""
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_cli_modules_import_only_typer_and_the_stdlib_at_top_level(path: Path) -> None:
    allowed_own = ("agentsprint.cli", "agentsprint.offline")
    wrong = [f"{path.name}:{line}: {name}" for name, line in top_level_imports(path)
             if not (name.split(".")[0] in sys.stdlib_module_names or name.split(".")[0] == "typer"
                     or name == "agentsprint" or name.startswith(allowed_own))]
    assert wrong == []


HEAVY = ["litellm", "textual", "dbos", "sqlmodel", "sqlalchemy", "rich", "yaml", "tiktoken", "git", "jinja2",
         "matplotlib", "numpy", "opentelemetry"]


def modules_after(code: str) -> list[str]:
    """Every module loaded in a fresh interpreter after running `code`."""
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return list(json.loads(done.stdout.splitlines()[-1]))


def loaded_after(code: str) -> list[str]:
    return [name for name in modules_after(code) if name.split(".")[0] in HEAVY]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert loaded_after("import agentsprint.cli.main") == []


def test_building_the_whole_app_loads_no_heavy_library() -> None:
    assert loaded_after("from agentsprint.cli.main import build_app\nbuild_app()") == []


def test_help_loads_no_heavy_library() -> None:
    code = ("from agentsprint.cli.main import main\nsys.argv = ['agentsprint', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass")
    assert loaded_after(code) == []


SETTLE_AN_ITEM = """
import os, tempfile
for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
    os.environ.pop(name, None)
import agentsprint.runner.service, agentsprint.runner.steps
from agentsprint.audit.otel import export_item_run
from agentsprint.config import Settings
from agentsprint.store.core import Store
from agentsprint.store.events import append_event
store = Store("sqlite:///" + tempfile.mkdtemp() + "/db.sqlite")
with store.session() as session:
    append_event(session, "model.call", item_id="AS-1", run_id="run-1", actor="agent:coder",
                 data={"role": "coder", "round": 1, "model": "openai/m", "outcome": "ok", "input_tokens": 5})
export_item_run(Settings.model_validate({"telemetry": {"otlp_endpoint": ENDPOINT}}), store, "AS-1", "run-1")
"""


@pytest.mark.parametrize(("endpoint", "loads"), [(None, False), ("http://127.0.0.1:9", True)])
def test_opentelemetry_is_imported_only_when_telemetry_is_configured(endpoint: str | None, loads: bool) -> None:
    """A run without [telemetry] or OTEL_EXPORTER_OTLP_ENDPOINT never loads OpenTelemetry (and one with it does)."""
    loaded = modules_after(SETTLE_AN_ITEM.replace("ENDPOINT", repr(endpoint)))
    assert any(name.split(".")[0] == "opentelemetry" for name in loaded) is loads


CORE = ["agentsprint.domain", "agentsprint.store", "agentsprint.backlog", "agentsprint.agents", "agentsprint.llm"]
FRONT_END_AND_RUNTIME = {"textual", "typer", "click", "rich", "dbos"}
LITELLM_ADAPTER = "agentsprint.llm.provider"
"""Left out below: litellm itself imports rich and click, and only this module imports litellm."""


def core_modules(package: str) -> list[str]:
    """`package` and every module under it, but the litellm adapter."""
    folder = PACKAGE.parent / package.replace(".", "/")
    if not folder.is_dir():
        return [package]
    found = [f"{package}.{p.relative_to(folder).with_suffix('').as_posix().replace('/', '.')}"
             for p in sorted(folder.rglob("*.py")) if p.name != "__init__.py"]
    return [package, *(name for name in found if name != LITELLM_ADAPTER)]


@pytest.mark.parametrize("package", CORE)
def test_the_core_loads_no_front_end_or_runtime_library(package: str) -> None:
    """The headless core (domain, store, backlog, agents, llm) works without the CLI, the TUI or DBOS."""
    names = core_modules(package)
    code = ("import importlib, os\nos.environ['LITELLM_LOCAL_MODEL_COST_MAP'] = 'True'\n"
            f"for name in {names!r}:\n    importlib.import_module(name)")
    loaded = modules_after(code)
    assert set(names) <= set(loaded)
    assert sorted({name.split(".")[0] for name in loaded} & FRONT_END_AND_RUNTIME) == []
