"""`agentsprint llm test` against the scripted server: a passing configuration and each diagnosis."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentsprint.cli.main import build_app
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer

PRICES = "input_cost_per_token = 0.000001\noutput_cost_per_token = 0.000004\n"


def write_config(root: Path, sections: dict[str, str]) -> None:
    text = "".join(f"[models.{role}]\n{body}\n" for role, body in sections.items())
    (root / "agentsprint.toml").write_text(text + '[run]\ncall_timeout = "5s"\n')


def model(server: ScriptedServer, name: str, extra: str = PRICES) -> str:
    return f'model = "openai/{name}"\napi_base = "{server.base_url}"\n{extra}'


def llm_test(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.chdir(root)
    result = CliRunner().invoke(build_app(), ["llm", "test", *args])
    return result.exit_code, result.output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_role_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripted_server: ScriptedServer) -> None:
    scripted_server.add("*", ScriptedReply(content="ok"), repeat=True)
    write_config(tmp_path, {role: model(scripted_server, f"{role}-model") for role in ("supervisor", "coder", "qa")})
    code, output = llm_test(tmp_path, monkeypatch, "--json")
    assert code == 0, output
    results = json.loads(output)
    assert [r["role"] for r in results] == ["supervisor", "coder", "qa"]
    for result in results:
        assert result["ok"] and result["diagnosis"] is None
        assert result["latency_ms"] > 0 and result["input_tokens"] > 0 and result["output_tokens"] == 1
        assert result["usd"] == pytest.approx(result["input_tokens"] * 1e-6 + 4e-6)
    assert sorted(scripted_server.requests) == ["coder-model", "qa-model", "supervisor-model"]
    assert scripted_server.requests["coder-model"][0]["max_tokens"] == 16


def test_human_output_and_role_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      scripted_server: ScriptedServer) -> None:
    scripted_server.add("*", ScriptedReply(content="ok"), repeat=True)
    write_config(tmp_path, {role: model(scripted_server, f"{role}-model") for role in ("supervisor", "coder", "qa")})
    code, output = llm_test(tmp_path, monkeypatch, "--role", "coder")
    assert code == 0, output
    assert "ok   coder" in output and "openai/coder-model" in output and "supervisor" not in output
    assert list(scripted_server.requests) == ["coder-model"]


def test_diagnoses_name_what_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    scripted_server: ScriptedServer) -> None:
    scripted_server.add("*", ScriptedReply(content="ok"), repeat=True)
    monkeypatch.delenv("AGENTSPRINT_TEST_MISSING_KEY", raising=False)
    dead_base = f"http://127.0.0.1:{free_port()}/v1"
    write_config(tmp_path, {
        "supervisor": model(scripted_server, "supervisor-model", extra=""),
        "coder": model(scripted_server, "coder-model", extra=PRICES + 'api_key_env = "AGENTSPRINT_TEST_MISSING_KEY"\n'),
        "qa": f'model = "openai/qa-model"\napi_base = "{dead_base}"\n{PRICES}',
    })
    code, output = llm_test(tmp_path, monkeypatch, "--json")
    assert code == 1, output
    by_role = {r["role"]: r for r in json.loads(output)}
    assert not any(r["ok"] for r in by_role.values())
    assert "price unknown for openai/supervisor-model" in by_role["supervisor"]["diagnosis"]
    assert by_role["supervisor"]["latency_ms"] is not None  # the call itself worked
    assert by_role["coder"]["diagnosis"] == "no API key: set the environment variable AGENTSPRINT_TEST_MISSING_KEY"
    assert by_role["qa"]["diagnosis"].startswith(f"cannot reach {dead_base}")
    assert "coder-model" not in scripted_server.requests  # no key: no call


def test_timeout_and_server_error_diagnoses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            scripted_server: ScriptedServer) -> None:
    scripted_server.add("supervisor-model", ScriptedReply(hang=30))
    scripted_server.add("coder-model", ScriptedReply(status=500))
    write_config(tmp_path, {"supervisor": model(scripted_server, "supervisor-model"),
                            "coder": model(scripted_server, "coder-model")})
    text = (tmp_path / "agentsprint.toml").read_text().replace('call_timeout = "5s"', 'call_timeout = "1s"')
    (tmp_path / "agentsprint.toml").write_text(text)
    code, output = llm_test(tmp_path, monkeypatch, "--json")
    assert code == 1
    by_role = {r["role"]: r for r in json.loads(output)}
    expected = f"no answer from {scripted_server.base_url} within 1s (run.call_timeout)"
    assert by_role["supervisor"]["diagnosis"] == expected
    assert by_role["coder"]["diagnosis"].startswith("server: ")
    assert len(scripted_server.requests["coder-model"]) == 1  # no retries for a test call


def test_configuration_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "agentsprint.toml").write_text("[run]\nnum_retries = \"many\"\n")
    code, output = llm_test(tmp_path, monkeypatch)
    assert code == 2 and "num_retries" in output
    (tmp_path / "agentsprint.toml").write_text("")
    code, output = llm_test(tmp_path, monkeypatch, "--role", "designer")
    assert code == 2 and "unknown role 'designer'" in output


def external(server: ScriptedServer, command: str) -> str:
    return model(server, "coder-model", PRICES + f"backend = \"command\"\ncommand = '''{command}'''\n")


def test_an_external_coder_is_checked_executable_and_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           scripted_server: ScriptedServer) -> None:
    from proxy_support import fake_agent_command

    scripted_server.add("*", ScriptedReply(content="ok"), repeat=True)
    write_config(tmp_path, {"coder": external(scripted_server, fake_agent_command())})
    code, output = llm_test(tmp_path, monkeypatch, "--role", "coder", "--json")
    assert code == 0, output
    [result] = json.loads(output)
    agent = result["agent"]
    assert agent["ok"] and agent["backend"] == "command" and agent["proxy_ok"] and agent["diagnosis"] is None
    assert Path(agent["found"]).name.startswith("python")
    # one call for the role's model, one more made through the metering proxy as the agent would
    assert len(scripted_server.requests["coder-model"]) == 2
    assert agent["proxy_tokens"] == sum(u["prompt_tokens"] + u["completion_tokens"]
                                        for u in scripted_server.usage[1:])
    code, output = llm_test(tmp_path, monkeypatch, "--role", "coder")
    words = " ".join(output.split())  # the console wraps long lines
    assert code == 0 and "agent command at" in words and "proxy call: ok" in words, output


def test_a_missing_agent_executable_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    scripted_server: ScriptedServer) -> None:
    scripted_server.add("*", ScriptedReply(content="ok"), repeat=True)
    write_config(tmp_path, {"coder": external(scripted_server, "no-such-agent-cli --run {prompt_file}")})
    code, output = llm_test(tmp_path, monkeypatch, "--role", "coder")
    assert code == 1, output
    words = " ".join(output.split())  # the console wraps long lines
    assert "FAIL agent command at no-such-agent-cli" in words
    assert "the command executable 'no-such-agent-cli' is not found on PATH" in words
    assert len(scripted_server.requests["coder-model"]) == 1  # the role's own call only: no proxy call


def test_a_proxy_call_the_upstream_refuses_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           scripted_server: ScriptedServer) -> None:
    from proxy_support import fake_agent_command

    scripted_server.add("*", ScriptedReply(content="ok"))
    scripted_server.add("*", ScriptedReply(status=401, content="bad key"))
    write_config(tmp_path, {"coder": external(scripted_server, fake_agent_command())})
    code, output = llm_test(tmp_path, monkeypatch, "--role", "coder", "--json")
    assert code == 1, output
    [result] = json.loads(output)
    assert result["ok"] and not result["agent"]["ok"] and not result["agent"]["proxy_ok"]
    assert "the call through the metering proxy failed: HTTP 401" in result["agent"]["diagnosis"]


def _named_backends() -> list[str]:
    from agentsprint.config import READY_BACKENDS

    return [name for name in READY_BACKENDS if name not in ("builtin", "command")]


@pytest.mark.parametrize("backend", _named_backends())
def test_each_real_agent_cli_is_found_versioned_and_probed_in_its_protocol(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripted_server: ScriptedServer) -> None:
    from conftest import agent_cli

    from agentsprint.agents.backends import registry

    executable = agent_cli(registry.get(backend).executable)
    scripted_server.add("*", ScriptedReply(content="ok"), repeat=True)
    write_config(tmp_path, {"coder": model(scripted_server, "coder-model",
                                           PRICES + f'backend = "{backend}"\ncommand = "{executable}"\n')})
    code, output = llm_test(tmp_path, monkeypatch, "--role", "coder", "--json")
    assert code == 0, output
    agent = json.loads(output)[0]["agent"]
    assert agent["ok"] and agent["found"] == str(executable) and agent["proxy_tokens"] > 0, agent
    assert agent["version"] and not agent["version"].startswith("exit"), agent
    assert len(scripted_server.requests["coder-model"]) == 2, "the role's own call, and one through the proxy"
