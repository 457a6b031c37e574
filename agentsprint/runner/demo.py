"""`agentsprint demo`: the whole flow offline on a sample repository with the scripted model server."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agentsprint import backlog
from agentsprint.config import STATE_DIR, templates_dir
from agentsprint.domain import Budget, Item, ItemType, Priority, parse_gate
from agentsprint.gitrepo import git_bytes

if TYPE_CHECKING:
    from agentsprint.runner.runtime import ProgressSink

CONFIG = """# agentsprint demo: every role talks to the scripted model server agentsprint started on 127.0.0.1.
[models.supervisor]
model = "openai/demo-supervisor"
api_base = "{base}"
input_cost_per_token = 0.000003
output_cost_per_token = 0.000015
max_tokens = 512

[models.coder]
model = "openai/demo-coder"
api_base = "{base}"
input_cost_per_token = 0.0000004
output_cost_per_token = 0.0000016
max_tokens = 512

[models.qa]
model = "openai/demo-qa"
api_base = "{base}"
input_cost_per_token = 0.0000004
output_cost_per_token = 0.0000016
max_tokens = 512

[run]
parallel = 2
base_branch = "main"
call_timeout = "30s"
num_retries = 1

[policy]
allowed_commands = ["python -m unittest"]
protected_paths = ["tests/**", "backlog/**", "agentsprint.toml"]
# bwrap where bubblewrap works; "none" only without it (this demo's agent is agentsprint's scripted model)
sandbox = "{sandbox}"
"""

BODY = "{what}\n\n## Acceptance criteria\n{criteria}\n"


def _item(item_id: str, title: str, type_: ItemType, value: int, what: str, criteria: list[str],
          dod: list[object], budget: Budget, depends_on: list[str] | None = None) -> Item:
    return Item(id=item_id, title=title, type=type_, priority=Priority.HIGH, value=value, depends_on=depends_on or [],
                scope=["shop/**"], budget=budget, dod=[parse_gate(g) for g in dod],
                body=BODY.format(what=what, criteria="\n".join(f"- {c}" for c in criteria)))


def demo_items() -> list[Item]:
    """Four items: one done first time, one after a QA rejection, one over budget, one for a human."""
    tests = {"tests": "python -m unittest -q"}
    return [
        _item("AS-1", "Fix off-by-one in pagination", ItemType.BUG, 8,
              "paginate() skips the first page: page 1 returns items 10-19.",
              ["page 1 starts with the first item", "tests/test_pagination.py passes"],
              [{"tests": "python -m unittest -q tests.test_pagination"}, "secrets"],
              Budget(tokens=60000, usd=0.5, time="5m", rounds=3)),
        _item("AS-2", "Add a discount helper", ItemType.FEATURE, 5,
              "Orders need a percentage discount on a price.",
              ["apply_discount(100, 15) == 85.0", "percent outside 0..100 raises ValueError"],
              [tests, "secrets"], Budget(tokens=60000, usd=0.5, time="5m", rounds=3), depends_on=["AS-1"]),
        _item("AS-3", "Tidy up the sales report", ItemType.REFACTOR, 2,
              "sales_report builds its total by hand; make it shorter without changing its output.",
              ["sales_report output unchanged"], [tests], Budget(tokens=2500, usd=0.05, time="5m", rounds=2)),
        _item("AS-4", "Export order lines as CSV", ItemType.FEATURE, 3,
              "Finance wants the order lines as CSV.",
              ["header row name,price,quantity,total", "one row per order line"],
              [tests, "secrets", {"review": "human"}], Budget(tokens=60000, usd=0.5, time="5m", rounds=3),
              depends_on=["AS-1"]),
    ]


def _git(cwd: Path, *args: str) -> None:
    """A git call of the sample's set-up that must succeed (WorkspaceError names it when it does not)."""
    git_bytes(cwd, *args, config=("user.name=agentsprint demo", "user.email=demo@agentsprint.invalid"))


def demo_sandbox() -> str:
    """The demo's `[policy] sandbox`: bubblewrap where it works, else "none" (its agent is the scripted
    model shipped with agentsprint, so a fresh machine without bubblewrap can still run the demo)."""
    from agentsprint.sandbox import bwrap_problem

    return "bwrap" if bwrap_problem() is None else "none"


def create_sample(target: Path, base_url: str, items: list[Item] | None = None, config: str = CONFIG,
                  sandbox: str | None = None) -> Path:
    """A git repository with a real bug, its tests, a backlog and a config for the scripted server.

    `sandbox` fills the config's `{sandbox}` (default: `demo_sandbox()`)."""
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty: give the demo an empty or new folder (--dir)")
    shutil.copytree(templates_dir() / "demo" / "repo", target, dirs_exist_ok=True)
    text = config.format(base=base_url, sandbox=sandbox or demo_sandbox())
    (target / "agentsprint.toml").write_text(text, encoding="utf-8")
    (target / ".gitignore").write_text(f"{STATE_DIR}/\n__pycache__/\n", encoding="utf-8")
    for item in demo_items() if items is None else items:
        backlog.write_item(target / "backlog", item)
    _git(target, "init", "-q", "-b", "main")
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "Sample shop with a pagination bug, and its backlog")
    return target


@dataclass
class DemoResult:
    root: Path
    results: dict[str, str]
    expected: dict[str, str]
    seconds: float
    sandbox: str = "bwrap"

    @property
    def as_designed(self) -> bool:
        return self.results == self.expected


EXPECTED = {"AS-1": "done", "AS-2": "done", "AS-3": "escalated", "AS-4": "awaiting_review"}


def default_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="agentsprint-demo-"))


def run_demo(target: Path, progress: ProgressSink | None = None, parallel: int = 2) -> DemoResult:
    """Create the sample, serve the scripted models, run the sprint; the server stops afterwards."""
    from agentsprint.config import load_settings
    from agentsprint.llm.scripted import ScriptedServer
    from agentsprint.runner.demo_script import RESPONDERS
    from agentsprint.runner.service import run_items

    with ScriptedServer(responders=dict(RESPONDERS)) as server:
        create_sample(target, server.base_url, sandbox=demo_sandbox())
        settings = load_settings(target, environ={})
        report = run_items(settings, [i.id for i in demo_items()], parallel=parallel, progress=progress)
    return DemoResult(target, dict(report.results), EXPECTED, report.seconds, settings.policy.sandbox)
