"""Helpers for metering-proxy tests: a gateway on real SQLite behind a proxy in front of the scripted server."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import settings_for

from agentsprint.agents.external import agent_environment
from agentsprint.llm.gateway import Gateway
from agentsprint.llm.proxy import Grant, MeteringProxy
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer
from agentsprint.store import Store

FAKE_AGENT = Path(__file__).resolve().parents[1] / "fakes" / "fake_agent_cli.py"
PROTOCOLS = ("openai-chat", "openai-responses", "anthropic-messages")
REPLY = ScriptedReply(content="I read it. " * 20)


def proxy_gateway(server: ScriptedServer, store: Store, **overrides: Any) -> Gateway:
    """A gateway whose coder model is the scripted server's "coder-model" (min reply 16 tokens)."""
    run = {"min_reply_tokens": 16, "num_retries": 0, **overrides.pop("run", {})}
    server.add("coder-model", responder=lambda _body: REPLY)
    return Gateway(settings_for(server, run=run, **overrides), store, backoff=0.0)


def agent_env(proxy: MeteringProxy, grant: Grant) -> dict[str, str]:
    """The environment the runner gives an external agent (agents.external.agent_environment)."""
    return {**agent_environment(proxy, grant.token), "PATH": os.environ.get("PATH", "")}


def fake_agent_command(*options: str) -> str:
    """A `command` template running the fake agent CLI with `options`."""
    return shlex.join([sys.executable, str(FAKE_AGENT), *options]) + " {prompt_file}"


def run_fake_agent(workdir: Path, env: dict[str, str], *options: str) -> list[dict[str, Any]]:
    """Run the fake agent CLI in `workdir` to its end; its call log."""
    prompt = workdir / "prompt.md"
    prompt.write_text("Fix the bug in shop/cart.py.\n", encoding="utf-8")
    subprocess.run([sys.executable, str(FAKE_AGENT), *options, str(prompt)], cwd=workdir, env=env, check=True,
                   timeout=120)
    return list(json.loads((workdir / "fake_agent_log.json").read_text(encoding="utf-8")))


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """POST raw bytes; (status, parsed JSON body or text)."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text
