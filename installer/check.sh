#!/usr/bin/env bash
# The slow installer checks the project's CI leaves out: the MSI installed, upgraded, downgraded
# and uninstalled under Wine, and the frozen build's selftests. Usage: bash installer/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export PYTHONPATH=$PWD TELLER_GUARD_INSTALLER_TESTS=full
python -m pytest -q -p no:cacheprovider tests/installer "$@"
