"""`run` checks what it can before it pays: keys, prices, base branch, backlog, uncommitted files, sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import settings_for
from runner_support import TEST_CONFIG, git, item, make_project

from agentsprint.llm.context import CallContext
from agentsprint.llm.errors import ProviderError
from agentsprint.llm.gateway import Gateway
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook
from agentsprint.store import Store

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
ASK = [{"role": "user", "content": "Fix the bug."}]
CTX = CallContext(role="coder", item_id="AS-1", run_id="r1", round=1, scopes=["item:AS-1"])
BROKEN_ITEM = "---\nid: AS-9\ntitle: [unclosed\n---\nbody\n"



def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_") and not k.endswith("_API_KEY")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=base | env)


def _project(root: Path, server: ScriptedServer, config: str = TEST_CONFIG) -> Path:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): CODER[("AS-1", 1)]})
    make_project(root, server, [item("AS-1", dod=[], rounds=1)], book, config=config)
    return root


def _commit_all(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "setup")


def test_every_problem_is_listed_at_once_with_exit_2_and_no_model_call(tmp_path: Path, server: ScriptedServer) -> None:
    root = _project(tmp_path / "p", server)
    config = (root / "agentsprint.toml").read_text()
    config = config.replace('model = "openai/t-coder"', 'model = "openai/t-coder"\napi_key_env = "T_CODER_KEY"')
    config = config.replace("input_cost_per_token = 0.000003\noutput_cost_per_token = 0.000015\n", "")
    config = config.replace('base_branch = "main"', 'base_branch = "trunk"')
    config = config.replace(', "agentsprint.toml"]', "]")  # unprotected: an agent's change would be merged
    (root / "agentsprint.toml").write_text(config)
    (root / "backlog" / "AS-9-broken.md").write_text(BROKEN_ITEM)

    done = cli(root, "run", "--ci")

    assert done.returncode == 2, done.stdout + done.stderr
    text = " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert "models.coder" in text and "T_CODER_KEY" in text, "the missing key"
    assert "price unknown for supervisor: openai/t-supervisor" in text, "the unknown price under a USD budget"
    assert "run.base_branch: 'trunk'" in text, "the missing base branch"
    assert "AS-9-broken.md" in text, "the backlog file that does not parse"
    assert "agentsprint.toml: not committed" in text, "the uncommitted configuration"
    assert server.requests == {}, "no model was called"


def test_a_selected_item_file_that_is_not_committed_is_refused(tmp_path: Path, server: ScriptedServer) -> None:
    root = _project(tmp_path / "p", server)
    item_file = next((root / "backlog").glob("AS-1-*.md"))
    item_file.write_text(item_file.read_text().replace("Work on AS-1.", "Work on AS-1 (edited)."))

    done = cli(root, "run", "--ci", "--item", "AS-1")

    assert done.returncode == 2, done.stdout + done.stderr
    assert f"backlog/{item_file.name}: not committed" in " ".join(done.stderr.split())
    assert server.requests == {}


def test_an_edited_but_protected_config_does_not_stop_a_run(tmp_path: Path, server: ScriptedServer) -> None:
    root = _project(tmp_path / "p", server)
    config = root / "agentsprint.toml"
    config.write_text(config.read_text().replace("parallel = 2", "parallel = 1"))

    done = cli(root, "run", "--ci", "--item", "AS-1")

    assert done.returncode == 0, done.stdout + done.stderr


def test_a_bare_run_reports_a_backlog_file_that_does_not_parse(tmp_path: Path, server: ScriptedServer) -> None:
    root = _project(tmp_path / "p", server)
    (root / "backlog" / "AS-9-broken.md").write_text(BROKEN_ITEM)
    _commit_all(root)

    done = cli(root, "run", "--ci")

    assert done.returncode == 2, done.stdout + done.stderr
    assert "AS-9-broken.md:" in done.stderr and server.requests == {}


def test_a_loopback_server_needs_no_key_and_a_clean_project_runs(tmp_path: Path, server: ScriptedServer) -> None:
    root = _project(tmp_path / "p", server)

    done = cli(root, "run", "--ci", "--item", "AS-1")

    assert done.returncode == 0, done.stdout + done.stderr
    assert server.requests.get("t-coder"), "the run went ahead and called the models"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_kind_auth_and_not_retried(tmp_path: Path, server: ScriptedServer, status: int) -> None:
    server.add("coder-model", ScriptedReply(status=status), ScriptedReply(content="ok"))
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    gateway = Gateway(settings_for(server, run={"num_retries": 3}), store, backoff=0.0)

    with pytest.raises(ProviderError) as failed:
        gateway.complete(CTX, ASK)

    store.close()
    assert (failed.value.kind, failed.value.retries) == ("auth", 0)
    assert len(server.requests["coder-model"]) == 1, "an auth error is never retried"


def test_a_missing_provider_key_is_kind_auth_not_a_retried_server_error(
        tmp_path: Path, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    settings = settings_for(server, run={"num_retries": 3},
                            models={"coder": {"model": "openai/gpt-4o-mini", "api_base": None}})
    attempts: list[float] = []
    gateway = Gateway(settings, store, backoff=1.0, sleep=attempts.append)

    with pytest.raises(ProviderError) as failed:
        gateway.complete(CTX, ASK)

    store.close()
    assert failed.value.kind == "auth" and failed.value.retries == 0 and attempts == []
