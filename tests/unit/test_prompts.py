"""Prompt templates: strict variables, item description without the criteria listed twice."""

from __future__ import annotations

import jinja2
import pytest

from agentsprint.agents import prompts
from agentsprint.agents.loop import Limits
from agentsprint.config import RunSettings

BODY = "It breaks.\n\n## Acceptance criteria\n- works\n- fast\n\n## Notes\nsee AS-2\n"


def test_description_drops_only_the_acceptance_section() -> None:
    assert prompts.description(BODY) == "It breaks.\n\n## Notes\nsee AS-2"
    assert prompts.description("") == ""


def test_missing_variable_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(jinja2.UndefinedError):
        prompts.render("nudge.j2", pattern="x")


def test_render_collapses_blank_runs_and_ends_with_one_newline() -> None:
    text = prompts.render("malformed.j2", kind="bad_json", error="oops", tools=["run", "finish"])
    assert "\n\n\n" not in text and text.endswith("finish.\n") and "Problem: oops" in text


def test_limits_come_from_run_settings() -> None:
    run = RunSettings(max_coder_steps=7, max_malformed=0, loop_repeat_threshold=4)
    assert Limits.from_settings(run) == Limits(max_steps=7, max_malformed=0, loop_repeat_threshold=4)
