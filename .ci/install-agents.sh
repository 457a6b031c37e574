#!/usr/bin/env bash
# Install the real agent CLIs the external-agent tests run (pinned in .ci/agents/), and link each
# executable into .ci/agents/bin. Prints that folder. Aider gets its own venv: its pinned dependencies
# must not change agentsprint's.
set -euo pipefail
cd "$(dirname "$0")/agents"
npm install --no-audit --no-fund --loglevel=error >&2
if [ ! -x aider-venv/bin/aider ]; then
  python3 -m venv aider-venv
  aider-venv/bin/pip install -q -r requirements-aider.txt >&2
fi
mkdir -p bin
for name in claude codex gemini opencode; do
  ln -sf "$PWD/node_modules/.bin/$name" "bin/$name"
done
ln -sf "$PWD/aider-venv/bin/aider" bin/aider
for name in claude codex gemini opencode aider; do
  "bin/$name" --version >/dev/null 2>&1 || { echo "agent CLI $name does not run: bin/$name --version failed" >&2; exit 1; }
done
echo "$PWD/bin"
