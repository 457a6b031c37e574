"""The audit commands on a real run: export checked by the documented stdlib script, timeline, anchors."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from runner_support import item, make_project

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedServer
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook
from agentsprint.runner.service import run_items
from agentsprint.store.events import event_hash

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def documented_script(folder: Path) -> Path:
    """The verifier script exactly as docs/audit.md prints it."""
    found = re.search(r"```python\n(# verify_export\.py.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert found, "docs/audit.md holds the verifier script"
    script = folder / "verify_export.py"
    script.write_text(found.group(1), encoding="utf-8")
    return script


def stdlib_python(*args: str) -> subprocess.CompletedProcess[str]:
    """Run Python isolated and without site-packages: only the standard library is importable."""
    return subprocess.run([sys.executable, "-I", "-S", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    root = tmp_path_factory.mktemp("audit") / "p"
    with ScriptedServer() as server:
        book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): CODER[("AS-1", 1)]})
        settings = make_project(root, server, [item("AS-1", dod=[{"tests": "python -m unittest -q"}, "secrets",
                                                                 {"review": "human"}])], book)
        assert run_items(settings, ["AS-1"]).results == {"AS-1": "awaiting_review"}
    approved = cli(root, "review", "approve", "AS-1")
    assert approved.returncode == 0, approved.stderr
    return root, settings


def test_a_real_runs_export_verifies_with_the_documented_stdlib_script(
        project: tuple[Path, Settings], tmp_path: Path) -> None:
    root, settings = project
    out = tmp_path / "events.jsonl"
    done = cli(root, "audit", "export", "-o", str(out))
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    kinds = {e["kind"] for e in events}
    assert {"run.start", "item.status", "model.call", "tool.call", "round", "review"} <= kinds
    start = next(e for e in events if e["kind"] == "run.start")
    assert start["data"]["settings_sha256"] == settings.fingerprint()
    assert any(e["kind"] == "review" and e["actor"].startswith("human:") for e in events)
    assert all(e["data"]["gates"] for e in events if e["kind"] == "round"), "gate results are in the chain"
    script = documented_script(tmp_path)
    checked = stdlib_python(str(script), str(out))
    assert checked.returncode == 0 and checked.stdout.startswith(f"ok: {len(events)} events"), checked
    assert events[-1]["hash"] in cli(root, "audit", "verify").stdout, "verify prints the same head"


def test_the_documented_script_names_a_tampered_export_line(project: tuple[Path, Settings], tmp_path: Path) -> None:
    root, _ = project
    out = tmp_path / "events.jsonl"
    assert cli(root, "audit", "export", "-o", str(out)).returncode == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    tampered = json.loads(lines[3])
    tampered["actor"] = "human:mallory"
    lines[3] = json.dumps(tampered)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    checked = stdlib_python(str(documented_script(tmp_path)), str(out))
    assert checked.returncode == 1 and f"line 4: event #{tampered['seq']} does not match its hash" in checked.stderr


def test_item_export_is_only_that_items_events_and_checks_as_filtered(
        project: tuple[Path, Settings], tmp_path: Path) -> None:
    root, _ = project
    out = tmp_path / "item.jsonl"
    assert cli(root, "audit", "export", "--item", "as-1", "--since", "2020-01-01", "-o", str(out)).returncode == 0
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert events and {e["item_id"] for e in events} == {"AS-1"}
    assert stdlib_python(str(documented_script(tmp_path)), str(out), "--filtered").returncode == 0
    assert stdlib_python(str(documented_script(tmp_path)), str(out)).returncode == 1, "gaps fail a full check"


def test_show_prints_the_items_timeline_with_who_did_what(project: tuple[Path, Settings]) -> None:
    root, _ = project
    done = cli(root, "audit", "show", "AS-1")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert re.search(r"item\.status\s+runner\s+planned -> running", text)
    assert re.search(r"model\.call\s+agent:supervisor\s+supervisor openai/t-supervisor: ok, \d+ in / \d+ out, \$", text)
    assert re.search(r"handoff\s+agent:qa\s+qa called submit_verdict \(valid\)", text)
    assert re.search(r"tool\.call\s+agent:coder\s+coder edit_file \{.*\} -> ok", text)
    assert re.search(r"round\s+runner\s+round 1: gates \[.*secrets passed.*tests passed\], verdict approve", text)
    assert re.search(r"review\s+human:.+\s+approve$", text, re.M)
    missing = cli(root, "audit", "show", "AS-404")
    assert missing.returncode == 1 and "AS-404: no events" in missing.stderr


def _forge_from(db: Path, seq: int) -> None:
    """Rewrite event `seq`'s actor and recompute every hash from it on: a consistent, forged chain."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET actor = 'human:mallory' WHERE id = ?", (seq,))
        prev = conn.execute("SELECT hash FROM events WHERE id < ? ORDER BY id DESC LIMIT 1", (seq,)).fetchone()[0]
        rows = conn.execute("SELECT id, at, kind, item_id, run_id, actor, data_json FROM events WHERE id >= ? "
                            "ORDER BY id", (seq,)).fetchall()
        for row_id, *fields in rows:
            digest = event_hash(prev, *fields)
            conn.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, row_id))
            prev = digest


def test_anchor_then_a_rebuilt_table_fails_verify_naming_the_event(
        project: tuple[Path, Settings], tmp_path: Path) -> None:
    root, settings = project
    intact = cli(root, "audit", "verify", "--json")
    assert intact.returncode == 0, intact.stderr
    head = json.loads(intact.stdout)["head"]
    anchored = cli(root, "audit", "anchor")
    assert anchored.returncode == 0 and f"#{head['seq']} {head['hash']}" in anchored.stdout, anchored.stderr
    assert "refs/notes/agentsprint-audit" in anchored.stdout
    again = json.loads(cli(root, "audit", "verify", "--json").stdout)
    assert again["ok"] and again["anchors"] == 1
    _forge_from(Path(settings.database_url.removeprefix("sqlite:///")), 5)
    forged = cli(root, "audit", "verify", "--json")
    report = json.loads(forged.stdout)
    assert forged.returncode == 1 and report["broken"]["problem"] == "rewritten"
    assert report["broken"]["seq"] == head["seq"] and report["checked"] == head["seq"]
    plain = cli(root, "audit", "verify")
    assert plain.returncode == 1 and f"chain BROKEN at event #{head['seq']}" in plain.stdout
    assert "head: #" in plain.stdout


def test_audit_errors_exit_2_without_a_traceback(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert cli(tmp_path, "init").returncode == 0
    missing = cli(tmp_path, "audit", "verify")
    assert missing.returncode == 2 and "no database at" in missing.stderr and "Traceback" not in missing.stderr
    bad = cli(tmp_path, "audit", "export", "--since", "yesterday", "-o", str(tmp_path / "x.jsonl"))
    assert bad.returncode == 2 and "--since 'yesterday': not a date" in bad.stderr
    (tmp_path / "anchors.jsonl").write_text("garbage\n")
    anchors = cli(tmp_path, "audit", "verify", "--anchors", str(tmp_path / "anchors.jsonl"))
    assert anchors.returncode == 2 and "anchors.jsonl:1: not an anchor" in anchors.stderr
    assert not (tmp_path / "x.jsonl").exists()
