"""Secrets that never leave, and usage that cannot refund a budget.

A planted secret (the value of `SHOP_API_TOKEN`, set for the run, and an `sk-...` key that is in no
environment) is written by the scripted model into plans, summaries, QA reasons and files, and by a
human into a title; it is then looked for in everything agentsprint keeps or prints: the SQLite
database and its WAL, the DBOS system database (its pickles decoded), the backlog cache, the CLI's
output and JSON exports, webhook payloads, and what reached the base branch.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from runner_support import TEST_CONFIG, item, make_project, query

from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, tool_call
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.store import Store
from agentsprint.store.events import verify_chain

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
TOKEN_NAME = "SHOP_API_TOKEN"
TOKEN = "shoptok-" + "Zq8Xv2Lm9Pw4Rt6Yb3Nc7Hd"  # no known key shape: only the env value says it is secret
KEY = "sk-" + "liveHq7Jx2Wv9Kp4Lm3Nz8Rb5Tc0"  # a key shape, in no environment


def variants(value: str) -> dict[str, str]:
    """Simple transformations of `value` an attacker uses to slip past a plain search."""
    raw = value.encode()
    found = {"plain": value, "reversed": value[::-1], "hex": raw.hex()}
    for shift in range(3):  # base64 of the value at each alignment inside a longer stream
        encoded = base64.b64encode(b"#" * shift + raw).decode()
        start, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6  # characters only the value decides
        found[f"base64+{shift}"] = encoded[start:end]
    return found


def leaks(blob: bytes, needles: dict[str, str]) -> list[str]:
    """Which needles `blob` holds: raw, in UTF-16, or inside base64 text (DBOS stores pickles so)."""
    texts = [blob, blob.replace(b"\x00", b"")]
    for chunk in re.findall(rb"[A-Za-z0-9+/]{40,}={0,2}", blob):
        with contextlib.suppress(binascii.Error, ValueError):
            texts.append(base64.b64decode(chunk + b"=" * (-len(chunk) % 4)))
    return sorted({name for name, needle in needles.items() for text in texts if needle.encode() in text})


def needles() -> dict[str, str]:
    return {**{f"token {k}": v for k, v in variants(TOKEN).items()}, "key": KEY, "key reversed": KEY[::-1]}


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env={**base, **(env or {})})


def files_of(root: Path) -> Iterator[Path]:
    state = root / ".agentsprint"
    for path in state.rglob("*"):
        if path.is_file() and "worktrees" not in path.relative_to(state).parts:
            yield path


def stored_leaks(root: Path) -> dict[str, list[str]]:
    """Leaks in every file of the state folder: databases, WAL, DBOS, caches, logs."""
    found = {str(p.relative_to(root)): leaks(p.read_bytes(), needles()) for p in files_of(root)}
    return {name: hit for name, hit in found.items() if hit}


@contextlib.contextmanager
def held_wal(url: str) -> Iterator[Path]:
    """Keep a read transaction open on the database, so the WAL is neither checkpointed nor removed."""
    Store(url).close()
    path = Path(url.removeprefix("sqlite:///"))
    reader = sqlite3.connect(path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchall()
        yield path.with_name(path.name + "-wal")
    finally:
        reader.close()


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps every body."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _titled(item_id: str, title: str, **kwargs: Any) -> Any:
    return item(item_id, **kwargs).model_copy(update={"title": title})


def _text_attack() -> tuple[ScriptBook, list[Any]]:
    """AS-1: plan, coder summary and QA reasons carry both secrets; the human's title carries the key."""
    plan = tool_call("submit_plan", steps=[f"Call the API with {TOKEN}", f"and with {KEY}"],
                     acceptance=[f"uses {TOKEN[::-1]}"], escalate=None)
    coder = [tool_call("write_file", path="shop/notes.py", content="NOTE = 'nothing secret'\n"),
             tool_call("finish", summary=f"used {TOKEN} and {KEY}; reversed {TOKEN[::-1]}")]
    verdict = tool_call("submit_verdict", verdict="reject", reasons=[f"leaks {TOKEN}", f"and {KEY}"])
    book = ScriptBook({"AS-1": plan}, {("AS-1", 1): coder}, {("AS-1", 1): verdict})
    items = [_titled("AS-1", f"Rotate the billing key {KEY}", dod=[], scope=["shop/notes.py"], rounds=1),
             _titled("AS-2", f"Second item with {KEY} in its title", dod=[], scope=["shop/two.py"])]
    return book, items


