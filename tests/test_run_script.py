"""`bash scripts/run.sh` in a clean clone: it installs only what running needs, starts with how to
try the agent, keeps the dashboard where it said, and the commands read the agent's data.

The display is real: an Xvfb started by the test (DISPLAY set, so run.sh starts no virtual screen
of its own), and the real agent runs on it. The clone is of this tree's committed HEAD. Its pip
installs come from the machine's pip cache; this takes minutes, hence `slow`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.xserver import wait_until, x_env, xvfb

ROOT = Path(__file__).resolve().parents[1]
TEST_TOOLS = ("pytest", "ruff", "mypy", "schemathesis", "psycopg")


def _lines(proc: subprocess.Popen[str], out: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line.rstrip("\n"))


@pytest.mark.slow
@pytest.mark.x11
@pytest.mark.timeout(1200)
def test_run_script_in_a_clean_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    state = tmp_path / "state"
    with xvfb() as display:
        env = x_env(display)
        for name in ("TELLER_GUARD_DATA_DIR", "TELLER_GUARD_ENDPOINT", "TELLER_GUARD_POLICY",
                     "VIRTUAL_ENV", "PYTHONPATH"):
            env.pop(name, None)
        env["XDG_STATE_HOME"] = str(state)  # the per-user record of the running agent
        env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
        proc = subprocess.Popen(["bash", "scripts/run.sh", "--no-hotkey"], cwd=clone, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        out: list[str] = []
        reader = threading.Thread(target=_lines, args=(proc, out), daemon=True)
        reader.start()
        try:
            assert wait_until(lambda: any(s.startswith("run: language:") for s in out)
                              or proc.poll() is not None, timeout=1000, interval=0.5), out
            assert proc.poll() is None, "\n".join(out)
            first = next(i for i, s in enumerate(out) if s.startswith("run: Teller Guard agent"))
            # the how-to block comes right after the install line, in one piece
            assert first == 1 and out[0].startswith("run: installing"), out
            end = next(i for i, s in enumerate(out) if s.startswith("run: language:"))
            run_lines = out[first:end + 1]
            assert all(s.startswith("run: ") for s in run_lines), run_lines
            text = "\n".join(run_lines)
            assert f"DISPLAY={display} xclip -selection clipboard < " \
                   "resources/samples/customers-export.csv" in text
            assert "Ctrl+Alt+L" in text and f"DISPLAY={display} xdotool key ctrl+alt+l" in text
            assert "unlock:" in text and "PIN" in text
            dash = next(s for s in run_lines if s.startswith("run: dashboard:"))
            url = dash.split()[2].rstrip("/")
            assert url.startswith("http://127.0.0.1:")
            tokens = clone / ".demo-data" / "collector" / "embedded-collector.json"
            assert str(tokens) in text  # where the admin token for the sign-in form is
            assert "TELLER_GUARD_LANG" in text

            # the agent's local collector serves where run.sh said it would
            def serving() -> bool:
                try:
                    return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            assert wait_until(serving, timeout=120, interval=0.5), "\n".join(out)
            admin = json.loads(tokens.read_text())["admin_token"]
            with httpx.Client(base_url=url) as c:
                r = c.post("/login", data={"token": admin})
                assert r.status_code == 303, r.text
                assert "tg_admin=" in r.headers.get("set-cookie", "")

            # a command typed in another terminal reads the agent's data directory
            cmd_env = {k: v for k, v in env.items() if k != "TELLER_GUARD_DATA_DIR"}
            journal = clone / ".demo-data" / "journal.db"
            assert wait_until(journal.exists, timeout=60, interval=0.5)
            st = subprocess.run([str(clone / ".venv/bin/teller-guard"), "events", "status",
                                 "--json"], cwd=tmp_path, env=cmd_env, capture_output=True,
                                text=True, timeout=60)
            assert st.returncode == 0, st.stderr
            assert json.loads(st.stdout)["path"] == str(journal)
            vf = subprocess.run([str(clone / ".venv/bin/teller-guard"), "journal", "verify"],
                                cwd=tmp_path, env=cmd_env, capture_output=True, text=True,
                                timeout=60)
            assert vf.returncode == 0, vf.stdout + vf.stderr
            assert str(journal) in vf.stdout and "running agent" in vf.stdout
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    # the record goes with the agent: a later command reads the machine's directory again
    assert not (state / "TellerGuard" / "running-agent.json").exists()

    # only what running needs went into the clone's venv
    listed = subprocess.run([str(clone / ".venv/bin/python"), "-m", "pip", "list",
                             "--format=json"], capture_output=True, text=True, check=True,
                            timeout=120)
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert not names & set(TEST_TOOLS), names & set(TEST_TOOLS)
    assert {"pyside6-essentials", "teller-guard", "rapidocr-onnxruntime"} <= names
