"""DoD gates on real diffs of real worktrees, with real command gates."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import pytest
from conftest import git

from agentsprint import dod
from agentsprint.config import RunSettings, Settings
from agentsprint.domain import Item, parse_gate
from agentsprint.workspace import Workspace

PY = sys.executable
# `env` sets a variable without a shell; no plugin autoload keeps the sample's pytest start fast.
PYTEST = f"env PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {PY} -m pytest -q -p no:cacheprovider tests"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "k3Y9" * 9
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAu1SU1LfVLPHC\n-----END RSA PRIVATE KEY-----"


@pytest.fixture
def project(git_repo: Path) -> Path:
    """A tiny Python project with a passing test suite, committed on main."""
    (git_repo / "src").mkdir()
    (git_repo / "src" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (git_repo / "tests").mkdir()
    (git_repo / "tests" / "test_calc.py").write_text(
        "import sys\nsys.path.insert(0, 'src')\nfrom calc import add\n\n\n"
        "def test_add():\n    assert add(2, 2) == 4\n"
    )
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "sample project")
    return git_repo


@pytest.fixture
def ws(project: Path) -> Workspace:
    return Workspace(project, project / ".agentsprint" / "worktrees", "main")


def make_item(*dod_entries: object, scope: list[str] | None = None) -> Item:
    return Item(id="AS-1", title="t", dod=[parse_gate(e) for e in dod_entries], scope=scope or [])


def gates_for(ws: Workspace, item: Item, settings: Settings | None = None) -> dict[str, dod.GateResult]:
    """Run the gates on the item's current change, by gate name."""
    results = dod.run_gates(item, ws.worktree_path(item.id), ws.changed_files(item.id), ws.diff(item.id),
                            settings or Settings())
    return {result.name: result for result in results}


class TestPathGates:
    def test_protected_test_edit_fails_naming_the_file(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "tests" / "test_calc.py").write_text("def test_add():\n    assert True\n")
        (path / "src" / "calc.py").write_text("def add(a, b):\n    return 4\n")
        protected = gates_for(ws, make_item())["protected"]
        assert not protected.passed and protected.details == ["tests/test_calc.py"]
        assert "tests/test_calc.py" in protected.output and "src/calc.py" not in protected.output

    def test_protected_is_always_on_and_passes_on_clean_change(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "calc.py").write_text("def add(a, b):\n    return b + a\n")
        results = gates_for(ws, make_item())
        assert list(results) == ["protected"] and results["protected"].passed

    def test_renaming_a_protected_file_away_fails(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "tests" / "test_calc.py").rename(path / "src" / "not_a_test.py")
        assert gates_for(ws, make_item())["protected"].details == ["tests/test_calc.py"]

    def test_scope_violation_names_files_outside(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "calc.py").write_text("def add(a, b):\n    return a + b  # ok\n")
        (path / "README.md").write_text("changed\n")
        (path / "setup.cfg").write_text("[x]\n")
        scope = gates_for(ws, make_item(scope=["src/**"]))["scope"]
        assert not scope.passed and scope.details == ["README.md", "setup.cfg"]

    def test_scope_respected_passes(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "more.py").write_text("x = 1\n")
        assert gates_for(ws, make_item(scope=["src/**"]))["scope"].passed


