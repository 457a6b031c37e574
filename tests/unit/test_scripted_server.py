"""The scripted OpenAI-compatible server, spoken to over real HTTP with the standard library."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agentsprint.llm import tokens
from agentsprint.llm.scripted import ScriptedReply, ScriptedServer, load_script, tool_call

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
TOOLS = [{"type": "function", "function": {"name": "finish", "description": "Finish the task.",
                                           "parameters": {"type": "object",
                                                          "properties": {"summary": {"type": "string"}}}}}]


def post(server: ScriptedServer, body: dict[str, Any], timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{server.base_url}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def chat(model: str = "m", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, **extra}


def test_reply_has_openai_shape_and_tiktoken_usage(scripted_server: ScriptedServer) -> None:
    scripted_server.add("m", ScriptedReply(content="Hello there."))
    status, body = post(scripted_server, chat(tools=TOOLS, max_tokens=50))
    assert status == 200
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello there."}
    assert choice["finish_reason"] == "stop"
    encoding = tokens.encoding_name("m")
    assert body["usage"]["prompt_tokens"] == tokens.count_prompt_tokens(MESSAGES, TOOLS, encoding)
    assert body["usage"]["completion_tokens"] == tokens.count_text("Hello there.", encoding)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_tool_call_reply_and_recorded_requests(scripted_server: ScriptedServer) -> None:
    scripted_server.add("coder-model", ScriptedReply(tool_calls=[tool_call("finish", summary="done")]))
    status, body = post(scripted_server, chat("coder-model", tools=TOOLS))
    assert status == 200
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["function"]["name"] == "finish"
    assert json.loads(call["function"]["arguments"]) == {"summary": "done"}
    assert scripted_server.requests["coder-model"][0]["tools"] == TOOLS


def test_short_form_tool_calls_are_normalized() -> None:
    reply = ScriptedReply.model_validate({"tool_calls": [{"name": "finish", "arguments": {"summary": "x"}}]})
    assert reply.tool_calls[0]["function"] == {"name": "finish", "arguments": '{"summary": "x"}'}


def test_models_endpoint_lists_scripted_models(scripted_server: ScriptedServer) -> None:
    scripted_server.add("a", ScriptedReply(content="1"))
    scripted_server.add("b", responder=lambda body: ScriptedReply(content="2"))
    with urllib.request.urlopen(f"{scripted_server.base_url}/models", timeout=5) as response:
        listed = json.loads(response.read())
    assert [model["id"] for model in listed["data"]] == ["a", "b"]


@pytest.mark.parametrize("status, kind", [(429, "rate_limit_error"), (500, "server_error"),
                                          (503, "server_error")])
def test_status_fault_answers_an_openai_error(scripted_server: ScriptedServer, status: int,
                                              kind: str) -> None:
    scripted_server.add("m", ScriptedReply(status=status))
    code, body = post(scripted_server, chat())
    assert code == status
    assert body["error"]["type"] == kind
    assert "scripted error" in body["error"]["message"]


def test_latency_delays_the_answer(scripted_server: ScriptedServer) -> None:
    scripted_server.add("m", ScriptedReply(content="late", latency=0.3))
    started = time.perf_counter()
    status, _ = post(scripted_server, chat())
    assert status == 200
    assert time.perf_counter() - started >= 0.3


def test_hang_exceeds_the_client_timeout_and_stop_is_prompt() -> None:
    server = ScriptedServer({"m": [ScriptedReply(content="never", hang=30)]}).start()
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
        post(server, chat(), timeout=0.3)
    started = time.perf_counter()
    server.stop()
    assert time.perf_counter() - started < 3


def test_malformed_json_arguments(scripted_server: ScriptedServer) -> None:
    broken = ScriptedReply(tool_calls=[tool_call("finish", summary="x")], malformed_json=True)
    scripted_server.add("m", broken)
    _, body = post(scripted_server, chat())
    arguments = body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)


def test_max_tokens_is_honoured_unless_overridden(scripted_server: ScriptedServer) -> None:
    long_text = "word " * 200
    scripted_server.add("m", ScriptedReply(content=long_text),
                        ScriptedReply(content=long_text, completion_tokens=999))
    _, cut = post(scripted_server, chat(max_tokens=10))
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["usage"]["completion_tokens"] == 10
    assert tokens.count_text(cut["choices"][0]["message"]["content"]) == 10
    _, overstated = post(scripted_server, chat(max_tokens=10))
    assert overstated["usage"]["completion_tokens"] == 999


def test_tool_call_longer_than_max_tokens_is_cut(scripted_server: ScriptedServer) -> None:
    long_call = tool_call("write_file", path="a.py", content="x = 1\n" * 200)
    scripted_server.add("m", ScriptedReply(tool_calls=[long_call]))
    _, body = post(scripted_server, chat(max_tokens=20))
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 20


def test_cached_tokens_reported(scripted_server: ScriptedServer) -> None:
    scripted_server.add("m", ScriptedReply(content="ok", cached_tokens=5))
    _, body = post(scripted_server, chat())
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 5}


def test_exhausted_script_is_a_500_and_recorded(scripted_server: ScriptedServer) -> None:
    scripted_server.add("m", ScriptedReply(content="only one"))
    assert post(scripted_server, chat())[0] == 200
    status, body = post(scripted_server, chat())
    assert status == 500
    assert body["error"]["message"] == "script for model m exhausted after 1 replies"
    assert scripted_server.errors == ["script for model m exhausted after 1 replies"]
    assert len(scripted_server.requests["m"]) == 2


def test_unknown_model_is_a_404_and_recorded(scripted_server: ScriptedServer) -> None:
    status, body = post(scripted_server, chat("nobody"))
    assert status == 404
    assert scripted_server.errors == ["no script for model nobody"]
    assert "no script" in body["error"]["message"]


def test_responder_answers_after_the_script_and_wildcard_matches_any(scripted_server: ScriptedServer) -> None:
    def echo(body: dict[str, Any]) -> ScriptedReply:
        return ScriptedReply(content=f"echo {body['messages'][-1]['content']}")

    scripted_server.add("m", ScriptedReply(content="first"), responder=echo)
    scripted_server.add("*", ScriptedReply(content="anyone"), repeat=True)
    assert post(scripted_server, chat())[1]["choices"][0]["message"]["content"] == "first"
    assert post(scripted_server, chat())[1]["choices"][0]["message"]["content"] == "echo Say hello."
    for _ in range(3):
        assert post(scripted_server, chat("other"))[1]["choices"][0]["message"]["content"] == "anyone"


def test_bad_route_and_bad_json(scripted_server: ScriptedServer) -> None:
    request = urllib.request.Request(f"{scripted_server.base_url}/chat/completions", data=b"{not json")
    with pytest.raises(urllib.error.HTTPError) as bad_json:
        urllib.request.urlopen(request, timeout=5)
    assert bad_json.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as bad_route:
        urllib.request.urlopen(f"{scripted_server.base_url}/embeddings", data=b"{}", timeout=5)
    assert bad_route.value.code == 404


def _script_file(tmp_path: Path) -> Path:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"models": {
        "coder-model": [{"tool_calls": [{"name": "finish", "arguments": {"summary": "done"}}]}],
        "*": {"replies": [{"content": "ok"}], "repeat": True},
    }}))
    return path


def test_load_script_file(tmp_path: Path) -> None:
    with load_script(str(_script_file(tmp_path))) as server:
        _, body = post(server, chat("coder-model"))
        assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "finish"
        assert post(server, chat("qa-model"))[1]["choices"][0]["message"]["content"] == "ok"
        assert post(server, chat("qa-model"))[1]["choices"][0]["message"]["content"] == "ok"


def test_cli_entry_serves_a_script_file(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "agentsprint.llm.scripted", "--script",
                                str(_script_file(tmp_path))], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("scripted model server on http://127.0.0.1:")
        url = f"{line.split()[4]}/chat/completions"
        request = urllib.request.Request(url, data=json.dumps(chat("x")).encode())
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["choices"][0]["message"]["content"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_cli_entry_rejects_a_bad_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": {"m": [{"contnet": "typo"}]}}')
    result = subprocess.run([sys.executable, "-m", "agentsprint.llm.scripted", "--script", str(bad)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "contnet" in result.stdout


def test_base_url_needs_a_started_server() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = ScriptedServer().base_url


def test_importing_llm_modules_does_not_load_litellm() -> None:
    code = ("import sys, agentsprint.llm, agentsprint.llm.scripted, agentsprint.llm.gateway; "
            "print('litellm' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_omit_usage(scripted_server: ScriptedServer) -> None:
    scripted_server.add("m", ScriptedReply(content="ok", omit_usage=True))
    _, body = post(scripted_server, chat())
    assert "usage" not in body and body["choices"][0]["message"]["content"] == "ok"
