"""Settings: agentsprint.toml, pyproject's [tool.agentsprint], AGENTSPRINT_* overrides, errors, the init template."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentsprint.config import ConfigError, ModelSettings, Settings, load_settings, templates_dir


def test_defaults_without_any_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    assert settings.source == "(defaults)"
    assert settings.run.parallel == 4 and settings.backlog.id_prefix == "AS"
    assert sorted(settings.models) == ["coder", "qa", "supervisor"]
    assert settings.database_url == f"sqlite:///{tmp_path}/.agentsprint/agentsprint.db"


def test_toml_file(tmp_path: Path) -> None:
    (tmp_path / "agentsprint.toml").write_text(
        '[models.coder]\nmodel = "openai/gpt-4.1"\napi_base = "http://127.0.0.1:9/v1"\n'
        '[run]\nparallel = 2\ncall_timeout = "30s"\n[policy]\nallowed_commands = ["make"]\n'
        '[backlog]\nid_prefix = "WEB"\n')
    settings = load_settings(tmp_path, environ={})
    assert settings.models["coder"].model == "openai/gpt-4.1"
    assert settings.models["supervisor"].model == "openai/gpt-4.1-mini"  # roles not written keep defaults
    assert (settings.run.parallel, settings.run.call_timeout_seconds) == (2, 30.0)
    assert settings.policy.allowed_commands == ["make"]
    assert settings.backlog.id_prefix == "WEB"
    assert settings.source == str(tmp_path / "agentsprint.toml")


def test_pyproject_tool_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.agentsprint.run]\nparallel = 7\n')
    settings = load_settings(tmp_path, environ={})
    assert settings.run.parallel == 7
    assert settings.source.endswith("pyproject.toml [tool.agentsprint]")


def test_agentsprint_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.agentsprint.run]\nparallel = 7\n")
    (tmp_path / "agentsprint.toml").write_text("[run]\nparallel = 3\n")
    assert load_settings(tmp_path, environ={}).run.parallel == 3


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    (tmp_path / "agentsprint.toml").write_text("[run]\nparallel = 3\n")
    environ = {
        "AGENTSPRINT_RUN_PARALLEL": "5",
        "AGENTSPRINT_DATABASE_URL": "postgresql+psycopg://u:p@db/agentsprint",
        "AGENTSPRINT_POLICY_ALLOWED_COMMANDS": "pytest, make",
        "AGENTSPRINT_MODELS_QA_MODEL": "anthropic/claude-haiku-4-5",
        "AGENTSPRINT_MODELS_CODER_FALLBACKS": "openai/a,openai/b",
        "AGENTSPRINT_BACKLOG_ID_PREFIX": "OPS",
        "AGENTSPRINT_TEST_PG_URL": "not a setting: ignored",
    }
    settings = load_settings(tmp_path, environ=environ)
    assert settings.run.parallel == 5
    assert settings.database_url == "postgresql+psycopg://u:p@db/agentsprint"
    assert settings.policy.allowed_commands == ["pytest", "make"]
    assert settings.models["qa"].model == "anthropic/claude-haiku-4-5"
    assert settings.models["coder"].fallbacks == ["openai/a", "openai/b"]
    assert settings.backlog.id_prefix == "OPS"


def test_process_environment_is_used_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSPRINT_RUN_PARALLEL", "9")
    assert load_settings(tmp_path).run.parallel == 9


def test_bad_value_names_the_key_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "agentsprint.toml").write_text('[run]\nparallel = 0\ncall_timeout = "soon"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})
    message = str(caught.value)
    assert f"{tmp_path / 'agentsprint.toml'}: run.parallel:" in message
    assert "run.call_timeout:" in message and "bad duration" in message


def test_bad_env_value_says_which_overrides_were_in_effect(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"run\.parallel(.|\n)*AGENTSPRINT_RUN_PARALLEL"):
        load_settings(tmp_path, environ={"AGENTSPRINT_RUN_PARALLEL": "many"})


def test_unknown_key_and_bad_toml_are_errors(tmp_path: Path) -> None:
    (tmp_path / "agentsprint.toml").write_text("[run]\nparalel = 2\n")
    with pytest.raises(ConfigError, match="run.paralel"):
        load_settings(tmp_path, environ={})
    (tmp_path / "agentsprint.toml").write_text("[run\n")
    with pytest.raises(ConfigError, match="agentsprint.toml"):
        load_settings(tmp_path, environ={})


# --- the file `agentsprint init` writes must list every setting, so it cannot go stale ---

TEMPLATE = templates_dir() / "agentsprint.toml"
SETTING_LINE = re.compile(r"^# ?([a-z_]+ = .*)$")


def uncommented(text: str) -> dict[str, Any]:
    """The template with every commented-out `key = value` line switched on."""
    return tomllib.loads("\n".join(SETTING_LINE.sub(r"\1", line) for line in text.splitlines()))


def leaf_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, default) of every setting, recursively; models.<role> is checked through its first role."""
    fields: list[tuple[tuple[str, ...], Any]] = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        annotation = info.annotation
        name = info.alias or name  # as written in the file: [import] is the field import_
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields += leaf_fields(annotation, (*prefix, name))
        elif name == "models":
            fields += leaf_fields(ModelSettings, (*prefix, name, "supervisor"))
        else:
            fields.append(((*prefix, name), info.get_default(call_default_factory=True)))
    return fields


