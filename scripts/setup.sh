#!/usr/bin/env bash
# Installs what Teller Guard needs on a Debian 12 machine: system packages (when run as root or
# with sudo) and a virtual environment in .venv.
#   bash scripts/setup.sh run    what running the agent needs (scripts/run.sh)
#   bash scripts/setup.sh test   everything the test suite needs (scripts/test.sh; the default)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-test}
case "$MODE" in
  run|test) ;;
  *) echo "setup: usage: bash scripts/setup.sh [run|test]" >&2; exit 2 ;;
esac

# What the agent needs to run: Python, a C toolchain (pynput's evdev builds from source), the Qt
# xcb libraries (without them Qt aborts with a misleading libxcb-cursor0 message) and CJK fonts.
RUN_PACKAGES=(
  python3-venv python3-dev build-essential linux-libc-dev
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libegl1 libgl1
  libxcb-xinerama0 libxcb-randr0 libxcb-shape0 libxcb-render-util0 libxcb-image0
  fonts-noto-cjk
  # pycups (the print guard) builds against libcups
  libcups2-dev
)
# The headless demo (no DISPLAY): a virtual screen, a tray, and the tools to drive them.
HEADLESS_PACKAGES=(xvfb trayer xclip xdotool)
# The tests: X tools, a keyring, image tools and the collector's real peers (PostgreSQL, syslog).
TEST_PACKAGES=(
  xvfb xclip xdotool trayer x11-utils dbus-x11 gnome-keyring imagemagick chromium
  # the installer tests: building the MSI and reading its tables
  wixl msitools
  postgresql rsyslog rsyslog-gnutls
  # the print guard's real spooler (a private cupsd in the tests; pycups builds against
  # libcups2-dev) and the USB guard's real volumes (ext4 loop images, FAT through FUSE)
  cups cups-client cups-bsd printer-driver-cups-pdf libcups2-dev poppler-utils ghostscript
  fusefat fuse3 dosfstools e2fsprogs passwd
)

APT_PACKAGES=("${RUN_PACKAGES[@]}")
if [ "$MODE" = test ]; then
  APT_PACKAGES+=("${TEST_PACKAGES[@]}")
elif [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  APT_PACKAGES+=("${HEADLESS_PACKAGES[@]}")
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$MODE" = test ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e ".[agent]"
fi
# The OCR engine carries its models in its wheel; it is installed without its dependencies because
# it names the non-headless OpenCV (pyproject.toml lists the ones it really needs, with the
# headless OpenCV). Exactly one OpenCV may be installed.
.venv/bin/python -m pip install -q --no-deps "rapidocr_onnxruntime==1.4.4"
if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall -q -y opencv-python
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "opencv-python-headless>=4.8,<5.1"  # as pyproject.toml bounds it
fi
# The compiled scanning core (core/, Rust through PyO3): guard.scan uses it when it imports and
# falls back to the Python engine when it does not, so a machine without cargo still works.
if command -v cargo >/dev/null 2>&1; then
  echo "setup: building the compiled scanning core (core/) with cargo $(cargo --version | cut -d' ' -f2)"
  started=$(date +%s)
  [ -x .venv/bin/maturin ] || .venv/bin/python -m pip install -q "maturin>=1.5"
  (cd core && VIRTUAL_ENV="$PWD/../.venv" ../.venv/bin/maturin develop --release -q)
  echo "setup: compiled core built in $(( $(date +%s) - started )) s"
else
  echo "setup: cargo not found: the scanner runs on its Python engine (install Rust from"
  echo "       https://rustup.rs and re-run this script to build the compiled core in core/)"
fi
