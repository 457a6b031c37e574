"""The GitHub Actions workflow in docs/ci.md parses, does what the page says, and calls only real commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from agentsprint.cli.main import build_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"


def workflow_text() -> str:
    """The one ```yaml block of docs/ci.md that is a workflow (it has `jobs`)."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)
    workflows: list[str] = [block for block in blocks if re.search(r"^jobs:", block, re.M)]
    assert len(workflows) == 1, f"expected one workflow block in {DOC}, found {len(workflows)}"
    return workflows[0]


def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(workflow_text())
    assert isinstance(data, dict)
    return data


def steps() -> list[dict[str, Any]]:
    return [step for job in workflow()["jobs"].values() for step in job["steps"]]


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a `run:` script, as words, without redirections."""
    joined = script.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part, comments=True)
            cut = next((i for i, w in enumerate(words) if re.match(r"^\d?>>?", w)), len(words))
            if words[:cut]:
                commands.append(words[:cut])
    return commands


def agentsprint_calls() -> list[list[str]]:
    calls = [words[1:] for step in steps() if "run" in step for words in shell_commands(step["run"])
             if words[0] == "agentsprint"]
    assert calls, "the workflow calls agentsprint"
    return calls


def resolve(group: Any, words: list[str]) -> tuple[tuple[str, ...], Any, list[str]]:
    """(command path, the real command or None when it is not there, the words after the path).

    Commands are Typer's (click's) objects, read by their attributes: `commands` of a group, `params`.
    """
    path: list[str] = []
    command = group
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        sub = command.commands.get(words[0])
        if sub is None:
            return (*path, words[0]), None, words[1:]
        path.append(words[0])
        command, words = sub, words[1:]
    return tuple(path), command, words


def real_options(command: Any) -> dict[str, bool]:
    """Every option name of `command` and whether it takes a value."""
    options: dict[str, bool] = {}
    for param in command.params:
        if param.param_type_name == "option":
            for name in (*param.opts, *param.secondary_opts):
                options[name] = not (param.is_flag or param.count)
    return options | {"--help": False}


def check_call(words: list[str]) -> None:
    path, command, rest = resolve(get_command(build_app()), words)
    assert command is not None, f"`agentsprint {' '.join(words)}`: no command {' '.join(path)!r}"
    options = real_options(command)
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    positional = _check_options(words, rest, options)
    unbounded = any(a.nargs == -1 for a in arguments)
    assert unbounded or len(positional) <= len(arguments), f"`agentsprint {' '.join(words)}`: extra {positional}"


def _check_options(words: list[str], rest: list[str], options: dict[str, bool]) -> list[str]:
    positional: list[str] = []
    index = 0
    while index < len(rest):
        word = rest[index]
        name = word.split("=", 1)[0]
        if word.startswith("-") and word != "-":
            assert name in options, f"`agentsprint {' '.join(words)}`: unknown option {name}"
            index += 2 if options[name] and "=" not in word else 1
        else:
            positional.append(word)
            index += 1
    return positional


def test_the_workflow_parses_and_runs_on_a_schedule() -> None:
    data = workflow()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers is not None
    assert triggers["schedule"][0]["cron"].count(" ") == 4
    assert data["permissions"]["contents"] == "write", "it pushes branches"


def test_the_workflow_keeps_the_database_and_uploads_database_and_retro() -> None:
    uses = {step.get("uses", "").split("@")[0]: step for step in steps()}
    assert "actions/cache/restore" in uses and "actions/cache/save" in uses
    assert uses["actions/cache/save"].get("if") == "always()", "an escalated run keeps its history too"
    assert ".agentsprint/agentsprint.db" in uses["actions/cache/restore"]["with"]["path"]
    uploaded = uses["actions/upload-artifact"]["with"]["path"]
    assert ".agentsprint/agentsprint.db" in uploaded and "reports/" in uploaded
    scripts = "\n".join(step.get("run", "") for step in steps())
    assert re.search(r"agentsprint retro .*-o reports/retro\.(md|html)", scripts)
    assert "refs/heads/agentsprint/*" in scripts and "git push" in scripts


def test_the_run_step_is_a_ci_run_of_a_sprint_with_a_junit_report() -> None:
    runs = [call for call in agentsprint_calls() if call[0] == "run"]
    assert runs and all({"--ci", "--sprint", "--junit"} <= set(call) for call in runs), runs


@pytest.mark.parametrize("words", agentsprint_calls(), ids=lambda words: " ".join(words))
def test_every_agentsprint_command_of_the_workflow_exists_with_those_options(words: list[str]) -> None:
    check_call(words)


@pytest.mark.parametrize("words", [["run", "--sprint", "S1", "--cii"], ["sprnt", "show", "S1"],
                                   ["import", "github", "a", "b"], ["retro", "--fmt", "md"]])
def test_the_check_refuses_what_does_not_exist(words: list[str]) -> None:
    with pytest.raises(AssertionError):
        check_call(words)
