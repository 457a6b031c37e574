"""The `backend` and `command` settings of a role, and how the command line is built."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from agentsprint.agents.backends.command import command_argv
from agentsprint.config import READY_BACKENDS, Backend, ConfigError, Settings, load_settings
from agentsprint.sandbox import needs_commands


def settings_with(tmp_path: Path, coder: str) -> Settings:
    (tmp_path / "agentsprint.toml").write_text(f"[models.coder]\n{coder}\n", encoding="utf-8")
    return load_settings(tmp_path, environ={})


def test_command_backend_is_read(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, 'backend = "command"\ncommand = "agent --file {prompt_file}"')
    coder = settings.model_for("coder")
    assert (coder.backend, coder.command) == ("command", "agent --file {prompt_file}")
    assert settings.model_for("supervisor").backend == "builtin"


def test_the_codex_backend_needs_no_command(tmp_path: Path) -> None:
    coder = settings_with(tmp_path, 'backend = "codex"').model_for("coder")
    assert (coder.backend, coder.command) == ("codex", None)


@pytest.mark.parametrize("lines, needle", [
    ('backend = "command"', 'needs command = "... {prompt_file}"'),
    ('backend = "command"\ncommand = "agent"', 'needs command = "... {prompt_file}"'),
    *[(f'backend = "{name}"', f'backend "{name}" is not available yet') for name in get_args(Backend)
      if name not in READY_BACKENDS],
    ('backend = "nope"', "backend"),
    ('subscription = true', "subscription = true is for an external agent's login"),
])
def test_bad_backends_name_the_file_and_field(tmp_path: Path, lines: str, needle: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_with(tmp_path, lines)
    message = str(raised.value)
    assert "agentsprint.toml" in message and "models.coder" in message and needle in message


def test_the_prompt_file_goes_where_the_template_says_without_a_shell(tmp_path: Path) -> None:
    prompt = tmp_path / "my prompt.md"
    argv = command_argv("agent --model 'a b' --prompt-file={prompt_file} ; rm -rf /", prompt)
    assert argv == ["agent", "--model", "a b", f"--prompt-file={prompt}", ";", "rm", "-rf", "/"]


def test_an_external_coder_needs_the_sandbox_checked_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "agentsprint.toml").write_text('[models.coder]\nbackend = "command"\ncommand = "a {prompt_file}"\n'
                                               "[policy]\nallowed_commands = []\n", encoding="utf-8")
    external = load_settings(tmp_path, environ={})
    builtin = external.model_copy(update={"models": {}})
    assert needs_commands(external, []) and not needs_commands(builtin, [])


def test_a_file_the_command_names_under_a_private_folder_stays_readable(tmp_path: Path) -> None:
    """`python /tmp/.../agent.py {prompt_file}`: the sandbox's private /tmp must not hide the script
    (CI clones the repository under /tmp: the fake agent's script was invisible and every run failed)."""
    from agentsprint.agents.external import named_file_dirs

    script = tmp_path / "agent.py" if str(tmp_path).startswith("/tmp/") else Path("/tmp") / tmp_path.name / "agent.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("print('hi')\n", encoding="utf-8")

    assert named_file_dirs([str(script), "--flag", "/no/such/file"], tmp_path) == [str(script.parent)]
    assert named_file_dirs(["relative.py", "/etc/hostname"], tmp_path) == [], "only what a private folder hides"