def test_model_and_human_text_with_secrets_is_never_stored_printed_or_sent(tmp_path: Path,
                                                                           receiver: Receiver) -> None:
    """Finding 5: plans, summaries, QA reasons and titles are redacted wherever they are kept or shown."""
    book, items = _text_attack()
    env = {TOKEN_NAME: TOKEN}
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, items, book,
                                config=TEST_CONFIG + f'\n[notify]\nwebhook = "{receiver.url}"\n')
        root = settings.root
        with held_wal(settings.database_url) as wal:
            outputs = [cli(root, "run", "--item", "AS-1", "--json", env=env)]
            outputs += [cli(root, *args, env=env) for args in (
                ("escalations", "show", "AS-1", "--json"), ("escalations", "list", "--json"), ("list", "--json"),
                ("show", "AS-1", "--json"), ("show", "AS-2", "--json"), ("escalations", "show", "AS-1"),
                ("show", "AS-1"), ("list",))]
            assert wal.stat().st_size > 100_000, "the WAL holds the run's writes"
            assert not leaks(wal.read_bytes(), needles())

    assert json.loads(outputs[0].stdout)["results"] == {"AS-1": "escalated"}, outputs[0].stdout
    shown = json.loads(outputs[1].stdout)
    assert shown["package"]["rounds"] and "[REDACTED]" in json.dumps(shown), "the package kept the text"
    listed = {entry["id"]: entry for entry in json.loads(outputs[3].stdout)}
    assert listed["AS-2"]["title"] == "Second item with [REDACTED] in its title"
    assert [o.returncode for o in outputs[1:]] == [0] * (len(outputs) - 1), [o.stderr for o in outputs]
    printed = {f"{' '.join(o.args[1:4])}": leaks((o.stdout + o.stderr).encode(), needles()) for o in outputs}
    assert not any(printed.values()), printed
    assert not stored_leaks(root)
    assert receiver.bodies and not leaks(b"\n".join(receiver.bodies), needles())
    assert query(settings, "SELECT count(*) FROM events")[0][0] > 5
    assert "[REDACTED]" in json.dumps(query(settings, "SELECT data_json FROM events"))
    store = Store(settings.database_url)
    try:
        with store.session() as session:
            assert verify_chain(session)[1] is None, "the audit chain holds: events are hashed as stored"
    finally:
        store.close()
    history = subprocess.run(["git", "log", "-p", "--text", "--all", "--format=%B", "--", ".", ":!backlog"],
                             cwd=root, capture_output=True, check=True).stdout
    assert not leaks(history, needles())


def _file_attack(files: dict[str, str]) -> tuple[ScriptBook, list[Any]]:
    coder = [*(tool_call("write_file", path=path, content=content) for path, content in files.items()),
             tool_call("finish", summary="configured")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): coder})
    return book, [item("AS-1", dod=["secrets"], scope=["shop/**"], rounds=1)]


def _run_file_attack(tmp_path: Path, files: dict[str, str]) -> tuple[Any, subprocess.CompletedProcess[str]]:
    book, items = _file_attack(files)
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, items, book)
        done = cli(settings.root, "run", "--item", "AS-1", "--json", env={TOKEN_NAME: TOKEN})
    return settings, done


def _gate_output(settings: Any) -> str:
    rows = query(settings, "SELECT package_json FROM escalations WHERE item_id = 'AS-1'")
    assert rows, "no escalation package"
    gates = json.loads(rows[0][0])["rounds"][-1]["gates"]
    return "\n".join(g["output"] for g in gates if g["kind"] == "secrets")


def _on_main(settings: Any) -> bytes:
    return subprocess.run(["git", "log", "-p", "--text", "main"], cwd=settings.root, capture_output=True,
                          check=True).stdout