class TestSecretsGate:
    @pytest.mark.parametrize("line, kind", [
        (f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"', "AWS"),
        (f'TOKEN = "{GITHUB_TOKEN}"', "GitHub"),
        (f'KEY = """{PRIVATE_KEY}"""', "Private Key"),
        ('client = Client(api_key="sk-ant-api03-' + "Qw3r" * 8 + '")', "Anthropic"),
    ])
    def test_added_secret_fails_with_file_line_not_secret(self, ws: Workspace, line: str, kind: str) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "settings.py").write_text(f"import os\n\n{line}\nDEBUG = False\n")
        secrets = gates_for(ws, make_item("secrets"))["secrets"]
        assert not secrets.passed
        assert any(d.startswith("src/settings.py:3: ") and kind.lower() in d.lower() for d in secrets.details)
        assert "src/settings.py:3" in secrets.output
        for secret_part in (AWS_KEY, GITHUB_TOKEN, "MIIEpAIBAAKCAQEA", "Qw3rQw3r"):
            assert secret_part not in secrets.output and all(secret_part not in d for d in secrets.details)

    def test_line_numbers_follow_the_new_file(self, ws: Workspace, project: Path) -> None:
        body = "".join(f"line_{n} = {n}\n" for n in range(1, 31))
        (project / "src" / "long.py").write_text(body)
        git(project, "add", ".")
        git(project, "commit", "-q", "-m", "long file")
        path = ws.create_worktree("AS-1")
        lines = body.splitlines()
        lines[19] = f'aws = "{AWS_KEY}"'
        (path / "src" / "long.py").write_text("\n".join(["# header", *lines]) + "\n")
        details = gates_for(ws, make_item("secrets"))["secrets"].details
        assert details and all(d.startswith("src/long.py:21: ") for d in details)

    def test_allowlist_pragma_does_not_bypass(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "s.py").write_text(f'key = "{AWS_KEY}"  # pragma: allowlist secret\n')
        assert not gates_for(ws, make_item("secrets"))["secrets"].passed

    def test_clean_diff_passes(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "ids.py").write_text(
            'DIGEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"\n'
            'RUN_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"\n'
            'password = os.environ["DB_PASSWORD"]\n'
            'SERVER = "8.8.8.8"\n'
        )
        secrets = gates_for(ws, make_item("secrets"))["secrets"]
        assert secrets.passed and secrets.details == []

    def test_removing_a_secret_is_not_flagged(self, ws: Workspace, project: Path) -> None:
        (project / "src" / "old.py").write_text(f'key = "{AWS_KEY}"\n')
        git(project, "add", ".")
        git(project, "commit", "-q", "-m", "a human's old mistake")
        path = ws.create_worktree("AS-1")
        (path / "src" / "old.py").write_text('key = os.environ["AWS_ACCESS_KEY_ID"]\n')
        assert gates_for(ws, make_item("secrets"))["secrets"].passed

    def item_gate(self, ws: Workspace) -> dod.GateResult:
        """The secrets gate as the runner runs it: on the item's committed blobs."""
        results = dod.run_item_gates(make_item("secrets"), ws, ws.changed_files("AS-1"), ws.diff("AS-1"), Settings())
        return {r.name: r for r in results}["secrets"]

    def test_a_nul_byte_that_makes_git_call_the_file_binary_hides_nothing(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "keys.py").write_bytes(f"\x00\nKEY = '{GITHUB_TOKEN}'\n".encode())
        ws.commit_all("AS-1", "round 1")
        assert "Binary files" in ws.diff("AS-1") and not dod.added_lines(ws.diff("AS-1")), "no + line to scan"
        secrets = self.item_gate(ws)
        assert not secrets.passed and any(d.startswith("src/keys.py:2: ") for d in secrets.details)
        assert GITHUB_TOKEN not in secrets.output

    def test_a_secret_env_value_in_any_disguise_fails_naming_the_variable(
            self, ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
        value = "plainvalue-Zq8Xv2Lm9Pw4"
        monkeypatch.setenv("SHOP_API_TOKEN", value)
        path = ws.create_worktree("AS-1")
        (path / "src" / "a.txt").write_text(f"x\n{value[::-1]}\n")
        (path / "src" / "b.bin").write_bytes(b"\x00\x01" + value.encode("utf-16-le"))
        ws.commit_all("AS-1", "round 1")
        details = self.item_gate(ws).details
        assert "src/a.txt:2: value of $SHOP_API_TOKEN (reversed)" in details
        assert any(d.startswith("src/b.bin:1: value of $SHOP_API_TOKEN") for d in details)
        assert all(value not in d and value[::-1] not in d for d in details)

    def test_a_key_already_in_a_changed_file_is_not_the_change_s_doing(self, ws: Workspace, project: Path) -> None:
        (project / "src" / "old.py").write_text(f'key = "{AWS_KEY}"\n')
        git(project, "add", ".")
        git(project, "commit", "-q", "-m", "a human's old mistake")
        path = ws.create_worktree("AS-1")
        (path / "src" / "old.py").write_text(f'# a comment the coder added\nkey = "{AWS_KEY}"\n')
        ws.commit_all("AS-1", "round 1")
        assert self.item_gate(ws).passed
        (path / "src" / "old.py").write_text(f'key = "{AWS_KEY}"\nother = "{GITHUB_TOKEN}"\n')
        ws.commit_all("AS-1", "round 2")
        details = self.item_gate(ws).details
        assert details and all(d.startswith("src/old.py:2: ") and "github" in d.lower() for d in details)

    def test_a_file_over_the_scan_cap_fails_as_unscannable(self, ws: Workspace,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(dod, "SCAN_CAP_BYTES", 1000)
        path = ws.create_worktree("AS-1")
        (path / "src" / "big.bin").write_bytes(b"\x00" * 2000)
        ws.commit_all("AS-1", "round 1")
        secrets = self.item_gate(ws)
        assert not secrets.passed and secrets.details == ["src/big.bin: too large to scan (over 1,000 bytes); "
                                                          "a human must check it"]

    def test_secrets_gate_only_when_in_dod(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "s.py").write_text(f'key = "{AWS_KEY}"\n')
        assert "secrets" not in gates_for(ws, make_item())


class TestCommandGates:
    def test_failing_tests_fail_the_gate_with_output(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
        tests = gates_for(ws, make_item({"tests": PYTEST}))["tests"]
        assert not tests.passed and tests.kind == "command" and tests.details == ["exit code 1"]
        assert "1 failed" in tests.output and "assert 0 == 4" in tests.output
        assert not list(path.rglob("__pycache__"))  # gates leave no bytecode for the next diff

    def test_passing_gates_pass_in_order(self, ws: Workspace) -> None:
        ws.create_worktree("AS-1")
        item = make_item("secrets", {"tests": PYTEST},
                         {"lint": f"{PY} -c 'print(42)'"}, "review: human", "security: agent")
        results = gates_for(ws, item)
        assert list(results) == ["protected", "secrets", "tests", "lint"]  # review/security: the runner's
        assert all(r.passed for r in results.values())
        assert "1 passed" in results["tests"].output
        assert results["lint"].output == f"$ {PY} -c 'print(42)'\n42\n"

    def test_gate_timeout_fails(self, ws: Workspace) -> None:
        ws.create_worktree("AS-1")
        settings = Settings(run=RunSettings(command_timeout="0.5s"))
        slow = gates_for(ws, make_item({"slow": f"{PY} -c 'import time; time.sleep(30)'"}), settings)["slow"]
        assert not slow.passed and slow.details == ["timed out after 0.5s"] and slow.seconds < 5

    def test_unparsable_or_missing_command_fails(self, ws: Workspace) -> None:
        ws.create_worktree("AS-1")
        results = gates_for(ws, make_item({"bad": "pytest 'unclosed"}, {"gone": "no-such-tool-xyz"}))
        assert not results["bad"].passed and "cannot parse" in results["bad"].output
        assert not results["gone"].passed and results["gone"].details == ["exit code 127"]


class TestGateCheckout:
    """Command gates judge the round's commit in a clean checkout, not what else lies in the worktree."""

    @staticmethod
    def overridable(project: Path) -> None:
        """calc.add is wrong unless a git-ignored src/overrides.py replaces it (the local-settings habit)."""
        (project / ".gitignore").write_text("src/overrides.py\n")
        (project / "src" / "calc.py").write_text(
            "try:\n    from overrides import add  # local, git-ignored\nexcept ImportError:\n"
            "    def add(a, b):\n        return a - b\n")
        git(project, "add", ".")
        git(project, "commit", "-q", "-m", "calc with a local override hook")

    def test_an_ignored_file_the_coder_left_cannot_make_a_gate_pass(self, project: Path, ws: Workspace) -> None:
        self.overridable(project)
        path = ws.create_worktree("AS-1")
        (path / "src" / "overrides.py").write_text("def add(a, b):\n    return a + b\n")
        ws.commit_all("AS-1", "round 1")
        item = make_item({"tests": PYTEST})
        assert ws.changed_files("AS-1") == [] and ws.diff("AS-1") == ""  # invisible to every other gate

        def tests_gate(mode: Literal["clean", "worktree"]) -> dod.GateResult:
            settings = Settings(run=RunSettings(gate_checkout=mode))
            results = dod.run_item_gates(item, ws, ws.changed_files("AS-1"), ws.diff("AS-1"), settings)
            return {r.name: r for r in results}["tests"]

        assert tests_gate("worktree").passed, "in the worktree the ignored file decides (the hole)"
        clean = tests_gate("clean")
        assert not clean.passed and "assert 0 == 4" in clean.output
        (path / "src" / "calc.py").write_text("def add(a, b):\n    return a + b\n")  # the honest fix
        ws.commit_all("AS-1", "round 2")
        assert tests_gate("clean").passed
        assert (path / "src" / "overrides.py").is_file(), "the coder's worktree is left as it was"

    def test_the_checkout_follows_the_tip_is_cleaned_between_rounds_and_dropped(self, ws: Workspace) -> None:
        path = ws.create_worktree("AS-1")
        (path / "src" / "calc.py").write_text("def add(a, b):\n    return b + a\n")
        ws.commit_all("AS-1", "round 1")
        checkout = ws.gate_checkout_path("AS-1")
        git(ws.repo_root, "worktree", "add", "-q", "--detach", str(checkout), "main")  # a killed gate run's
        (checkout / "src" / "calc.py").write_text("def add(a, b):\n    return 0\n")
        (checkout / "stray.txt").write_text("left by an earlier gate run\n")
        item = make_item({"tests": PYTEST}, {"head": "git rev-parse HEAD"}, {"files": "git status --porcelain"})

        def gates() -> dict[str, dod.GateResult]:
            return {r.name: r for r in dod.run_item_gates(item, ws, ws.changed_files("AS-1"), ws.diff("AS-1"),
                                                          Settings())}

        first = gates()
        assert first["tests"].passed, first["tests"].output
        assert ws.head("AS-1") in first["head"].output, "gates ran on the item's tip"
        assert first["files"].output.splitlines()[1:] == [], "nothing but the commit's files"
        (path / "src" / "calc.py").write_text("def add(a, b):\n    return a - b\n")  # round 2 breaks it
        ws.commit_all("AS-1", "round 2")
        second = gates()
        assert not second["tests"].passed and ws.head("AS-1") in second["head"].output
        assert checkout.is_dir(), "kept between rounds"
        ws.drop_gate_checkout("AS-1")
        assert not checkout.exists()
        assert str(checkout) not in git(ws.repo_root, "worktree", "list")
        assert git(ws.repo_root, "status", "--porcelain") == "", "nothing shows in the main checkout"

    def test_removing_the_worktree_also_removes_a_gate_checkout_left_behind(self, ws: Workspace) -> None:
        ws.create_worktree("AS-1")
        leftover = ws.gate_checkout_path("AS-1")
        git(ws.repo_root, "worktree", "add", "-q", "--detach", str(leftover), "main")
        ws.remove_worktree("AS-1")
        assert not leftover.exists() and str(leftover) not in git(ws.repo_root, "worktree", "list")


def test_summarize_puts_failures_first_and_stays_short() -> None:
    results = [
        dod.GateResult(name="protected", kind="protected", passed=True, output="ok"),
        dod.GateResult(name="tests", kind="command", passed=False, output="E" * 20000 + "\n1 failed",
                       details=["exit code 1"], seconds=1.25),
        dod.GateResult(name="lint", kind="command", passed=False, output="L" * 20000,
                       details=["exit code 2"]),
    ]
    summary = dod.summarize(results)
    assert summary.startswith("FAILED tests (command, exit code 1)\n")
    assert summary.index("FAILED lint") < summary.index("PASSED protected")
    assert "1 failed" in summary and len(summary) <= dod.SUMMARY_CHARS + 200
    assert dod.summarize(results[:1]).startswith("all deterministic gates passed")


def test_summarize_is_the_same_however_long_the_gates_took() -> None:
    """A prompt must not change with machine load: QA's token count depended on a gate's 0.0s/0.1s."""
    def gates(seconds: float) -> list[dod.GateResult]:
        return [dod.GateResult(name="secrets", kind="secrets", passed=True, output="ok", seconds=seconds),
                dod.GateResult(name="tests", kind="command", passed=False, output="1 failed",
                               details=["exit code 1"], seconds=seconds * 3)]
    assert dod.summarize(gates(0.04)) == dod.summarize(gates(12.3))
    assert dod.summarize(gates(0.04)[:1]) == dod.summarize(gates(0.16)[:1])


def test_added_lines_reads_hunks_exactly() -> None:
    diff = (
        "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        "@@ -10,2 +10,3 @@\n j\n+++not a header\n k\n"
        "diff --git a/gone.py b/gone.py\n--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    )
    assert dod.added_lines(diff) == {"x.py": [(2, "B"), (11, "++not a header")]}
