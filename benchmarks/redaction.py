"""What `redact()` costs: it runs on every tool output, prompt and stored text.

    python benchmarks/redaction.py          # 1 MB of text, 20 secret env values; writes results/redaction.json
    python benchmarks/redaction.py --small  # CI: 256 KB, results not written

The text is source-like lines with the secret values, their disguises (reversed, base64, hex) and a
few key shapes scattered through it, so every replacement path runs. Each figure is the median of
several runs. Bound: 1 MB with 20 secret values in under TARGET_MS (measured 30 to 80 ms; the bound
leaves room for a loaded CI machine, and is still below what the code before cost); exit 1 when missed, or when
anything planted is left in the output.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from agentsprint import redaction

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 250.0
VALUES = 20


def environ(rng: random.Random) -> dict[str, str]:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    secrets = {f"SERVICE_{n}_TOKEN": "".join(rng.choice(alphabet) for _ in range(rng.randint(12, 48)))
               for n in range(VALUES)}
    return {**secrets, "PATH": "/usr/bin:/bin", "HOME": "/home/user", "LANG": "C.UTF-8"}


def planted(env: dict[str, str]) -> list[str]:
    values = [v for k, v in env.items() if redaction.is_secret_name(k)]
    return [*values, *(v[::-1] for v in values), *(base64.b64encode(v.encode()).decode() for v in values),
            *(v.encode().hex() for v in values), "sk-" + "proj" + "A1b2C3d4" * 4, "ghp_" + "Z9y8" * 9]


def text_of(size: int, secrets: list[str], rng: random.Random) -> str:
    lines, total = [], 0
    while total < size:
        line = f"    value_{rng.randint(0, 9999)} = compute(row, index={rng.randint(0, 99)})  # a comment\n"
        if rng.random() < 0.02:
            line = f"    leaked = '{rng.choice(secrets)}'\n"
        lines.append(line)
        total += len(line)
    return "".join(lines)


def measure(size: int, runs: int) -> dict[str, float]:
    rng = random.Random(7)
    env = environ(rng)
    secrets = planted(env)
    text = text_of(size, secrets, rng)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = redaction.redact(text, env)
        times.append((time.perf_counter() - started) * 1000)
    left = [s for s in secrets if s in out]
    clean = text_of(size, ["nothing secret here"], random.Random(8))
    clean_times = []
    for _ in range(runs):
        started = time.perf_counter()
        redaction.redact(clean, env)
        clean_times.append((time.perf_counter() - started) * 1000)
    return {"bytes": len(text.encode()), "secret_values": VALUES, "texts_looked_for": len(redaction.secret_texts(env)),
            "planted_left": len(left), "ms_median_with_secrets": round(statistics.median(times), 1),
            "ms_median_clean_text": round(statistics.median(clean_times), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    small = parser.parse_args(argv).small
    size = 256 * 1024 if small else 1024 * 1024
    figures = measure(size, 5 if small else 9)
    figures["target_ms_per_mb"] = TARGET_MS
    print(json.dumps(figures))
    if not small:
        figures.update(python=platform.python_version(), machine=platform.machine())
        out = ROOT / "benchmarks" / "results" / "redaction.json"
        out.write_text(json.dumps(figures, indent=2) + "\n")
    per_mb = figures["ms_median_with_secrets"] * (1024 * 1024) / figures["bytes"]
    return 1 if figures["planted_left"] or per_mb > TARGET_MS else 0


if __name__ == "__main__":
    sys.exit(main())
