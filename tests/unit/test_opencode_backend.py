"""The OpenCode backend's launch (argv, env, generated config) and its reading of OpenCode's session store."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from agentsprint.agents.backends import AgentLaunch, LaunchRequest
from agentsprint.agents.backends.opencode import ENV, SESSION_DB, OpenCodeBackend
from agentsprint.agents.backends.registry import get


def launched(tmp_path: Path) -> AgentLaunch:
    request = LaunchRequest(executable="opencode", prompt_file=tmp_path / "prompt.md", prompt="Fix it.",
                            home=tmp_path / "home", proxy_root="http://127.0.0.1:4321", token="tok-1",
                            model="openrouter/vendor/model-x", usd_left=0.25)
    return OpenCodeBackend().launch(request)


def test_the_only_provider_is_the_proxy_with_the_round_token_and_the_roles_model(tmp_path: Path) -> None:
    launch = launched(tmp_path)
    config = json.loads(launch.files["opencode.json"])
    provider = config["provider"]["agentsprint"]
    assert provider["options"] == {"baseURL": "http://127.0.0.1:4321/v1", "apiKey": "tok-1"}
    assert list(provider["models"]) == ["vendor/model-x"] and config["enabled_providers"] == ["agentsprint"]
    assert config["model"] == config["small_model"] == "agentsprint/vendor/model-x"
    assert config["permission"]["*"] == "allow" and config["permission"]["webfetch"] == "deny"
    assert (config["autoupdate"], config["share"]) == (False, "disabled")


def test_opencode_runs_headless_with_the_prompt_file_and_every_phone_home_off(tmp_path: Path) -> None:
    launch = launched(tmp_path)
    assert launch.argv[:2] == ["opencode", "run"] and launch.argv[-2:] == ["--file", str(tmp_path / "prompt.md")]
    assert all(" " not in word for word in launch.argv[2:-1]), "OpenCode would quote a message word with a space"
    assert launch.argv[launch.argv.index("-m") + 1] == "agentsprint/vendor/model-x"
    assert launch.env["OPENCODE_CONFIG"] == str(tmp_path / "home" / "opencode.json")
    assert {name: launch.env[name] for name in ENV} == ENV
    lock = json.loads(launch.files[".config/opencode/package-lock.json"])
    assert "@opencode-ai/plugin" in lock["packages"][""]["dependencies"]
    assert ".config/opencode/node_modules/.keep" in launch.files
    assert get("opencode").name == "opencode"


def store(home: Path) -> Path:
    path = home / SESSION_DB
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE message (id TEXT, session_id TEXT, time_created INT, data TEXT)")
        conn.execute("CREATE TABLE part (id TEXT, message_id TEXT, time_created INT, data TEXT)")
        conn.execute("INSERT INTO message VALUES ('m2', 's', 2, ?)",
                     (json.dumps({"role": "assistant", "error": {"name": "APIError"}}),))
        conn.execute("INSERT INTO message VALUES ('m1', 's', 1, ?)", (json.dumps({"role": "user"}),))
        conn.execute("INSERT INTO part VALUES ('p2', 'm2', 3, ?)", (json.dumps({"type": "text", "text": "ok"}),))
        conn.execute("INSERT INTO part VALUES ('p1', 'm1', 1, ?)", (json.dumps({"type": "text", "text": "do"}),))
    return path


def test_the_transcript_is_opencodes_session_store_in_order_with_errors(tmp_path: Path) -> None:
    store(tmp_path)
    lines = [json.loads(line) for line in OpenCodeBackend().transcript(tmp_path, "stdout").splitlines()]
    assert lines == [{"role": "user", "type": "text", "text": "do"},
                     {"role": "assistant", "type": "text", "text": "ok"},
                     {"role": "assistant", "type": "error", "error": {"name": "APIError"}}]


def test_without_a_session_store_the_transcript_is_the_output(tmp_path: Path) -> None:
    assert OpenCodeBackend().transcript(tmp_path, '{"type":"error"}') == '{"type":"error"}'