@pytest.mark.parametrize(("path", "default"), leaf_fields(Settings),
                         ids=[".".join(path) for path, _ in leaf_fields(Settings)])
def test_init_template_lists_every_setting_with_its_default(path: tuple[str, ...], default: Any) -> None:
    written: Any = uncommented(TEMPLATE.read_text())
    for key in path:
        assert key in written, f"{'.'.join(path)} is missing from templates/agentsprint.toml"
        written = written[key]
    if default is not None:  # a setting without a default shows an example value instead
        assert written == json.loads(json.dumps(default)), f"{'.'.join(path)}: the template says {written!r}"


def test_init_template_loads_as_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "agentsprint.toml").write_text(TEMPLATE.read_text())
    loaded = load_settings(tmp_path, environ={})
    assert loaded.model_dump() == load_settings(tmp_path / "nothing-here", environ={}).model_dump()


def test_every_setting_line_has_an_explanation_above_it() -> None:
    lines = TEMPLATE.read_text().splitlines()
    for index, line in enumerate(lines):
        if SETTING_LINE.match(line) and not lines[index - 1].startswith("# Same keys"):
            assert lines[index - 1].startswith("# ") and not SETTING_LINE.match(lines[index - 1]), line


def test_env_override_into_a_non_table_is_a_config_error(tmp_path: Path) -> None:
    from agentsprint.config import ConfigError, load_settings

    (tmp_path / "agentsprint.toml").write_text("run = 3\n")
    with pytest.raises(ConfigError, match="run: must be a table"):
        load_settings(tmp_path, environ={"AGENTSPRINT_RUN_PARALLEL": "2"})


def test_find_root_stops_at_a_pyproject_with_tool_agentsprint(tmp_path: Path) -> None:
    from agentsprint.config import find_root

    (tmp_path / "pyproject.toml").write_text("[tool.agentsprint.run]\nparallel = 2\n")
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True)
    assert find_root(nested) == tmp_path.resolve()


def test_store_on_an_unwritable_path_is_a_store_error(tmp_path: Path) -> None:
    from agentsprint.store import Store, StoreError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open database"):
        Store(f"sqlite:///{blocker}/sub/db.sqlite")


def test_a_byte_that_is_not_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    from agentsprint.config import ConfigError, find_root, load_settings

    (tmp_path / "pyproject.toml").write_bytes(b'[project]\nname = "x"\n# caf\xe9\n')
    assert find_root(tmp_path) == tmp_path.resolve(), "the cheap [tool.agentsprint] probe does not crash"
    (tmp_path / "agentsprint.toml").write_bytes(b'[run]\nparallel = 2\n# caf\xff\n')
    with pytest.raises(ConfigError, match=r"agentsprint\.toml:3: not UTF-8 text \(byte 0xff\)"):
        load_settings(tmp_path, environ={})


def test_import_table_in_design_form_and_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "agentsprint.toml").write_text('[import.labels]\nbug = "bug"\n"good first issue" = "low"\n')
    loaded = load_settings(tmp_path, environ={"AGENTSPRINT_IMPORT_PRIORITY": "high"})
    assert loaded.import_.labels == {"bug": "bug", "good first issue": "low"}, "the table replaces the defaults"
    assert loaded.import_.priority == "high" and loaded.import_.type == "feature"
