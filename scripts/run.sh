#!/usr/bin/env bash
# Installs Teller Guard and runs the desktop agent (tray, clipboard guard, idle lock).
# With no central endpoint configured (TELLER_GUARD_ENDPOINT or the policy's agent.endpoint) the
# agent starts an embedded local collector, so events can be seen end to end on its dashboard.
# With no desktop (no DISPLAY), a private virtual screen with a tray is started for a demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export TELLER_GUARD_DATA_DIR=${TELLER_GUARD_DATA_DIR:-$PWD/.demo-data}
mkdir -p "$TELLER_GUARD_DATA_DIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  for n in $(seq 90 99); do [ -e "/tmp/.X11-unix/X$n" ] || break; done
  Xvfb ":$n" -screen 0 1920x1080x24 -nolisten tcp >/dev/null 2>&1 & pids+=($!)
  export DISPLAY=":$n"
  for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.1; done
  trayer --edge bottom --align right --widthtype request --height 32 >/dev/null 2>&1 & pids+=($!)
  echo "run: no desktop here; started a virtual screen on DISPLAY=$DISPLAY (copy with"
  echo "     'DISPLAY=$DISPLAY xclip -selection clipboard', lock with 'xdotool key ctrl+alt+l')"
fi
export DBUS_SESSION_BUS_ADDRESS=${DBUS_SESSION_BUS_ADDRESS:-disabled:}
echo "run: data in $TELLER_GUARD_DATA_DIR; the agent's log says where its events go"
.venv/bin/teller-guard-agent "$@"
