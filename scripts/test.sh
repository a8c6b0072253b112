#!/usr/bin/env bash
# Installs everything and runs the whole check: ruff, mypy (Linux and win32), the import contract,
# and the test suite. Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
. .venv/bin/activate
echo "== ruff";          ruff check guard ui tests
echo "== mypy";          mypy
echo "== mypy win32";    mypy --platform win32
echo "== import contract"; lint-imports
# Most tests wait on real processes (X servers, collectors, the machine service, cupsd), so four
# workers share two cores well; every test makes its own ports, displays, folders and logins.
# TELLER_GUARD_TEST_WORKERS=0 runs in one process.
workers=${TELLER_GUARD_TEST_WORKERS:-4}
echo "== pytest";        python -m pytest -n "$workers" "$@"
if [ "$#" -eq 0 ]; then
  # The core again, on an interpreter where PySide6 and pynput cannot be imported: guard/ must
  # run (and degrade with a reason) without the desktop libraries. The collector is left out:
  # an import contract already keeps every desktop library away from it.
  echo "== pytest: core without PySide6 and pynput"
  PYTHONPATH=tests/support/no_gui python -m pytest -n "$workers" -q -p no:cacheprovider -p no:pytest-qt \
    tests/guard --ignore=tests/guard/collector -m "not x11 and not postgres and not slow"
fi
