#!/usr/bin/env bash
# Builds everything this Linux machine can build into dist/:
#   dist/teller-guard/                  the PyInstaller one-folder build (CLI, service, agent)
#   dist/teller-guard_<v>_amd64.deb     the Debian package of that folder
#   dist/TellerGuard-<v>.msi            the MSI from the same WiX source as the Windows build, with
#                                       the TEST PAYLOAD (a Linux build cannot freeze Windows exes)
# Installs its own tools (msitools, wixl, wine, PyInstaller) the way scripts/setup.sh does, then
# runs the frozen selftests (the agent's under Xvfb). Prints how long each part took.
# Usage: bash installer/build.sh [--skip-frozen]
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)

APT_PACKAGES=(wixl msitools wine wine64 dpkg xvfb icu-devtools gcc)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "build: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || bash scripts/setup.sh
# PyInstaller alone: `pip install ".[build]"` would replace the tree's editable install
.venv/bin/python -m pip show -q pyinstaller >/dev/null 2>&1 || .venv/bin/python -m pip install -q "pyinstaller>=6.6"

timed() {  # timed LABEL COMMAND...
  local t0=$SECONDS
  "${@:2}"
  echo "build: $1 took $((SECONDS - t0)) s"
}

mkdir -p dist
if [ "${1:-}" != "--skip-frozen" ]; then
  # nice: minutes of both cores; no --clean, so a re-run reuses the analysis in build/pyinstaller
  timed "frozen build" nice -n 10 .venv/bin/pyinstaller --noconfirm --log-level WARN \
    --distpath dist --workpath build/pyinstaller installer/teller-guard.spec
  bash installer/bundle-size.sh dist/teller-guard
  export TELLER_GUARD_DATA_DIR; TELLER_GUARD_DATA_DIR=$(mktemp -d)
  timed "frozen selftest" env -u DISPLAY DBUS_SESSION_BUS_ADDRESS=disabled: dist/teller-guard/teller-guard selftest
  timed "frozen agent selftest" xvfb-run -a env DBUS_SESSION_BUS_ADDRESS=disabled: \
    dist/teller-guard/teller-guard-agent --selftest
  timed ".deb" bash installer/debian/build-deb.sh "$version" dist/teller-guard "dist/teller-guard_${version}_amd64.deb"
else
  timed ".deb (test payload)" bash installer/debian/build-deb.sh "$version" --test-payload "dist/teller-guard_${version}_amd64.deb"
fi
timed "MSI (test payload)" bash installer/windows/build-msi.sh "$version" --test-payload "dist/TellerGuard-${version}.msi"
ls -l dist
