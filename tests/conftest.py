"""Shared fixtures: offline model env, isolated git identity, a real temporary git repository."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentsprint.config import Settings, offline_env
from agentsprint.llm.gateway import Gateway
from agentsprint.llm.proxy import MeteringProxy
from agentsprint.llm.scripted import ScriptedServer
from agentsprint.store import Store

offline_env()

# The runner helpers of the functional tests (a sample project wired to the scripted model server)
# are shared with the hostile-input suite in tests/security/. One conftest only: a second one would
# take the module name `conftest` from this file (`from conftest import postgres_url`).
sys.path.insert(0, str(Path(__file__).resolve().parent / "functional"))

_PG_URL = os.environ.get("AGENTSPRINT_TEST_PG_URL", "")
_PG_REQUIRED = bool(os.environ.get("AGENTSPRINT_TEST_PG_REQUIRED"))  # read before _isolated_env clears it
_AGENTS_BIN = Path(os.environ.get("AGENTSPRINT_TEST_AGENTS_BIN")
                   or Path(__file__).resolve().parent.parent / ".ci" / "agents" / "bin")
_AGENTS_REQUIRED = bool(os.environ.get("AGENTSPRINT_TEST_AGENTS_REQUIRED"))


def postgres_url() -> str:
    """The test PostgreSQL server's URL. Without one the test is skipped, or fails when
    AGENTSPRINT_TEST_PG_REQUIRED is set (CI sets it: a server that did not start must not pass as a skip)."""
    if not _PG_URL:
        if _PG_REQUIRED:
            pytest.fail("AGENTSPRINT_TEST_PG_REQUIRED is set but AGENTSPRINT_TEST_PG_URL is not: "
                        "the PostgreSQL test server did not start")
        pytest.skip("AGENTSPRINT_TEST_PG_URL is not set")
    return _PG_URL


def agent_cli(name: str) -> Path:
    """The real agent CLI `name` (claude, codex, aider, gemini, opencode) that .ci/install-agents.sh
    installed. Without it the test is skipped, or fails when AGENTSPRINT_TEST_AGENTS_REQUIRED is set
    (CI sets it: an agent that did not install must not pass as a skip)."""
    executable = _AGENTS_BIN / name
    if not executable.exists():
        message = f"agent CLI {name} is not installed at {executable} (run .ci/install-agents.sh)"
        if _AGENTS_REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return executable


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's agentsprint env, git config or editor."""
    for name in list(os.environ):
        if name.startswith("AGENTSPRINT_") and name != "AGENTSPRINT_TEST_PG_URL":
            monkeypatch.delenv(name)
    # A CI service's CI=true would make every `agentsprint run` a `--ci` run (no live board), and its
    # GITHUB_STEP_SUMMARY would collect every test run's summary: tests that want them set them.
    for name in ("CI", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / ".gitconfig-global"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return stdout (raises on failure)."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty git repository on branch main with one initial commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# sample\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A running scripted OpenAI-compatible model server on 127.0.0.1 (no replies queued yet)."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """The same as `scripted_server`, under the name most runner tests use."""
    with ScriptedServer() as srv:
        yield srv


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if nested else value
    return merged


def settings_for(server: ScriptedServer, **overrides: Any) -> Settings:
    """Settings whose roles call `server`: model "openai/<role>-model" with a price override.

    Token estimates are exact (safety factor 1.0: the server counts with the same tiktoken code), so
    budget tests run at the boundary. `overrides` merge deeply, e.g. run={"num_retries": 0},
    models={"coder": {"max_tokens": 100}}.
    """
    models = {role: {"model": f"openai/{role}-model", "api_base": server.base_url, "max_tokens": 1024,
                     "input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6}
              for role in ("supervisor", "coder", "qa")}
    data = _merge({"models": models, "run": {"token_safety_factor": 1.0, "call_timeout": "10s"}}, overrides)
    return Settings.model_validate(data)


# The metering proxy's tests (test_proxy*.py): a store, a gateway whose coder is the scripted server's
# "coder-model", and a running proxy. Modules with fixtures of the same names use their own.
@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'agentsprint.db'}")
    yield opened
    opened.close()


@pytest.fixture
def gateway(scripted_server: ScriptedServer, store: Store) -> Gateway:
    from proxy_support import proxy_gateway

    return proxy_gateway(scripted_server, store)


@pytest.fixture
def proxy(gateway: Gateway) -> Iterator[MeteringProxy]:
    with MeteringProxy(gateway) as running:
        yield running
