"""The public tool contract: names, argument names, and strict validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agentsprint.agents import schemas


def _params(name: str) -> dict[str, Any]:
    return schemas.parameters_schema(schemas.ALL_TOOLS[name])


def test_tool_sets_match_the_public_contract() -> None:
    assert list(schemas.SUPERVISOR_TOOLS) == ["submit_plan"]
    assert list(schemas.CODER_TOOLS) == [
        "list_files", "read_file", "search", "write_file", "edit_file", "run", "finish"
    ]
    assert list(schemas.REVIEW_TOOLS) == ["list_files", "read_file", "search", "submit_verdict"]


@pytest.mark.parametrize(
    ("name", "properties", "required"),
    [
        ("submit_plan", ["steps", "acceptance", "escalate"], ["steps", "acceptance"]),
        ("list_files", ["path"], []),
        ("read_file", ["path", "start", "end"], ["path"]),
        ("search", ["pattern", "path"], ["pattern"]),
        ("write_file", ["path", "content"], ["path", "content"]),
        ("edit_file", ["path", "old", "new"], ["path", "old", "new"]),
        ("run", ["command"], ["command"]),
        ("finish", ["summary"], ["summary"]),
        ("submit_verdict", ["verdict", "reasons"], ["verdict", "reasons"]),
    ],
)
def test_argument_names_and_required(name: str, properties: list[str], required: list[str]) -> None:
    params = _params(name)
    assert list(params["properties"]) == properties
    assert sorted(params.get("required", [])) == sorted(required)
    assert params["additionalProperties"] is False
    assert "title" not in params


def test_openai_function_tool_shape() -> None:
    tool = schemas.tool_schema("finish", schemas.Finish)
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "finish"
    assert tool["function"]["description"].startswith("Declare the work")
    assert [t["function"]["name"] for t in schemas.tool_schemas(schemas.REVIEW_TOOLS)][-1] == "submit_verdict"


def test_verdict_enum_and_defaults() -> None:
    assert _params("submit_verdict")["properties"]["verdict"]["enum"] == ["approve", "reject"]
    assert schemas.ListFiles().path == "."
    assert schemas.ReadFile(path="a").start is None
    assert schemas.SubmitPlan(steps=["x"], acceptance=[]).escalate is None


@pytest.mark.parametrize(
    ("model", "data", "fragment"),
    [
        (schemas.Finish, {"summary": "ok", "extra": 1}, "extra"),
        (schemas.SubmitVerdict, {"verdict": "maybe", "reasons": []}, "verdict"),
        (schemas.SubmitVerdict, {"verdict": "reject", "reasons": []}, "at least one reason"),
        (schemas.SubmitPlan, {"steps": [], "acceptance": []}, "steps must not be empty"),
        (schemas.ReadFile, {"path": "a", "start": 0}, "start"),
        (schemas.EditFile, {"path": "a", "old": "", "new": "x"}, "old"),
        (schemas.Run, {}, "command"),
    ],
)
def test_invalid_arguments_are_refused(model: type[schemas.ToolArgs], data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    assert fragment in schemas.describe_errors(caught.value)


def test_escalating_plan_needs_no_steps() -> None:
    plan = schemas.SubmitPlan(steps=[], acceptance=[], escalate="the item contradicts itself")
    assert plan.escalate == "the item contradicts itself"


def test_describe_errors_names_location_and_input() -> None:
    with pytest.raises(ValidationError) as caught:
        schemas.ReadFile.model_validate({"path": 3})
    text = schemas.describe_errors(caught.value)
    assert text.startswith("- path: ")
    assert "(got 3)" in text
    assert "errors.pydantic.dev" not in text
