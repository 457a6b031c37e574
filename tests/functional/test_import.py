"""`agentsprint import github | csv` through the installed script, in a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentsprint.backlog import load_backlog

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
ISSUES = [
    {"number": 12, "title": "Login fails with a + in the password", "body": "Steps:\n1. log in",
     "labels": [{"name": "bug", "color": "d73a4a"}, {"name": "Critical"}, {"name": "api"}],
     "url": "https://github.com/acme/shop/issues/12", "milestone": None},
    {"number": 13, "title": "Dark mode", "body": "", "labels": [{"name": "enhancement"}],
     "url": "https://github.com/acme/shop/issues/13", "milestone": {"number": 1, "title": "billing"}},
    {"number": 14, "title": "", "body": "no title", "labels": [], "url": "https://github.com/acme/shop/issues/14",
     "milestone": None},
    {"number": 15, "title": "Export without the url field", "body": "", "labels": [], "milestone": None},
]


def cli(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env,
                          input=stdin)


@pytest.fixture
def project(git_repo: Path) -> Path:
    assert cli(git_repo, "init").returncode == 0
    return git_repo


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder` with its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def items_by_source(root: Path) -> dict[str, dict[str, Any]]:
    listed = json.loads(cli(root, "list", "--json").stdout)
    return {str(record["source"]): record for record in listed}


def test_github_issues_become_items_and_bad_ones_are_named(project: Path) -> None:
    (project / "issues.json").write_text(json.dumps(ISSUES))

    done = cli(project, "import", "github", "issues.json")

    assert done.returncode == 1, "two issues could not be imported"
    assert "issues.json: issue #14: title:" in done.stderr
    assert "issues.json: issue #15: no url" in done.stderr and "Traceback" not in done.stderr
    assert "2 created, 0 already imported, 2 not imported" in done.stdout
    found = items_by_source(project)
    login = found["https://github.com/acme/shop/issues/12"]
    assert (login["type"], login["priority"], login["labels"]) == ("bug", "critical", ["bug", "Critical", "api"])
    dark = found["https://github.com/acme/shop/issues/13"]
    assert (dark["type"], dark["priority"], dark["epic"]) == ("feature", "medium", None), "no billing epic yet"
    assert json.loads(cli(project, "show", str(login["id"]), "--json").stdout)["body"] == "Steps:\n1. log in\n"
    assert cli(project, "validate").returncode == 0


def test_reimporting_the_same_issues_changes_nothing_and_duplicates_nothing(project: Path) -> None:
    (project / "issues.json").write_text(json.dumps(ISSUES[:2]))
    assert cli(project, "import", "github", "issues.json").returncode == 0
    before = snapshot(project / "backlog")

    again = cli(project, "import", "github", "-", stdin=json.dumps(ISSUES[:2]))

    assert again.returncode == 0, again.stderr
    assert snapshot(project / "backlog") == before, "no file written, none added"
    assert "0 created, 2 already imported, 0 not imported" in again.stdout
    assert "unchanged issue #12: already imported as AS-1" in again.stdout


def test_a_file_that_is_not_json_is_refused_whole(project: Path) -> None:
    (project / "issues.json").write_text('[{"number": 1,\n  "title": oops}]\n')
    before = snapshot(project / "backlog")

    done = cli(project, "import", "github", "issues.json")

    assert done.returncode == 2
    assert done.stderr.startswith("error: issues.json:2: not JSON"), done.stderr
    assert "Traceback" not in done.stderr and snapshot(project / "backlog") == before


def test_a_json_object_instead_of_a_list_is_refused(project: Path) -> None:
    done = cli(project, "import", "github", "-", stdin=json.dumps(ISSUES[0]))
    assert done.returncode == 2 and "expected a JSON array of issues" in done.stderr


def test_import_config_maps_labels_and_sets_defaults_and_template(project: Path) -> None:
    config = project / "agentsprint.toml"
    config.write_text('[import]\nlabels = {defect = "bug", p1 = "high"}\ntype = "chore"\npriority = "low"\n'
                      'template = "bug"\n')
    (project / "backlog" / "epics").mkdir()
    (project / "backlog" / "epics" / "billing.yml").write_text("title: Billing\nbudget: {tokens: 1000, usd: 1}\n")
    issues: list[dict[str, Any]] = [{**ISSUES[0], "labels": [{"name": "p1"}, {"name": "defect"}]},
              {**ISSUES[1], "labels": [{"name": "bug"}]}]

    assert cli(project, "import", "github", "-", stdin=json.dumps(issues)).returncode == 0

    found = items_by_source(project)
    mapped, unmapped = found[issues[0]["url"]], found[issues[1]["url"]]
    assert (mapped["type"], mapped["priority"]) == ("bug", "high")
    assert (unmapped["type"], unmapped["priority"]) == ("chore", "low"), "the table replaced the default bug label"
    assert unmapped["epic"] == "billing", "a milestone named like an epic joins it"
    assert mapped["budget"]["tokens"] and mapped["dod"], "the bug template's budget and DoD"


def test_a_label_mapped_to_nothing_known_is_a_config_error(project: Path) -> None:
    config = project / "agentsprint.toml"
    config.write_text('[import]\nlabels = {defect = "bugfix"}\n')
    done = cli(project, "import", "github", "-", stdin="[]")
    assert done.returncode == 2 and "'defect' maps to 'bugfix'" in done.stderr and "agentsprint.toml" in done.stderr


CSV = ('Title,Type,Priority,Value,Body,Tokens,USD\n'
       'Speed up search,performance,High,5,"Search is slow.\nMake it fast.",200000,1.50\n'
       'Bad type,nonsense,high,3,,,\n'
       '\n'
       'Plain row,,,,,,\n'
       'Negative budget,bug,low,1,,-5,\n')


def test_csv_rows_become_items_and_bad_rows_are_named_by_row(project: Path) -> None:
    (project / "roadmap.csv").write_text(CSV)

    done = cli(project, "import", "csv", "roadmap.csv")

    assert done.returncode == 1
    assert "roadmap.csv: row 3: type:" in done.stderr, "row 2 spans two lines; rows are records"
    assert "roadmap.csv: row 6: budget.tokens: must not be negative" in done.stderr
    found = items_by_source(project)
    speed = found["csv:roadmap.csv#Speed up search"]
    assert (speed["type"], speed["priority"], speed["value"]) == ("performance", "high", 5)
    assert speed["budget"]["tokens"] == 200000 and speed["budget"]["usd"] == 1.5
    assert found["csv:roadmap.csv#Plain row"]["type"] == "feature"
    assert len(found) == 2
    before = snapshot(project / "backlog")
    assert "0 created, 2 already imported" in cli(project, "import", "csv", "roadmap.csv").stdout
    assert snapshot(project / "backlog") == before


def test_a_csv_source_column_is_the_identity(project: Path) -> None:
    (project / "a.csv").write_text("title,source\nOne,JIRA-1\n")
    (project / "b.csv").write_text("title,source\nOne renamed,JIRA-1\n")
    assert cli(project, "import", "csv", "a.csv").returncode == 0
    again = cli(project, "import", "csv", "b.csv")
    assert again.returncode == 0 and "already imported as AS-1" in again.stdout
    assert len(load_backlog(project / "backlog").items) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("name,type\nx,bug\n", "row 1: no title column"),
    ("title,owner\nx,me\n", "row 1: unknown column 'owner'"),
    ("", "row 1: no title column"),
])
def test_a_csv_header_that_cannot_be_read_imports_nothing(project: Path, text: str, message: str) -> None:
    (project / "r.csv").write_text(text)
    before = snapshot(project / "backlog")
    done = cli(project, "import", "csv", "r.csv")
    assert done.returncode == 2 and f"r.csv: {message}" in done.stderr, done.stderr
    assert snapshot(project / "backlog") == before


def test_a_missing_file_is_a_usage_error(project: Path) -> None:
    done = cli(project, "import", "csv", "nowhere.csv")
    assert done.returncode == 2 and "nowhere.csv: cannot read" in done.stderr


def test_the_same_source_twice_in_one_file_is_imported_once(project: Path) -> None:
    (project / "r.csv").write_text("title\nTwice\nTwice\n")
    done = cli(project, "import", "csv", "r.csv")
    assert done.returncode == 1 and "r.csv: row 3: same source as row 2" in done.stderr
    assert len(load_backlog(project / "backlog").items) == 1


def test_a_source_that_is_not_one_line_of_text_is_a_validation_error(project: Path) -> None:
    (project / "backlog" / "AS-1-x.md").write_text("---\nid: AS-1\ntitle: x\nsource: [a, b]\n---\nx\n")
    done = cli(project, "validate")
    assert done.returncode == 1 and done.stdout.startswith("backlog/AS-1-x.md:4: source:"), done.stdout
