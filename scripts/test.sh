#!/usr/bin/env bash
# Installs everything and runs the whole check: ruff, mypy (Linux and win32), the import contract,
# and the test suite. Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
echo "== ruff";          ruff check guard ui tests
echo "== mypy";          mypy
echo "== mypy win32";    mypy --platform win32
echo "== import contract"; lint-imports
echo "== pytest";        python -m pytest "$@"
