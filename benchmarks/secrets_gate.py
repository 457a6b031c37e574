"""What the secrets gate costs on a big change, now that it reads every changed file in full.

    python benchmarks/secrets_gate.py          # 2,000 changed files of ~2.4 KB; writes results/secrets_gate.json
    python benchmarks/secrets_gate.py --small  # CI: 200 files, results not written

A repository of N source files; the item rewrites every one of them (one line added per file, so a
text diff would show N small hunks) and adds one file holding a key behind a NUL byte. The gate runs
as the runner runs it (`dod.run_item_gates`, the item's committed blobs read with `git cat-file`).
Target: under TARGET_SECONDS for 2,000 files; exit 1 when missed or when the planted key is missed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentsprint import dod
from agentsprint.config import Settings
from agentsprint.domain import Item, parse_gate
from agentsprint.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0
FILE_TEXT = "".join(f"line {n}: some source text of a typical length for a file\n" for n in range(40))
KEY = "sk-" + "live" + "Hq7Jx2Wv9Kp4Lm3Nz8Rb5Tc0"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def measure(files: int) -> dict[str, float | int | bool]:
    with tempfile.TemporaryDirectory(prefix="agentsprint-bench-") as tmp:
        repo = Path(tmp) / "repo"
        (repo / "src").mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        for n in range(files):
            (repo / "src" / f"m{n}.py").write_text(FILE_TEXT)
        git(repo, "add", ".")
        git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "base")
        ws = Workspace(repo, repo / ".agentsprint" / "worktrees", "main")
        path = ws.create_worktree("AS-1")
        for n in range(files):
            (path / "src" / f"m{n}.py").write_text(FILE_TEXT + f"value_{n} = {n}\n")
        (path / "src" / "keys.bin").write_bytes(f"\x00\nKEY = '{KEY}'\n".encode())
        ws.commit_all("AS-1", "round 1")
        item = Item(id="AS-1", title="t", dod=[parse_gate("secrets")])
        started = time.perf_counter()
        results = dod.run_item_gates(item, ws, ws.changed_files("AS-1"), ws.diff("AS-1"), Settings())
        gate = next(r for r in results if r.kind == dod.SECRETS)
        seconds = time.perf_counter() - started
        return {"changed_files": files + 1, "seconds": round(seconds, 2), "gate_seconds": gate.seconds,
                "key_found": any(d.startswith("src/keys.bin:2:") for d in gate.details)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    small = parser.parse_args(argv).small
    figures = measure(200 if small else 2000)
    print(json.dumps(figures))
    if not small:
        figures.update(python=platform.python_version(), target_seconds=TARGET_SECONDS)
        (ROOT / "benchmarks" / "results" / "secrets_gate.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["key_found"] and float(figures["seconds"]) < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
