#!/usr/bin/env bash
# The deployment CI job (issue 13): builds and checks everything this Linux machine can build,
# from a clean clone, as root (or a user with sudo). Each part prints how long it took; a summary
# with the machine's load comes at the end (also when a part fails).
#
#   bash installer/ci.sh
#
# Parts:
#   setup          Debian packages (wixl, msitools, wine, dpkg, Xvfb, a tray host, the Qt xcb
#                  libraries), the venv (scripts/setup.sh when .venv is missing), PyInstaller
#   frozen build   PyInstaller one-folder build into dist/teller-guard (reuses the analysis
#                  cache in build/pyinstaller between runs); prints its size
#   frozen checks  `teller-guard selftest` (no display) and `teller-guard-agent --selftest` on an
#                  Xvfb with a tray host started here; then tests/installer/test_frozen.py: OCR on
#                  an image through the frozen worker, resources from the bundle, the size limit
#   MSI tables     dist/TellerGuard-<v>.msi (wixl, test payload) and the table tests
#   MSI under Wine install, upgrade, downgrade, uninstall in fresh 64-bit prefixes
#   .deb           dist/teller-guard_<v>_amd64.deb of the frozen build, its contents and an
#                  install into a fresh root (dpkg --root) whose selftest passes; the package
#                  tests (maintainer scripts, settings, upgrade, purge) and the ADMX tests
#
# Environment: TELLER_GUARD_VENV (default .venv) a venv to use instead of making one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${TELLER_GUARD_VENV:-$ROOT/.venv}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)
DIST=$ROOT/dist
FROZEN=$DIST/teller-guard
MSI=$DIST/TellerGuard-${version}.msi
DEB=$DIST/teller-guard_${version}_amd64.deb
work=$(mktemp -d)
started=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
summary=()
pids=()

current="" current_t0=0
finish() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  [ -z "$current" ] || summary+=("$(printf '%-15s %5d s  FAILED (exit %d)' "$current" $((SECONDS - current_t0)) "$rc")")
  echo
  echo "ci: summary (load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores)"
  for line in "${summary[@]}"; do echo "ci:   $line"; done
  echo "ci:   total $((SECONDS - started)) s: $([ "$rc" -eq 0 ] && echo OK || echo "FAILED (exit $rc)")"
}
trap finish EXIT

part() {  # part LABEL FUNCTION: run one part (set -e ends the job at its first failure; the
          # summary names the part), print and record its duration
  current=$1 current_t0=$SECONDS
  echo
  echo "ci: == $current"
  "$2"
  summary+=("$(printf '%-15s %5d s  ok' "$current" $((SECONDS - current_t0)))")
  echo "ci: $current took $((SECONDS - current_t0)) s"
  current=""
}

# This tree's packages first, its resources/ as teller_guard_resources too (setup.py's mapping):
# a TELLER_GUARD_VENV's editable install may map that package to another checkout.
mkdir -p "$work/pythonpath"
ln -s "$ROOT/resources" "$work/pythonpath/teller_guard_resources"
export PYTHONPATH=$ROOT:$work/pythonpath

pytest_() {  # the venv's pytest on this tree
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
}

# -- setup ------------------------------------------------------------------------------------
APT_PACKAGES=(wixl msitools wine wine64 dpkg xvfb trayer x11-utils icu-devtools gcc
              libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libegl1 libgl1
              libxcb-xinerama0 libxcb-randr0 libxcb-shape0 libxcb-render-util0 libxcb-image0)
setup() {
  local missing=() p SUDO=""
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ((${#missing[@]})); then
    echo "ci: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    [ "$VENV" = "$ROOT/.venv" ] || { echo "ci: $VENV is no venv" >&2; return 2; }
    bash scripts/setup.sh test
  fi
  # PyInstaller alone: `pip install .[build]` would replace the tree's editable install
  "$VENV/bin/python" -m pip show -q pyinstaller >/dev/null 2>&1 ||
    "$VENV/bin/python" -m pip install -q "pyinstaller>=6.6"
  "$VENV/bin/python" -m PyInstaller --version
}

# -- the frozen build -------------------------------------------------------------------------
frozen_build() {
  rm -rf "$FROZEN"
  # nice: a build takes both cores for minutes; the cache in build/pyinstaller makes a re-run
  # after a code change take a fraction of that
  nice -n 10 "$VENV/bin/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath "$ROOT/build/pyinstaller" installer/teller-guard.spec
  bash installer/bundle-size.sh "$FROZEN"
}

start_x() {  # an Xvfb on a free display, and a tray host on it (bare Xvfb has no tray)
  local n
  Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp 3>"$work/display" \
    >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/display" ] && break; sleep 0.1; done
  n=$(head -n1 "$work/display")
  [ -n "$n" ] || { echo "ci: Xvfb did not start" >&2; return 1; }
  export DISPLAY=":$n"
  DBUS_SESSION_BUS_ADDRESS=disabled: trayer --edge bottom --SetDockType true >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do xwininfo -root -tree 2>/dev/null | grep -qi trayer && break; sleep 0.1; done
  echo "ci: Xvfb on $DISPLAY with a tray host"
}

frozen_checks() {
  local data
  data=$(mktemp -d -p "$work")
  env -u DISPLAY -u PYTHONPATH DBUS_SESSION_BUS_ADDRESS=disabled: TELLER_GUARD_DATA_DIR="$data" \
    "$FROZEN/teller-guard" selftest
  start_x
  env -u PYTHONPATH DBUS_SESSION_BUS_ADDRESS=disabled: TELLER_GUARD_DATA_DIR="$data" \
    "$FROZEN/teller-guard-agent" --selftest
  TELLER_GUARD_FROZEN=$FROZEN pytest_ -s tests/installer/test_frozen.py
}

# -- MSI --------------------------------------------------------------------------------------
msi_tables() {
  bash installer/windows/build-msi.sh "$version" --test-payload "$MSI"
  for t in Property Registry LockPermissions ServiceInstall Upgrade; do
    echo "ci: $t: $(msiinfo export "$MSI" "$t" | tail -n +4 | wc -l) rows"
  done
  # without TELLER_GUARD_INSTALLER_TESTS=full the Wine tests skip: the table checks only
  TELLER_GUARD_INSTALLER_TESTS="" pytest_ tests/installer/test_msi.py
}

msi_wine() {
  # each test has its own fresh Wine prefix: three at once (most of it is wineboot waiting)
  TELLER_GUARD_INSTALLER_TESTS=full pytest_ -n 3 tests/installer/test_msi.py \
    -k "test_install_ or uninstall_under_wine"
}

# -- .deb -------------------------------------------------------------------------------------
deb() {
  # the package is installed and checked here, not shipped: gzip instead of xz saves minutes
  TELLER_GUARD_DEB_COMPRESSION=gzip bash installer/debian/build-deb.sh "$version" "$FROZEN" "$DEB"
  TELLER_GUARD_FROZEN=$FROZEN TELLER_GUARD_FROZEN_DEB=$DEB pytest_ tests/installer/test_frozen.py \
    -k deb
  pytest_ tests/installer/test_deb.py tests/installer/test_admx.py
}

part setup setup
part "frozen build" frozen_build
part "frozen checks" frozen_checks
part "MSI tables" msi_tables
part "MSI under Wine" msi_wine
part ".deb" deb
ls -l "$DIST"
