"""The sandbox's settings, its bubblewrap command line, what it hides, and its refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sandbox_support import require_bwrap

from agentsprint import dod, policy, sandbox
from agentsprint.agents.tools import ToolPolicy, execute
from agentsprint.config import ConfigError, Settings, load_settings
from agentsprint.domain import Gate, GateKind, Item, parse_gate
from agentsprint.sandbox import Sandbox, SandboxUnavailable

PY = sys.executable


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    """A repository with a worktree under .agentsprint, a database file and a .env at its root."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.py").write_text("A = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    git(root, "worktree", "add", "-q", "-b", "agentsprint/AS-1", str(root / ".agentsprint" / "worktrees" / "AS-1"))
    (root / ".agentsprint" / "agentsprint.db").write_text("the database")
    (root / ".env").write_text("SHOP_TOKEN=from-the-dotenv\n")
    settings = load_settings(root, environ={})
    return settings


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH without bubblewrap (python and git stay reachable)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, target in (("git", "/usr/bin/git"), ("python", PY)):
        (folder / name).symlink_to(target)
    monkeypatch.setenv("PATH", str(folder))


def worktree(settings: Settings) -> Path:
    return settings.worktrees_dir / "AS-1"


def run_inside(settings: Settings, code: str, **overrides: object) -> policy.CommandResult:
    spec = Sandbox.from_settings(settings).model_copy(update=overrides)
    return policy.run_command([PY, "-c", code], worktree(settings), 10, 5000, sandbox=spec)


class TestSettings:
    def test_defaults_are_bubblewrap_without_network(self) -> None:
        assert (Settings().policy.sandbox, Settings().policy.network) == ("bwrap", False)

    def test_environment_overrides(self, tmp_path: Path) -> None:
        settings = load_settings(tmp_path, environ={"AGENTSPRINT_POLICY_SANDBOX": "none",
                                                    "AGENTSPRINT_POLICY_NETWORK": "true"})
        assert (settings.policy.sandbox, settings.policy.network) == ("none", True)

    def test_an_unknown_sandbox_is_a_config_error_naming_the_key(self, tmp_path: Path) -> None:
        (tmp_path / "agentsprint.toml").write_text('[policy]\nsandbox = "firejail"\n')
        with pytest.raises(ConfigError, match=r"agentsprint.toml: policy.sandbox: Input should be 'bwrap' or 'none'"):
            load_settings(tmp_path, environ={})

    def test_the_spec_hides_state_database_dotenv_and_credentials(self, project: Settings, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".netrc").write_text("machine x password y\n")
        monkeypatch.setenv("HOME", str(home))
        spec = Sandbox.from_settings(project)
        assert spec.readable == [str(project.root)]
        assert set(spec.hidden) == {str(project.state_dir), str(project.root / ".env"),
                                    str(project.state_dir / "agentsprint.db"), str(home / ".ssh"),
                                    str(home / ".netrc")}


class TestCommandLine:
    def test_mounts_are_ordered_so_later_ones_cover_earlier_ones(self, project: Settings) -> None:
        wt = str(worktree(project))
        args = sandbox.bwrap_args(worktree(project), Sandbox.from_settings(project))
        joined = " ".join(args)
        assert "--unshare-all" in args and "--share-net" not in args and "--die-with-parent" in args
        assert args.index("--cap-drop") < args.index("--ro-bind")
        assert joined.index("--tmpfs /tmp ") < joined.index(f"--ro-bind-try {project.root / '.git'}")
        assert joined.index(f"--tmpfs {project.state_dir} ") < joined.index(f"--bind {wt} {wt}")
        assert joined.index(f"--bind {wt} {wt}") < joined.index(f"--ro-bind {wt}/.git {wt}/.git")
        assert joined.index(f"--ro-bind {wt}/.git") < joined.index(f"--remount-ro {project.state_dir}")
        assert args[-2:] == ["--chdir", wt]

    def test_network_is_shared_only_when_allowed(self, project: Settings) -> None:
        args = sandbox.bwrap_args(worktree(project), Sandbox(network=True))
        assert "--share-net" in args

    def test_git_dirs_of_a_linked_worktree_and_of_a_plain_checkout(self, project: Settings) -> None:
        assert sandbox.git_dirs(worktree(project)) == [(project.root / ".git").resolve()]
        assert sandbox.git_dirs(project.root) == [project.root / ".git"]
        assert sandbox.git_dirs(project.state_dir) == []

    def test_none_leaves_the_command_as_it_is(self, tmp_path: Path) -> None:
        assert sandbox.wrap(["python", "-V"], tmp_path, Sandbox(mode="none")) == ["python", "-V"]


class TestInside:
    @pytest.fixture(autouse=True)
    def _bwrap(self) -> None:
        require_bwrap()

    def test_the_worktree_is_writable_and_its_git_file_and_repository_are_not(self, project: Settings) -> None:
        code = ("import pathlib\n"
                "def w(p):\n"
                "    try:\n        open(p, 'a').close(); return 'writable'\n"
                "    except OSError as e:\n        return e.strerror\n"
                f"print(w('new.txt'), w('.git'), w({str(project.root / '.git' / 'config')!r}),"
                f" w({str(project.root / 'a.py')!r}))")
        result = run_inside(project, code)
        assert result.output == "writable Read-only file system Read-only file system Read-only file system\n"
        assert (worktree(project) / "new.txt").exists()

    def test_database_other_worktrees_dotenv_and_credentials_are_hidden(
            self, project: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        home = tmp_path / "home"
        (home / ".aws").mkdir(parents=True)
        (home / ".aws" / "credentials").write_text("aws_secret_access_key = x\n")
        monkeypatch.setenv("HOME", str(home))
        (project.worktrees_dir / "AS-2").mkdir()
        code = (f"import os; print(sorted(os.listdir({str(project.state_dir)!r})),"
                f" sorted(os.listdir({str(project.worktrees_dir)!r})), os.listdir({str(home / '.aws')!r}))\n"
                f"try:\n    print(open({str(project.root / '.env')!r}).read() or 'empty')\n"
                "except OSError as e:\n    print(e.strerror)")
        result = run_inside(project, code)
        assert result.output == "['worktrees'] ['AS-1'] []\nPermission denied\n"

    def test_a_symlinked_credential_folder_is_hidden_at_its_target(
            self, project: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        keys = project.root / "keys"  # in the readable project: what is hidden must be hidden on purpose
        keys.mkdir()
        (keys / "id_ed25519").write_text("PRIVATE KEY\n")
        home = project.root / "home"
        home.mkdir()
        (home / ".ssh").symlink_to(keys)
        monkeypatch.setenv("HOME", str(home))
        code = f"import os; print(os.listdir({str(home / '.ssh')!r}), os.listdir({str(keys)!r}))"
        assert run_inside(project, code).output == "[] []\n"

    def test_a_virtualenv_named_dotenv_is_not_hidden(self, project: Settings) -> None:
        (project.root / ".env").unlink()
        (project.root / ".env" / "bin").mkdir(parents=True)
        assert str(project.root / ".env") not in Sandbox.from_settings(project).hidden

    def test_tools_on_path_under_tmp_stay_runnable(self, project: Settings, tmp_path: Path) -> None:
        tools = tmp_path / "tools" / "bin"
        tools.mkdir(parents=True)
        (tools / "hello").write_text("#!/bin/sh\necho hello from a tool\n")
        (tools / "hello").chmod(0o755)
        env = {"PATH": f"{tools}:/usr/bin:/bin"}
        result = policy.run_command(["hello"], worktree(project), 10, 1000, env=env,
                                    sandbox=Sandbox.from_settings(project))
        assert result.output == "hello from a tool\n"

    def test_a_program_named_by_path_under_tmp_stays_runnable(self, project: Settings, tmp_path: Path) -> None:
        venv = tmp_path / "clone" / ".venv"  # a checkout under /tmp running its own virtualenv's python
        subprocess.run([PY, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        result = policy.run_command([python, "-c", "import sys; print(sys.prefix)"], worktree(project), 30, 1000,
                                    sandbox=Sandbox.from_settings(project))
        assert (result.exit_code, result.output) == (0, f"{venv}\n")

    def test_no_capabilities_and_no_nested_user_namespaces(self, project: Settings) -> None:
        code = ("import subprocess\n"
                "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
                "print(subprocess.run(['unshare', '--user', 'true'], capture_output=True).returncode != 0)")
        assert run_inside(project, code).output == "0000000000000000\nTrue\n"

    def test_an_older_bubblewrap_without_disable_userns_still_sandboxes(
            self, project: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        folder = tmp_path / "old-bwrap"
        folder.mkdir()
        (folder / "bwrap").write_text(  # as bubblewrap 0.6 (Ubuntu 22.04) answers
            '#!/bin/sh\nfor a in "$@"; do [ "$a" = --disable-userns ] && '
            '{ echo "bwrap: Unknown option --disable-userns" >&2; exit 1; }; done\nexec /usr/bin/bwrap "$@"\n')
        (folder / "bwrap").chmod(0o755)
        monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
        assert sandbox.bwrap_problem() is None
        wrapped = sandbox.wrap(["true"], worktree(project), Sandbox.from_settings(project))
        assert wrapped[0] == str(folder / "bwrap") and "--disable-userns" not in wrapped
        assert run_inside(project, "import os; print(os.getppid())").output == "1\n"

    def test_tmp_is_private(self, project: Settings, tmp_path: Path) -> None:
        result = run_inside(project, "import os; open('/tmp/made-inside', 'w'); print(len(os.listdir('/tmp')))")
        assert result.exit_code == 0 and not Path("/tmp/made-inside").exists()

    def test_agentsprint_s_process_is_out_of_sight(self, project: Settings) -> None:
        code = "import os; print(os.getppid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"
        assert run_inside(project, code).output == "1 [1, 2]\n"


class TestRefusals:
    def test_the_run_tool_refuses_without_bubblewrap(self, project: Settings, no_bwrap: None) -> None:
        limits = ToolPolicy.from_settings(project)
        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
            execute(str(worktree(project)), "run", {"command": "python -c pass"}, limits)

    def test_a_command_gate_refuses_without_bubblewrap(self, project: Settings, no_bwrap: None) -> None:
        gate = Gate(kind=GateKind.COMMAND, name="tests", command="python -c pass")
        with pytest.raises(SandboxUnavailable, match="not installed"):
            dod.run_command_gate(gate, worktree(project), project)

    def test_none_runs_without_bubblewrap(self, project: Settings, no_bwrap: None) -> None:
        project.policy.sandbox = "none"
        gate = Gate(kind=GateKind.COMMAND, name="tests", command="python -c pass")
        assert dod.run_command_gate(gate, worktree(project), project).passed

    def test_a_worker_refuses_to_start(self, project: Settings, no_bwrap: None) -> None:
        from agentsprint.runner.worker import serve

        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
            serve(project)

    def test_preflight_refuses_only_runs_that_need_commands(self, project: Settings, no_bwrap: None) -> None:
        quiet = Item(id="AS-1", title="no commands", dod=[parse_gate("secrets")])
        gated = Item(id="AS-2", title="a gate", dod=[parse_gate({"tests": "python -m unittest"})])
        project.policy.allowed_commands = []
        sandbox.preflight(project, [quiet])
        with pytest.raises(SandboxUnavailable, match=r"policy.sandbox = \"bwrap\""):
            sandbox.preflight(project, [quiet, gated])
        project.policy.allowed_commands = ["python"]
        with pytest.raises(SandboxUnavailable):
            sandbox.preflight(project, [quiet])
