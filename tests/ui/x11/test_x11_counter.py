"""At the counter, with the real agent under Xvfb: a supervisor approves a blocked copy on the
teller's PC (one event with both identities); a one-time recovery code from the collector works
once; a supervisor and IT unlock the overlay; the first-run PIN comes before any lock on a PC
whose OS password cannot be checked; an X server idle before the agent started is warned before
it locks; SIGTERM ends a locked agent at once.

`TELLER_GUARD_SCREENSHOTS=DIR` saves the supervisor dialog and the overlay's credential choices
from the running agent (docs/screenshots/supervisor-approval.png, lock-overlay-choices.png).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import (
    IT_SECRET,
    LOCK_WINDOW,
    PIN,
    ROOT,
    AgentProcess,
    XServer,
    enroll,
    provision_pin,
    start_agent,
    unlock_with,
    wait_until,
    write_policy,
)

from guard.credentials import hash_secret
from tests.support.servers import CollectorProcess, run_collector

SUP_SECRET = "wang-0420-sup"
CARD_TEXT = "客户：张三 卡号 6222021234567890128 请核对"
SUPERVISOR_TITLE = "柜面隐私卫士：请授权人员授权"
PIN_TITLE = "柜面隐私卫士：设置解锁 PIN 码"
SHOTS = os.environ.get("TELLER_GUARD_SCREENSHOTS")

COUNTER_POLICY = """\
version = "x11-counter-1"
[agent]
it_credential_hash = "{it_hash}"
heartbeat_interval_s = 3600
[clipboard]
action = "block"
approval = "supervisor"
auto_clear_s = 0
[idle]
warn_after_s = {warn}
lock_after_s = {lock}
unlock = "{unlock}"
backoff_after = 3
backoff_base_s = 1
backoff_max_s = 2
[[supervisors]]
id = "sup01"
name = "王主管"
credential_hash = "{sup_hash}"
"""


def counter_policy(warn: float = 3000, lock: float = 3600, unlock: str = "pin",
                   central: bool = False) -> str:
    text = COUNTER_POLICY.format(it_hash=hash_secret(IT_SECRET),
                                 sup_hash=hash_secret(SUP_SECRET), warn=warn, lock=lock,
                                 unlock=unlock)
    if central:  # the collector's layer leaves the idle times to each test's machine layer
        text = "\n".join(line for line in text.splitlines()
                         if not line.startswith(("warn_after_s", "lock_after_s", "unlock ")))
    return text


@pytest.fixture(scope="module")
def counter_policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_policy(tmp_path_factory.mktemp("counter") / "policy.toml", counter_policy())


@pytest.fixture(scope="module")
def counter_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    folder = tmp_path_factory.mktemp("counter-collector")
    central = write_policy(folder / "central.toml", counter_policy(central=True))
    with run_collector(f"sqlite:///{folder / 'collector.db'}",
                       extra_args=["--policy", str(central)]) as c:
        yield c


@pytest.fixture
def teller(xs: XServer, counter_collector: CollectorProcess, counter_policy_file: Path,
           tmp_path: Path) -> Iterator[AgentProcess]:
    agent = start_agent(xs, counter_collector, tmp_path / "agent", counter_policy_file)
    yield agent
    assert agent.stop() == 0, agent.output()


def save_shot(xs: XServer, window_name: str, name: str) -> None:
    """Crop the named window of the running agent out of a screenshot of the X screen."""
    if not SHOTS:
        return
    wid = wait_until(lambda: xs.visible_windows(window_name), timeout=10, what=window_name)
    assert isinstance(wid, list)
    geo = dict(line.split("=", 1) for line in xs.xdotool(
        "getwindowgeometry", "--shell", wid[-1]).split())
    x, y, w, h = (int(geo[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
    out = Path(SHOTS) / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    m = 16
    if w >= 1900:  # the full-screen overlay: its unlock panel in the middle
        x, y, w, h = 680, 200, 560, 470
    xs.run("import", "-window", "root", "-crop",
           f"{w + 2 * m}x{h + 2 * m}+{max(0, x - m)}+{max(0, y - m)}", "+repage", str(out))
    print(f"wrote {out}")


def collector_events(collector: CollectorProcess, type_: str) -> list[dict[str, object]]:
    reply = httpx.get(f"{collector}/api/v1/events", params={"type": type_},
                      headers={"Authorization": f"Bearer {collector.admin_token}"}, timeout=10)
    reply.raise_for_status()
    events = reply.json()["events"]
    assert isinstance(events, list)
    return events


def test_a_supervisor_approves_a_blocked_copy(xs: XServer, teller: AgentProcess,
                                             counter_collector: CollectorProcess) -> None:
    xs.clipboard_set(CARD_TEXT.encode())
    windows = wait_until(lambda: xs.visible_windows(SUPERVISOR_TITLE), timeout=20,
                         what="the supervisor dialog")
    assert isinstance(windows, list)
    # The copy is blocked while the dialog waits: the card number is not on the clipboard.
    assert "6222021234567890128" not in xs.clipboard_get().decode()
    time.sleep(0.5)
    save_shot(xs, SUPERVISOR_TITLE, "supervisor-approval")
    xs.xdotool("windowfocus", "--sync", windows[0])
    xs.type("not-the-secret")  # a wrong credential: refused, recorded, the dialog stays
    xs.key("Return")
    failed = teller.wait_event("APPROVAL_FAILED")
    assert failed.detail["why"] == "wrong_credential" and failed.detail["supervisor"] == "sup01"
    assert xs.visible_windows(SUPERVISOR_TITLE)
    xs.type(SUP_SECRET)
    xs.key("Tab")
    xs.type("customer present")
    xs.key("Return")
    approved = teller.wait_event("APPROVAL_SUPERVISOR")
    assert approved.outcome == "allowed"
    assert approved.detail["supervisor"] == "sup01"
    assert approved.detail["approved_channel"] == "clipboard"
    assert not teller.events("CLIPBOARD_COPY")  # one event for the whole approval
    # The action proceeds: the teller's copy is back on the clipboard.
    wait_until(lambda: "6222021234567890128" in xs.clipboard_get().decode(), timeout=10,
               what="the approved copy back on the clipboard")
    # Both identities in the one stored event, at the collector.
    stored = wait_until(lambda: collector_events(counter_collector, "APPROVAL_SUPERVISOR"),
                        timeout=30, interval=0.5, what="the approval at the collector")
    assert isinstance(stored, list)
    event = stored[-1]
    assert isinstance(event, dict) and isinstance(event["detail"], dict)
    assert event["teller"] and event["teller"] != event["detail"]["supervisor"] == "sup01"
    assert event["justification"] == "customer present"
    assert SUP_SECRET not in teller.output()


def lock_overlay(xs: XServer, agent: AgentProcess) -> None:
    before = len(agent.events("IDLE_LOCK"))
    xs.key("ctrl+alt+l")
    agent.wait_event("IDLE_LOCK", after=before)
    wait_until(lambda: xs.visible_windows(LOCK_WINDOW), timeout=10, what="the overlay")
    time.sleep(0.3)


def issue_code(collector: CollectorProcess, agent: AgentProcess, channel: str) -> str:
    device = json.loads((agent.data_dir / "enrollment.json").read_text())["device_id"]
    env = {**os.environ, "TELLER_GUARD_ADMIN_TOKEN": collector.admin_token}
    out = subprocess.run([sys.executable, "-m", "guard.cli", "approval-code", "--collector",
                          collector, "--device", device, "--channel", channel, "--minutes", "10"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    code = out.stdout.strip()
    assert len(code) == 14 and code.count("-") == 2
    return code


def test_a_recovery_code_unlocks_once(xs: XServer, teller: AgentProcess,
                                      counter_collector: CollectorProcess) -> None:
    code = issue_code(counter_collector, teller, "unlock")
    lock_overlay(xs, teller)
    save_shot(xs, LOCK_WINDOW, "lock-overlay-choices")
    xs.key("alt+c")  # "One-time recovery code from IT"
    xs.type(code)
    xs.key("Return")
    unlocked = teller.wait_event("IDLE_UNLOCK_CODE")
    assert unlocked.outcome == "unlocked" and unlocked.detail["by"] == "code"
    wait_until(lambda: not xs.visible_windows(LOCK_WINDOW), timeout=10, what="overlay gone")

    lock_overlay(xs, teller)
    xs.key("alt+c")
    xs.type(code)  # the same code again: refused
    xs.key("Return")
    refused = teller.wait_event("IDLE_UNLOCK_FAILED")
    assert refused.detail["by"] == "code"
    assert xs.visible_windows(LOCK_WINDOW) and len(teller.events("IDLE_UNLOCK_CODE")) == 1
    xs.key("alt+m")
    unlock_with(xs, teller, PIN)
    assert code.replace("-", "") not in teller.output()
    # The agent's delivery reported the spend: the collector lists the code as spent, once.

    def spent() -> list[dict[str, object]]:
        r = httpx.get(f"{counter_collector}/api/v1/approval-codes", timeout=10,
                      params={"channel": "unlock", "status": "spent"},
                      headers={"Authorization": f"Bearer {counter_collector.admin_token}"})
        return list(r.json()["codes"]) if r.status_code == 200 else []

    listed = wait_until(spent, timeout=30, interval=0.5, what="the code spent at the collector")
    assert isinstance(listed, list) and len(listed) == 1 and listed[0]["uses"] == 1


def test_a_supervisor_and_it_unlock_the_overlay(xs: XServer, teller: AgentProcess) -> None:
    lock_overlay(xs, teller)
    xs.key("alt+s")
    xs.type(SUP_SECRET)
    xs.key("Return")
    by_supervisor = teller.wait_event("IDLE_UNLOCK_SUPERVISOR")
    assert by_supervisor.detail["supervisor"] == "sup01"
    wait_until(lambda: not xs.visible_windows(LOCK_WINDOW), timeout=10, what="overlay gone")
    lock_overlay(xs, teller)
    xs.key("alt+i")
    xs.type(IT_SECRET)
    xs.key("Return")
    assert teller.wait_event("IDLE_UNLOCK_IT").outcome == "unlocked"
    wait_until(lambda: not xs.visible_windows(LOCK_WINDOW), timeout=10, what="overlay gone")
    output = teller.output()
    assert SUP_SECRET not in output and IT_SECRET not in output


def test_sigterm_ends_a_locked_agent_at_once(xs: XServer, teller: AgentProcess) -> None:
    lock_overlay(xs, teller)
    assert teller.proc is not None
    start = time.monotonic()
    teller.proc.send_signal(signal.SIGTERM)
    rc = teller.proc.wait(15)
    took = time.monotonic() - start
    print(f"SIGTERM while locked: the agent exited with {rc} after {took:.3f} s")
    assert rc == 0
    assert took < 10.0, f"exited only after {took:.1f} s"
    assert teller.events("AGENT_STOPPED")


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/etc/shadow").read_text().startswith(
    ("root:*", "root:!")), reason="needs a root account whose OS password is locked")
def test_auto_unlock_without_a_checkable_os_password_asks_for_a_pin_first(
        xs: XServer, counter_collector: CollectorProcess, tmp_path: Path) -> None:
    """Root's password is locked here: "auto" cannot check it, so the PIN dialog comes first
    and no idle lock covers it while it is open, though the PC is idle past the lock time."""
    policy = write_policy(tmp_path / "auto.toml", counter_policy(warn=5, lock=10, unlock="auto"))
    agent = start_agent(xs, counter_collector, tmp_path / "auto", policy, pin=None)
    try:
        windows = wait_until(lambda: xs.visible_windows(PIN_TITLE), timeout=15,
                             what="the PIN setup dialog")
        assert isinstance(windows, list)
        time.sleep(12)  # idle past lock_after_s, with the dialog open
        assert not agent.events("IDLE_LOCK") and not agent.events("IDLE_WARN")
        assert xs.visible_windows(PIN_TITLE)
        xs.xdotool("windowfocus", "--sync", windows[0])
        xs.type(PIN)
        xs.key("Tab")
        xs.type(PIN)
        xs.key("Return")
        agent.wait_event("PIN_SET")
        # Now the idle lock runs: warned first, then locked, and the PIN unlocks.
        warn = agent.wait_event("IDLE_WARN", timeout=30)
        lock = agent.wait_event("IDLE_LOCK", timeout=30)
        assert lock.time > warn.time and lock.detail["reason"] == "idle"
        wait_until(lambda: xs.visible_windows(LOCK_WINDOW), timeout=10, what="the overlay")
        unlock_with(xs, agent, PIN)
    finally:
        assert agent.stop() == 0, agent.output()


@pytest.mark.untouched_x
def test_an_x_server_idle_before_the_start_is_warned_before_it_locks(
        untouched_xserver: XServer, counter_collector: CollectorProcess, tmp_path: Path) -> None:
    """An X server nobody touched for 96 s, longer than the lock time: the idle clock starts at
    the agent's start, so it warns first and locks only after the countdown."""
    fresh = untouched_xserver
    policy = write_policy(tmp_path / "idle.toml", counter_policy(warn=5, lock=10))
    data = tmp_path / "idle-agent"
    enroll(data, counter_collector.url, counter_collector.enroll_token)
    provision_pin(data, PIN)
    agent = AgentProcess(fresh, data, policy, endpoint=counter_collector.url)
    agent.start()
    try:
        warn = agent.wait_event("IDLE_WARN", timeout=30)
        assert float(str(warn.detail["idle_s"])) < 10  # counted from the start, not the X's 96 s
        lock = agent.wait_event("IDLE_LOCK", timeout=30)
        assert lock.time > warn.time
        assert [e.type for e in agent.events() if e.type.startswith("IDLE_")][:2] == [
            "IDLE_WARN", "IDLE_LOCK"]
        print(f"idle lock {lock.time - warn.time:.1f} s after its warning")
        wait_until(lambda: fresh.visible_windows(LOCK_WINDOW), timeout=10, what="overlay")
        unlock_with(fresh, agent, PIN)
    finally:
        assert agent.stop() == 0, agent.output()
