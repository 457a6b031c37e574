"""Policy: confinement, allowed commands, process-group timeouts, env scrubbing, redaction, patterns."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_support import require_bwrap

from agentsprint import policy, process
from agentsprint.domain import Item, ItemType, Priority
from agentsprint.policy import PolicyViolation, check_command, matches_any, resolve_path
from agentsprint.redaction import REDACTED, redact

PY = sys.executable


@pytest.fixture
def fast_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short SIGTERM-to-SIGKILL grace so timeout tests stay quick."""
    monkeypatch.setattr(process, "KILL_GRACE_SECONDS", 0.2)


class TestResolvePath:
    @pytest.fixture
    def worktree(self, tmp_path: Path) -> Path:
        root = tmp_path / "wt"
        (root / "src").mkdir(parents=True)
        (root / "src" / "a.py").write_text("a = 1\n")
        (root / ".git").write_text("gitdir: elsewhere\n")
        (tmp_path / "outside").mkdir()
        return root

    @pytest.mark.parametrize("rel, expected", [
        ("src/a.py", "src/a.py"), ("./src/a.py", "src/a.py"), ("src/new/b.py", "src/new/b.py"),
        (".", ""), ("", ""), ("src/.gitignore", "src/.gitignore"),
    ])
    def test_inside_paths_resolve(self, worktree: Path, rel: str, expected: str) -> None:
        assert resolve_path(worktree, rel) == (worktree / expected).resolve()

    @pytest.mark.parametrize("rel, reason", [
        ("../outside/x", "'..'"), ("src/../../outside", "'..'"), ("/etc/passwd", "absolute"),
        ("~/.ssh/id_rsa", "absolute"), (".git/config", ".git"), (".git", ".git"), (".GIT/config", ".git"),
        ("src/.git/hooks/pre-commit", ".git"), ("a\x00b", "not a valid path"),
    ])
    def test_escapes_are_refused(self, worktree: Path, rel: str, reason: str) -> None:
        with pytest.raises(PolicyViolation, match=reason) as refused:
            resolve_path(worktree, rel)
        assert refused.value.kind == "path"

    def test_symlink_out_is_refused(self, worktree: Path, tmp_path: Path) -> None:
        (worktree / "link").symlink_to(tmp_path / "outside")
        (worktree / "dangling").symlink_to(tmp_path / "outside" / "not-yet.txt")
        for rel in ("link", "link/secret.txt", "dangling"):
            with pytest.raises(PolicyViolation, match="outside the worktree"):
                resolve_path(worktree, rel)

    def test_symlink_inside_is_followed(self, worktree: Path) -> None:
        (worktree / "alias").symlink_to(worktree / "src")
        assert resolve_path(worktree, "alias/a.py") == (worktree / "src" / "a.py").resolve()


class TestCheckCommand:
    @pytest.mark.parametrize("command, allowed, argv", [
        ("pytest", ["pytest"], ["pytest"]),
        ("pytest -q tests", ["pytest"], ["pytest", "-q", "tests"]),
        ("python -m pytest -x", ["python -m pytest"], ["python", "-m", "pytest", "-x"]),
        ("ruff check 'src dir'", ["pytest", "ruff"], ["ruff", "check", "src dir"]),
        ('python -c "import a; print(a)"', ["python"], ["python", "-c", "import a; print(a)"]),
    ])
    def test_allowed(self, command: str, allowed: list[str], argv: list[str]) -> None:
        assert check_command(command, allowed) == argv

    @pytest.mark.parametrize("command, allowed, reason", [
        ("pytest; rm -rf /", ["pytest"], "shell operators"),
        ("pytest && rm -rf /", ["pytest"], "shell operators"),
        ("pytest | tee log", ["pytest"], "shell operators"),
        ("pytest > out.txt", ["pytest"], "shell operators"),
        ("pytest 2>&1", ["pytest"], "shell operators"),
        ("pytest &", ["pytest"], "shell operators"),
        ("pytest $(rm -rf /)", ["pytest"], "substitution"),
        ("pytest `id`", ["pytest"], "substitution"),
        ("pytest\nrm -rf /", ["pytest"], "newlines"),
        ("python -c 'import os'", ["pytest"], "not an allowed command"),
        ("python -c 'import os'", ["python -m pytest"], "not an allowed command"),
        ("pytest-evil", ["pytest"], "not an allowed command"),
        ("/usr/bin/pytest", ["pytest"], "not an allowed command"),
        ("FOO=1 pytest", ["pytest"], "not an allowed command"),
        ("   ", ["pytest"], "empty"),
        ("pytest 'unclosed", ["pytest"], "cannot parse"),
    ])
    def test_refused(self, command: str, allowed: list[str], reason: str) -> None:
        with pytest.raises(PolicyViolation, match=reason) as refused:
            check_command(command, allowed)
        assert refused.value.kind == "command"


