"""Handoff validation: every kind of malformed reply is refused with a message for the model."""

from __future__ import annotations

import json
import pickle

import pytest

from agentsprint.agents.handoff import MalformedHandoff, answer, parse_calls
from agentsprint.agents.schemas import CODER_TOOLS, REVIEW_TOOLS, Finish, Offered, ReadFile
from agentsprint.llm.gateway import Reply, ToolCall


def reply(*calls: tuple[str, str], content: str | None = None) -> Reply:
    return Reply(content=content, tool_calls=[ToolCall(id=f"c{n}", name=name, arguments=args)
                                              for n, (name, args) in enumerate(calls)])


def malformed(value: Reply, offered: Offered = CODER_TOOLS) -> MalformedHandoff:
    with pytest.raises(MalformedHandoff) as caught:
        parse_calls(value, offered)
    return caught.value


def test_valid_calls_are_parsed_in_order() -> None:
    calls = parse_calls(reply(("read_file", '{"path": "a.py", "start": 2}'), ("finish", '{"summary": "ok"}')),
                        CODER_TOOLS)
    assert [call.id for call, _ in calls] == ["c0", "c1"]
    assert calls[0][1] == ReadFile(path="a.py", start=2)
    assert calls[1][1] == Finish(summary="ok")


def test_empty_arguments_mean_no_arguments() -> None:
    [(_, args)] = parse_calls(reply(("list_files", "")), CODER_TOOLS)
    assert args.model_dump() == {"path": "."}


def test_prose_instead_of_a_call() -> None:
    bad = malformed(reply(content="I think the fix is to change line 2."))
    assert bad.kind == "no_tool_call" and bad.tool is None
    assert "I think the fix" in bad.error
    assert "must call one of the offered tools" in bad.message
    assert "list_files, read_file, search, write_file, edit_file, run, finish" in bad.message


def test_unknown_tool_and_tool_not_offered_to_the_role() -> None:
    bad = malformed(reply(("delete_everything", "{}")))
    assert bad.kind == "unknown_tool" and bad.tool == "delete_everything"
    assert "unknown tool 'delete_everything'" in bad.message
    write = malformed(reply(("write_file", '{"path": "a", "content": "x"}')), REVIEW_TOOLS)
    assert write.kind == "unknown_tool" and "submit_verdict" in write.message


def test_arguments_that_are_not_json() -> None:
    bad = malformed(reply(("read_file", '{"path": "a.py",}')))
    assert bad.kind == "bad_json" and bad.tool == "read_file"
    assert "not valid JSON" in bad.error and '{"path": "a.py",}' in bad.error


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ('{"summary": "x", "confidence": 0.9}', "confidence: Extra inputs are not permitted"),
        ("{}", "summary: Field required"),
        ('{"summary": 3}', "summary: Input should be a valid string"),
        ('["done"]', "must be a JSON object, got list"),
    ],
)
def test_arguments_failing_the_schema(arguments: str, fragment: str) -> None:
    bad = malformed(reply(("finish", arguments)))
    assert bad.kind == "schema" and bad.tool == "finish"
    assert fragment in bad.error and fragment in bad.message


def test_one_bad_call_makes_the_whole_reply_malformed() -> None:
    bad = malformed(reply(("read_file", '{"path": "a"}'), ("finish", "{}")))
    assert bad.kind == "schema" and bad.tool == "finish"


def test_answer_keeps_the_attempt_as_text_and_sends_the_error() -> None:
    value = reply(("nope", '{"x": 1}'), content="trying")
    bad = malformed(value)
    assistant, user = answer(value, bad)
    assert assistant == {"role": "assistant", "content": 'trying\n(called nope with arguments {"x": 1})'}
    assert user == {"role": "user", "content": bad.message}


def test_malformed_handoff_pickles() -> None:
    bad = pickle.loads(pickle.dumps(malformed(reply(("nope", "{}")))))
    assert bad.kind == "unknown_tool" and bad.tool == "nope" and "nope" in bad.message


@pytest.mark.parametrize("depth", [33, 3000, 200_000])
def test_deeply_nested_arguments_are_malformed_before_any_parser_recurses(depth: int) -> None:
    bad = malformed(reply(("read_file", '{"path": ' + "[" * depth + "]" * depth + "}")))
    assert bad.kind == "bad_json" and "nest more than 32 levels deep" in bad.error and len(bad.error) < 400


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "[" * 100 + '\\"' + "{" * 100
    [(_, args)] = parse_calls(reply(("write_file", json.dumps({"path": "a", "content": text}))), CODER_TOOLS)
    assert args.model_dump()["content"] == text


@pytest.mark.parametrize("arguments", ['{"path": "a\\ud800"}', '{"\\udfff": 1}', '{"summary": "ok \\ud83d"}'])
def test_lone_surrogates_in_arguments_are_malformed(arguments: str) -> None:
    bad = malformed(reply(("finish", arguments), ("read_file", '{"path": "ok.py"}')))
    assert bad.kind == "bad_json" and "lone surrogate" in bad.error
    bad.error.encode("utf-8")  # storable


def test_a_surrogate_pair_is_a_real_character() -> None:
    [(_, args)] = parse_calls(reply(("finish", '{"summary": "ok \\ud83d\\ude00"}')), CODER_TOOLS)
    assert args.model_dump() == {"summary": "ok \U0001f600"}
