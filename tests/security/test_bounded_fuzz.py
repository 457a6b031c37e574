"""Fuzzing (hypothesis): the item file parser, epic files, handoff validation and search patterns never
crash or hang on any input, and only ever answer with the project's own clear errors, each short and at a real line.

Each example runs under a deadline; the example counts keep the whole file near 15 s.
"""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsprint.agents.handoff import MalformedHandoff, parse_calls
from agentsprint.agents.schemas import CODER_TOOLS, REVIEW_TOOLS, SUPERVISOR_TOOLS
from agentsprint.agents.tools import ToolPolicy, execute
from agentsprint.backlog import KEYS, check_text
from agentsprint.backlog.epics import epic_budget
from agentsprint.backlog.errors import BacklogError
from agentsprint.llm.gateway import Reply, ToolCall

FUZZ = settings(max_examples=250, deadline=timedelta(seconds=2), derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MAX_MESSAGE = 600

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
                    st.sampled_from(["todo", "done", "AS-1", "AS-2", "30m", "-5", "secrets", "review: human",
                                     "tests: pytest -q", "human", "0x1f", "1e309", "~", "null"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.one_of(st.sampled_from([*KEYS, "tokens", "usd", "time",
                                                                              "rounds", "tests"]),
                                                            st.text(max_size=10)), inner, max_size=5)),
                      max_leaves=20)
front_matter = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), values, max_size=12)
yaml_noise = st.lists(st.sampled_from(["---", "...", "&a x", "*a", "!!python/object:os.system", "? [a]", ": :",
                                       "- - -", "[", "]", "{", "}", "|", ">", "'", '"', "\t", "\ufeff", "\x00",
                                       "%YAML 1.1", "!!binary", "<<: *a", "#", "\r"]), max_size=12)


def assert_clear(problems: list[Any], text: str) -> None:
    lines = text.count("\n") + 2
    for problem in problems:
        assert 1 <= problem.line <= lines, problem
        assert problem.message and len(problem.message) < MAX_MESSAGE, problem.message


@FUZZ
@given(data=front_matter, body=st.text(max_size=200))
def test_any_front_matter_is_an_item_or_clear_problems(data: dict[Any, Any], body: str) -> None:
    try:
        front = yaml.safe_dump(data, allow_unicode=True, default_flow_style=None)
    except yaml.YAMLError:
        return
    text = f"---\n{front}---\n{body}"
    item, problems = check_text(text, Path("backlog/AS-1-x.md"))
    assert (item is None) == bool(problems)
    assert_clear(problems, text)


@FUZZ
@given(pieces=st.lists(st.one_of(st.text(max_size=30), yaml_noise.map(" ".join)), max_size=12),
       newline=st.sampled_from(["\n", "\r\n"]))
def test_any_text_is_an_item_or_clear_problems(pieces: list[str], newline: str) -> None:
    text = "---" + newline + newline.join(pieces) + newline + "---" + newline + "body"
    for candidate in (text, newline.join(pieces)):
        item, problems = check_text(candidate, None)
        assert (item is None) == bool(problems)
        assert_clear(problems, candidate)


@FUZZ
@given(data=st.one_of(values, front_matter), noise=yaml_noise)
def test_any_epic_file_is_a_budget_or_a_backlog_error(data: Any, noise: list[str]) -> None:
    try:
        text = yaml.safe_dump(data, allow_unicode=True) + "\n".join(noise)
    except yaml.YAMLError:
        return
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "epics").mkdir()
        (Path(folder) / "epics" / "e.yml").write_text(text, encoding="utf-8")
        try:
            tokens, usd = epic_budget(Path(folder), "e")
        except BacklogError as exc:
            assert "e.yml" in str(exc) and len(str(exc)) < MAX_MESSAGE + 200
            return
    assert tokens is None or tokens >= 0
    assert usd is None or usd >= 0


tool_names = st.one_of(st.sampled_from([*CODER_TOOLS, *REVIEW_TOOLS, *SUPERVISOR_TOOLS]), st.text(max_size=12))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=15)
arguments = st.one_of(
    st.text(max_size=80),
    st.dictionaries(st.sampled_from(["path", "start", "end", "pattern", "content", "old", "new", "command",
                                     "summary", "steps", "acceptance", "escalate", "verdict", "reasons"]),
                    json_values, max_size=5).map(json.dumps),
    json_values.map(json.dumps),
    st.integers(min_value=1, max_value=5000).map(lambda depth: "[" * depth + "]" * depth),
    st.sampled_from(['{"path": "\\ud800"}', '{"summary": "\\udfff"}', '{"\\ud800": 1}', "\ud800", '"\\u0000"']),
    st.integers(min_value=1, max_value=5000).map(lambda n: '{"path": ' + '{"a": ' * n + "1" + "}" * n + "}"),
)


@FUZZ
@given(calls=st.lists(st.tuples(tool_names, arguments), max_size=3), content=st.one_of(st.none(), st.text()),
       offered=st.sampled_from([CODER_TOOLS, REVIEW_TOOLS, SUPERVISOR_TOOLS]))
def test_any_reply_is_valid_calls_or_a_malformed_handoff(calls: list[tuple[str, str]], content: str | None,
                                                        offered: dict[str, Any]) -> None:
    reply = Reply(content=content, tool_calls=[ToolCall(id=f"c{n}", name=name, arguments=args)
                                               for n, (name, args) in enumerate(calls)])
    try:
        parsed = parse_calls(reply, offered)
    except MalformedHandoff as bad:
        assert bad.kind in ("no_tool_call", "unknown_tool", "bad_json", "schema")
        assert bad.error and bad.message and len(bad.message) < 4000, bad.message
        (bad.error + bad.message + str(bad.tool)).encode("utf-8")  # storable: no lone surrogates
        return
    assert [call.name for call, _ in parsed] == [name for name, _ in calls]
    assert all(call.name in offered for call, _ in parsed)


regex_pieces = st.lists(st.one_of(st.sampled_from(["(", ")", "[", "]", "{2,}", "*", "+", "?", "|", "\\", "^", "$",
                                                   "(?=", "(?<=", "(?P<n>", "(?P=n)", "\\1", "\\Z", "\\d", "(?i)",
                                                   ".", "a", "(a+)+", "[^\\n]", "*+", "(?>", "\\p{L}", "{99999}"]),
                                  st.text(max_size=5)), max_size=10).map("".join)


@FUZZ
@given(pattern=regex_pieces)
def test_any_search_pattern_is_matches_or_a_clear_error(pattern: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    worktree = _fuzz_worktree(tmp_path_factory)
    result = execute(str(worktree), "search", {"pattern": pattern}, ToolPolicy(allowed_commands=[],
                                                                             command_timeout_s=5, output_cap=2000))
    assert result.ok or result.output.startswith("error: bad regular expression"), result.output
    assert len(result.output) < 2200


def _fuzz_worktree(factory: pytest.TempPathFactory) -> Path:
    root = factory.getbasetemp() / "fuzz-worktree"
    if not root.exists():
        root.mkdir()
        (root / "a.txt").write_text("a" * 40 + "!\nfoo bar\n\u00e9t\u00e9 42\n" * 50)
    return root
