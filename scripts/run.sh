#!/usr/bin/env bash
# Installs the guard and runs it on a bundled sample teller export.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/teller-guard scan resources/samples "$@" --recursive
