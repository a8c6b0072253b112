#!/usr/bin/env bash
# Installs what running Teller Guard needs (scripts/setup.sh run: no test tools, no PostgreSQL)
# and runs the desktop agent (tray, clipboard guard, idle lock). With no central endpoint
# configured (TELLER_GUARD_ENDPOINT or the policy's agent.endpoint) the agent starts an embedded
# local collector, so events can be seen end to end on its dashboard, at the same address every
# start. With no desktop (no DISPLAY), a private virtual screen with a tray is started for a demo.
# Its first lines say how to try it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The installer's chatter (apt, pip warnings) goes to a log, so the how-to lines come first.
echo "run: installing what the agent needs (bash scripts/setup.sh run; log in .setup.log) ..."
if ! bash scripts/setup.sh run >.setup.log 2>&1; then
  tail -n 30 .setup.log >&2
  echo "run: the installation failed; the whole log is in $PWD/.setup.log" >&2
  exit 1
fi

export TELLER_GUARD_DATA_DIR=${TELLER_GUARD_DATA_DIR:-$PWD/.demo-data}
mkdir -p "$TELLER_GUARD_DATA_DIR"
pids=()
agent=""
cleanup() {
  if [ -n "$agent" ]; then
    kill "$agent" 2>/dev/null || true
    .venv/bin/python -m guard.commands.agent_dir forget "$agent" || true
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

virtual=""
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  for n in $(seq 90 99); do [ -e "/tmp/.X11-unix/X$n" ] || break; done
  Xvfb ":$n" -screen 0 1920x1080x24 -nolisten tcp >/dev/null 2>&1 & pids+=($!)
  export DISPLAY=":$n"
  for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.1; done
  trayer --edge bottom --align right --widthtype request --height 32 >/dev/null 2>&1 & pids+=($!)
  virtual=" (a virtual screen started for this demo: there is no desktop here)"
fi
export DBUS_SESSION_BUS_ADDRESS=${DBUS_SESSION_BUS_ADDRESS:-disabled:}

local_dir="$TELLER_GUARD_DATA_DIR/collector"
dashboard=$(.venv/bin/python -c 'import sys; from guard.collector.embedded import address
print(address(sys.argv[1]))' "$local_dir")
cat <<INFO
run: Teller Guard agent on DISPLAY=$DISPLAY$virtual, data in $TELLER_GUARD_DATA_DIR
run: copy test data:  DISPLAY=$DISPLAY xclip -selection clipboard < resources/samples/customers-export.csv
run: lock:            Ctrl+Alt+L, the tray's 立即锁屏 (Lock now), or no input for 5 min (a countdown at 4),
run:                  e.g. DISPLAY=$DISPLAY xdotool key ctrl+alt+l
run: unlock:          the PIN chosen in the first-run dialog (or the OS password where it can be checked)
INFO
if [ -n "${TELLER_GUARD_ENDPOINT:-}" ]; then
  echo "run: dashboard:       the collector's at $TELLER_GUARD_ENDPOINT (TELLER_GUARD_ENDPOINT)"
else
  cat <<INFO
run: dashboard:       $dashboard/ (the local collector; the same address every start)
run: sign in:         paste the admin_token from $local_dir/embedded-collector.json
run:                  into the form (e.g. python3 -c 'import json; print(json.load(open("$local_dir/embedded-collector.json"))["admin_token"])')
INFO
fi
cat <<INFO
run: events:          .venv/bin/teller-guard events status / journal verify (in any terminal while this agent runs)
run: language:        TELLER_GUARD_LANG=en bash scripts/run.sh for English (default: the OS language)
INFO

.venv/bin/teller-guard-agent "$@" & agent=$!
.venv/bin/python -m guard.commands.agent_dir record "$TELLER_GUARD_DATA_DIR" "$agent" >/dev/null
status=0
wait "$agent" || status=$?
.venv/bin/python -m guard.commands.agent_dir forget "$agent" || true
agent=""
exit "$status"