def pids_with(marker: str) -> list[int]:
    """Host pids of live (non-zombie) processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def all_gone(marker: str, within: float = 3.0) -> bool:
    """True once no process with `marker` in its command line runs."""
    deadline = time.monotonic() + within
    while pids_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(params=["none", "bwrap"])
def sandbox(request: pytest.FixtureRequest) -> policy.Sandbox:
    """Each command test runs unconfined and in the bubblewrap sandbox."""
    if request.param == "bwrap":
        require_bwrap()
    return policy.Sandbox(mode=request.param)


class TestRunCommand:
    def test_exit_code_and_merged_output(self, tmp_path: Path, sandbox: policy.Sandbox) -> None:
        code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
        result = policy.run_command([PY, "-c", code], tmp_path, 10, 1000, sandbox=sandbox)
        assert (result.exit_code, result.output, result.timed_out) == (3, "out\nerr\n", False)
        assert result.seconds > 0

    def test_string_command_runs_without_a_shell(self, tmp_path: Path, sandbox: policy.Sandbox) -> None:
        command = f"{PY} -c 'import sys; print(sys.argv[1:])' '$HOME' ';' ls"
        result = policy.run_command(command, tmp_path, 10, 1000, sandbox=sandbox)
        assert result.output == "['$HOME', ';', 'ls']\n"

    def test_missing_command(self, tmp_path: Path, sandbox: policy.Sandbox) -> None:
        result = policy.run_command("no-such-command-xyz --help", tmp_path, 10, 1000, sandbox=sandbox)
        assert result.exit_code == 127 and "command not found" in result.output

    def test_output_is_capped_head_and_tail(self, tmp_path: Path, sandbox: policy.Sandbox) -> None:
        code = "print('HEAD' + 'x' * 100000 + 'TAIL')"
        result = policy.run_command([PY, "-c", code], tmp_path, 10, 200, sandbox=sandbox)
        assert result.output.startswith("HEAD") and result.output.rstrip().endswith("TAIL")
        assert "characters cut ...]" in result.output and len(result.output) < 260

    def test_timeout_kills_the_whole_process_group(self, tmp_path: Path, fast_grace: None,
                                                   sandbox: policy.Sandbox) -> None:
        marker = f"agentsprint-test-{os.getpid()}-{time.monotonic_ns()}"
        script = tmp_path / "spawn.py"
        script.write_text(textwrap.dedent(f"""
            import os, signal, subprocess, sys, time
            code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
            grandchild = subprocess.Popen([sys.executable, "-c", code, {marker!r}])
            print("started", flush=True)
            time.sleep(60)
        """))
        result = policy.run_command([PY, str(script), marker], tmp_path, 1.5, 1000, sandbox=sandbox)
        assert result.timed_out and "timed out after 1.5s" in result.output
        assert "started" in result.output, "the grandchild was started"
        assert result.seconds < 5
        assert all_gone(marker)  # the grandchild ignored SIGTERM: SIGKILL got it

    def test_background_leftovers_are_killed_after_exit(self, tmp_path: Path, fast_grace: None,
                                                        sandbox: policy.Sandbox) -> None:
        marker = f"agentsprint-test-{os.getpid()}-{time.monotonic_ns()}"
        sleeper = f"[sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}]"
        code = f"import subprocess, sys; print(subprocess.Popen({sleeper}).pid)"
        result = policy.run_command([PY, "-c", code], tmp_path, 10, 1000, sandbox=sandbox)
        assert result.exit_code == 0 and not result.timed_out and result.output.split()[0].isdigit()
        assert all_gone(marker)

    def test_child_env_is_scrubbed_by_default(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              sandbox: policy.Sandbox) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghijklmnop")
        monkeypatch.setenv("HARMLESS_SETTING", "kept")
        code = "import os; print(os.environ.get('OPENAI_API_KEY'), os.environ.get('HARMLESS_SETTING'))"
        assert policy.run_command([PY, "-c", code], tmp_path, 10, 1000, sandbox=sandbox).output == "None kept\n"

    def test_output_is_redacted(self, tmp_path: Path, sandbox: policy.Sandbox) -> None:
        key = "ghp_" + "a1" * 18
        result = policy.run_command([PY, "-c", f"print('token {key}')"], tmp_path, 10, 1000, sandbox=sandbox)
        assert result.output == f"token {REDACTED}\n"

    def test_the_default_is_the_bubblewrap_sandbox(self, tmp_path: Path) -> None:
        require_bwrap()
        code = "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit())[:2], os.getpid())"
        result = policy.run_command([PY, "-c", code], tmp_path, 10, 1000)
        assert result.output == "[1, 2] 2\n", "a new PID namespace: the command is pid 2 under the sandbox's init"


class TestScrubbedEnv:
    def test_secrets_and_provider_settings_are_dropped(self) -> None:
        base = {
            "PATH": "/usr/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "VIRTUAL_ENV": "/venv",
            "OPENAI_API_KEY": "x", "OPENAI_BASE_URL": "http://proxy", "ANTHROPIC_API_KEY": "x",
            "AWS_PROFILE": "prod", "GITHUB_TOKEN": "x", "MY_SECRET": "x", "DB_PASSWORD": "x",
            "STRIPE_KEY": "x", "AGENTSPRINT_DATABASE_URL": "x", "SSH_AUTH_SOCK": "/tmp/agent",
            "DATABASE_URL": "postgresql://user:hunter2@db/app", "SERVICE_URL": "https://api.example.com/v1",
        }
        env = policy.scrubbed_env(base)
        assert {k: v for k, v in env.items() if k not in policy.CHILD_ENV_DEFAULTS} == {
            "PATH": "/usr/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "VIRTUAL_ENV": "/venv",
            "SERVICE_URL": "https://api.example.com/v1",
        }
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"


class TestRedact:
    def test_secret_env_values_are_redacted(self) -> None:
        environ = {"MY_API_KEY": "abcdef123456", "SHORT_TOKEN": "abc", "COLOR": "abcdef123456x"}
        assert redact("key=abcdef123456 short=abc", environ) == f"key={REDACTED} short=abc"

    @pytest.mark.parametrize("secret", [
        "sk-proj-" + "A1b2" * 8, "sk-ant-api03-" + "x9" * 15, "ghp_" + "Z" * 36, "github_pat_" + "1" * 30,
        "AKIAIOSFODNN7EXAMPLE", "xoxb-123456789012-abcdefABCDEF", "AIza" + "b" * 35,
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
    ])
    def test_key_shapes_are_redacted(self, secret: str) -> None:
        assert redact(f"before {secret} after", {}).startswith(f"before {REDACTED}")
        assert secret not in redact(secret, {})

    def test_plain_text_is_untouched(self) -> None:
        text = "def task_runner(): return 'sk-short' + sha256('AKIA')"
        assert redact(text, {}) == text


@pytest.mark.parametrize("path, patterns, expected", [
    ("tests/a/b.py", ["tests/**"], True),
    ("tests/x.py", ["tests/**"], True),
    ("src/tests/x.py", ["tests/**"], False),
    ("agentsprint.toml", ["agentsprint.toml"], True),
    ("sub/agentsprint.toml", ["agentsprint.toml"], False),
    ("agentsprint.toml.bak", ["agentsprint.toml"], False),
    ("src/a.py", ["src/*.py"], True),
    ("src/pkg/a.py", ["src/*.py"], False),
    ("src/pkg/a.py", ["src/**/*.py"], True),
    ("src/a.py", ["src/**/*.py"], True),
    ("deep/x/conftest.py", ["**/conftest.py"], True),
    ("conftest.py", ["**/conftest.py"], True),
    ("docs/guide/intro.md", ["docs"], True),
    ("docs/guide/intro.md", ["docs/"], True),
    ("docsx/a.md", ["docs"], False),
    ("./src/a.py", ["/src/a.py"], True),
    ("src/b1.py", ["src/b[0-9].py"], True),
    ("src/bx.py", ["src/b[!0-9].py"], True),
    ("src/b1.py", ["src/b[!0-9].py"], False),
    ("src/a.py", ["src/?.py"], True),
    (".github/workflows/ci.yml", ["tests/**", ".github/**"], True),
    ("README.md", [], False),
])
def test_matches_any(path: str, patterns: list[str], expected: bool) -> None:
    assert matches_any(path, patterns) is expected


def test_precedence_orders_type_then_priority_then_id() -> None:
    def item(item_id: str, kind: ItemType, priority: Priority) -> Item:
        return Item(id=item_id, title=item_id, type=kind, priority=priority)

    items = [
        item("AS-10", ItemType.BUG, Priority.HIGH), item("AS-9", ItemType.BUG, Priority.HIGH),
        item("AS-1", ItemType.CHORE, Priority.CRITICAL), item("AS-2", ItemType.SECURITY, Priority.LOW),
        item("AS-3", ItemType.BUG, Priority.CRITICAL), item("AS-4", ItemType.FEATURE, Priority.HIGH),
    ]
    order = [ItemType.SECURITY, ItemType.BUG, ItemType.FEATURE]  # chore not listed: last
    ranked = sorted(items, key=lambda i: policy.precedence_key(i, order))
    assert [i.id for i in ranked] == ["AS-2", "AS-3", "AS-9", "AS-10", "AS-4", "AS-1"]


def test_cap_text_keeps_head_and_tail() -> None:
    assert policy.cap_text("short", 10) == "short"
    capped = policy.cap_text("a" * 50 + "b" * 50, 20)
    assert capped == "a" * 10 + "\n[... 80 characters cut ...]\n" + "b" * 10


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(max_codepoint=127), max_size=400), cap=st.integers(1, 120),
       sizes=st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_streamed_capture_equals_cap_text(text: str, cap: int, sizes: list[int]) -> None:
    capture = process._Capture(cap)
    data, position, index = text.encode(), 0, 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        capture.feed(data[position : position + size])
        position, index = position + size, index + 1
    assert capture.text() == policy.cap_text(text, cap)