def test_a_nul_byte_does_not_hide_a_key_from_the_secrets_gate(tmp_path: Path) -> None:
    """Finding 4: git calls the file binary and the text diff shows no added line; the gate reads the blob."""
    settings, done = _run_file_attack(tmp_path, {"shop/keys.py": f"\x00\nKEY = '{KEY}'\n"})

    assert json.loads(done.stdout)["results"] == {"AS-1": "escalated"}, done.stdout + done.stderr
    assert "shop/keys.py:2: " in _gate_output(settings)
    assert KEY.encode() not in _on_main(settings)
    assert not stored_leaks(settings.root)


def test_transformed_env_secret_values_in_files_are_refused_by_the_gate(tmp_path: Path) -> None:
    """Finding 3 (gate side): the value of a secret env var, plain or transformed, written into files."""
    shapes = {name: value for name, value in variants(TOKEN).items()}
    files = {f"shop/leak_{n}.txt": f"x = '{value}'\n" for n, value in enumerate(shapes.values())}
    files["shop/leak_utf16.txt"] = "\ufeff" + "".join(f"{ch}\x00" for ch in f"v={TOKEN}")  # UTF-16LE-ish
    settings, done = _run_file_attack(tmp_path, files)

    assert json.loads(done.stdout)["results"] == {"AS-1": "escalated"}, done.stdout + done.stderr
    output = _gate_output(settings)
    missing = [path for path in files if f"{path}:" not in output]
    assert not missing, output
    assert not leaks(_on_main(settings), needles())
    assert not stored_leaks(settings.root)


def test_a_reversed_secret_read_back_never_reaches_the_model(tmp_path: Path) -> None:
    """Finding 3 (redaction): a tool output holding the value reversed or base64-encoded is redacted."""
    content = f"a={TOKEN[::-1]}\nb={base64.b64encode(TOKEN.encode()).decode()}\nc={TOKEN.encode().hex()}\n"
    coder = [tool_call("read_file", path="shop/pagination.py"),
             tool_call("finish", summary="read")]
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): coder})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], rounds=1)], book)
        with (settings.root / "shop" / "pagination.py").open("a") as handle:  # a file the human committed
            handle.write("# " + content.replace("\n", "\n# ") + "\n")
        subprocess.run(["git", "commit", "-qam", "notes"], cwd=settings.root, check=True)
        done = cli(settings.root, "run", "--item", "AS-1", "--json", env={TOKEN_NAME: TOKEN})
        sent = json.dumps(server.requests).encode()

    assert done.returncode in (0, 1), done.stderr
    assert b"[REDACTED]" in sent
    assert not leaks(sent, needles())
    assert not stored_leaks(settings.root)


def test_negative_usage_is_charged_at_the_reservation_and_reported(tmp_path: Path) -> None:
    """Finding 6: a reply claiming -1,000,000 output tokens must not refund the budget."""
    liar = ScriptedReply(tool_calls=[tool_call("finish", summary="done")], completion_tokens=-1_000_000)
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): [liar]})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[], tokens=8000, rounds=1)], book)
        done = cli(settings.root, "run", "--item", "AS-1", "--json")

    spent = query(settings, "SELECT spent_tokens FROM budgets WHERE scope = 'item:AS-1'")[0][0]
    assert spent > 0, f"spend went negative: {spent}"
    calls = query(settings, "SELECT output_tokens, reserved_tokens, input_tokens FROM model_calls WHERE role = 'coder'")
    assert calls and all(out >= 0 for out, _, _ in calls)
    assert all(inp + out >= reserved for out, reserved, inp in calls), "charged less than the reservation"
    anomalies = query(settings, "SELECT usage_anomaly FROM model_calls WHERE role = 'coder'")
    assert all("negative" in (anomaly or "") for (anomaly,) in anomalies)
    kinds = [k for (k,) in query(settings, "SELECT kind FROM events")]
    assert "model.usage_anomaly" in kinds
    printed = (done.stdout + done.stderr).lower()
    assert "usage" in printed and "anomal" in printed, printed
