"""Every git process agentsprint starts, hardened so that nothing the repository controls runs in it.

A repository's git folder can name programs that git runs by itself: hooks, `core.hooksPath`,
`core.fsmonitor`, filter and merge drivers, diff drivers and textconv. Whoever could write that folder
(an agent following its worktree's `.git` file) would otherwise run code with agentsprint's
environment, provider keys included. So every call turns them off on its command line and gets a
scrubbed environment. Standard library only: the backlog's id lookup uses it on the CLI path.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from agentsprint.redaction import scrubbed_env

HARDENING = (
    "core.hooksPath=/dev/null",  # no hook of any kind (reference-transaction, post-checkout, ...)
    "core.fsmonitor=false",  # no file-system monitor program or daemon
    "core.pager=cat",
    "commit.gpgSign=false", "tag.gpgSign=false",  # no gpg.program
    "merge.verifySignatures=false", "log.showSignature=false",
    "protocol.allow=never",  # agentsprint never fetches or pushes: no transport, no ssh command
    "submodule.recurse=false",
    "gc.auto=0", "maintenance.auto=false",  # no background git holding locks after agentsprint's calls
)
"""`-c` settings on every call; command-line settings override every configuration file."""

DIFF_COMMANDS = {"diff", "log", "show"}
NO_DIFF_DRIVERS = ("--no-ext-diff", "--no-textconv")
"""Added to every diff-producing command: no `diff.external`, `diff.<x>.command` or textconv."""

CONTENT_FREE = frozenset({"rev-parse", "merge-base", "show-ref", "for-each-ref", "ls-tree", "version",
                          "commit-tree", "update-ref"})
"""Commands that read no working tree and merge no content: no filter or merge driver can run, so the
lookup of the repository's drivers (one more git process) is skipped for them. Not `write-tree`: it
re-hashes racily clean files, through their clean filter."""

REPOSITORY_SCOPES = {"local", "worktree"}
SAFE_MERGE_DRIVER = "git merge-file --quiet %A %O %B"
"""What a merge driver from the repository's config is replaced with: git's own three-way text merge."""

QUIET_ENV = {"GIT_EDITOR": "true", "GIT_SEQUENCE_EDITOR": "true", "GIT_TERMINAL_PROMPT": "0",
             "GIT_MERGE_AUTOEDIT": "no", "GIT_PAGER": "cat", "LC_ALL": "C", "LANGUAGE": "C"}
"""No editor, prompt or pager; untranslated messages (parsed in places)."""

_DROPPED_ENV = {
    # `git rev-parse --local-env-vars`: an inherited one would point git at another repository
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY", "GIT_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE", "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX", "GIT_SHALLOW_FILE", "GIT_COMMON_DIR",
    "GIT_EXTERNAL_DIFF", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_PROXY_COMMAND", "GIT_EXEC_PATH",
}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a git call: scrubbed of secrets and of inherited repository pointers."""
    env = {name: value for name, value in scrubbed_env().items()
           if name not in _DROPPED_ENV and not name.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))}
    env.update(QUIET_ENV)
    env.update(extra or {})
    return env


def git_argv(args: Sequence[str], config: Sequence[str] = ()) -> list[str]:
    """`git` with the hardening settings, `config` and `args` (diff drivers off for diff commands)."""
    argv = ["git", "--no-pager"]
    for setting in (*HARDENING, *config):
        argv += ["-c", setting]
    if args and args[0] in DIFF_COMMANDS:
        return [*argv, args[0], *NO_DIFF_DRIVERS, *args[1:]]
    return [*argv, *args]


def driver_overrides(cwd: Path, env: Mapping[str, str]) -> dict[str, str]:
    """GIT_CONFIG_COUNT/KEY/VALUE settings that switch off the filter and merge drivers of the repository.

    Drivers defined by the repository's own config (local or per-worktree scope) are replaced:
    filters by nothing, merge drivers by git's text merge. Files it includes count whatever their
    condition (`includeIf "onbranch:..."` would otherwise bring a driver in only on an item branch).
    Those of the user's global or system config (`git lfs install` puts its filter there) stay.
    """
    settings: list[tuple[str, str]] = []
    for name in sorted(_repository_drivers(cwd, env)):
        if name.startswith("filter."):
            settings += [(f"{name}.{key}", "") for key in ("clean", "smudge", "process")]
            settings.append((f"{name}.required", "false"))
        else:
            settings += [(f"{name}.driver", SAFE_MERGE_DRIVER), (f"{name}.recursive", "text")]
    return _as_env(settings)


_DRIVER_OR_INCLUDE = r"^((filter|merge)\..+\.|include(if\..+)?\.path$)"
MAX_INCLUDES = 20


def _repository_drivers(cwd: Path, env: Mapping[str, str]) -> set[str]:
    """`filter.<x>` and `merge.<x>` sections defined by the repository's config or files it includes."""
    entries = [(cwd / origin, name, value) for scope, origin, name, value in _config_entries(cwd, env)
               if scope in REPOSITORY_SCOPES]
    names: set[str] = set()
    seen: set[Path] = set()
    while entries:
        origin, name, value = entries.pop()
        if not name.startswith("include"):
            names.add(name.rsplit(".", 1)[0])
            continue
        included = (origin.parent / Path(value).expanduser()).resolve()
        if included not in seen and len(seen) < MAX_INCLUDES and included.is_file():
            seen.add(included)
            entries += [(included, n, v) for _, _, n, v in _config_entries(cwd, env, included)]
    return names


def _config_entries(cwd: Path, env: Mapping[str, str], file: Path | None = None) -> list[tuple[str, str, str, str]]:
    """(scope, origin file, name, value) of the driver and include settings git sees (or `file` holds)."""
    where = ["--file", str(file), "--no-includes"] if file else ["--show-scope", "--includes"]
    done = subprocess.run(git_argv(["config", "--null", "--show-origin", *where, "--get-regexp", _DRIVER_OR_INCLUDE]),
                          cwd=cwd, env=dict(env), capture_output=True, check=False)
    fields = done.stdout.decode("utf-8", "replace").split("\0") if done.returncode == 0 else []
    width = 2 if file else 3
    entries = []
    for index in range(0, len(fields) - width + 1, width):
        scope = "local" if file else fields[index]
        origin, entry = fields[index + width - 2], fields[index + width - 1]
        name, _, value = entry.partition("\n")
        entries.append((scope, origin.removeprefix("file:"), name, value))
    return entries


def _as_env(settings: list[tuple[str, str]]) -> dict[str, str]:
    env = {"GIT_CONFIG_COUNT": str(len(settings))} if settings else {}
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def run_git(cwd: Path, args: Sequence[str], env: Mapping[str, str] | None = None,
            config: Sequence[str] = (), stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a hardened git in `cwd`, fed `stdin` (stdout and stderr captured as bytes); OSError if git
    cannot start."""
    child_env = git_env(env)
    if not args or args[0] not in CONTENT_FREE:
        child_env.update(driver_overrides(cwd, child_env))
    if stdin is None:
        return subprocess.run(git_argv(args, config), cwd=cwd, env=child_env, capture_output=True,
                              stdin=subprocess.DEVNULL, check=False)
    return subprocess.run(git_argv(args, config), cwd=cwd, env=child_env, capture_output=True,
                          input=stdin, check=False)
