"""Benchmark of the agent's memory around screen captures: idle, and with the OCR worker gone.

    .venv/bin/python tests/bench/bench_agent_capture.py [--mode both] [--pre-ocr cc97743]

Starts Xvfb + trayer and the real agent (`python -m ui.app`) with a capture policy (PrintScreen
read and notified, a capture tool's image on the clipboard blacked out), in single-process mode
("embedded": its own local collector) and shipping to a separate collector ("endpoint"). For each:
the agent's RSS when idle; then a teller form with customer data is put on screen (ImageMagick's
`display`), PrintScreen is pressed with xdotool, the SCREEN_HOTKEY event awaited, the OCR worker
(the agent's child running `guard.scan.ocr_worker`) watched until it exits by itself (idle exit,
shortened to a few seconds with TELLER_GUARD_OCR_IDLE_S) and the agent's RSS read again; the same
for a PNG copied to the clipboard (`xclip -t image/png`). The worker's peak RSS is its VmHWM,
read while it runs. Also listed: which image libraries are mapped into the agent after the
captures (numpy, Pillow, OpenCV, onnxruntime, mss; /proc/<pid>/maps), which should be none.

The same run starts the agent as it was before image reading existed (commit cc97743 by
default, extracted with `git archive` to a temporary directory and run with this venv) in the same
two modes with the packaged policy, and prints its idle RSS: the figure the agent with the worker
stopped is held to (issue 10).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "ui" / "x11"))
sys.path.insert(0, str(ROOT))

from harness import (  # noqa: E402
    AgentProcess,
    XServer,
    enroll,
    policy_text,
    provision_pin,
    wait_until,
    write_policy,
    xserver,
)

PRE_OCR = "cc97743"
IDLE_EXIT_S = 5.0
SETTLE_S = 8.0
HEAVY_LIBS = {"numpy": "numpy", "PIL": "/PIL/", "cv2": "/cv2/", "onnxruntime": "onnxruntime",
              "mss": "/mss/"}

CAPTURE_POLICY = """
[screen]
action = "notify"
clean = "none"
default_folders = false
folders = []

[[rules]]
channel = "clipboard"
kind = "copy_image"
action = "redact"
"""


def status_mb(pid: int, field: str) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def smaps(pid: int) -> dict[str, float]:
    """Resident MB per mapping name ([heap], [anon], a library's path)."""
    out: dict[str, float] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:
            name = head[5] if len(head) > 5 else "[anon]"
        elif line.startswith("Rss:"):
            out[name] = out.get(name, 0.0) + int(head[1]) / 1024
    return out


def grown(before: dict[str, float], after: dict[str, float]) -> str:
    rows = sorted(((after.get(k, 0) - before.get(k, 0), k) for k in set(before) | set(after)),
                  reverse=True)
    return ", ".join(f"{Path(k).name or k} {d:+.1f}" for d, k in rows if abs(d) >= 0.5)


def warned_text_copy(agent: AgentProcess, xs: XServer) -> float:
    """A teller's text with a resident ID copied (a warning toast, as any copy can bring): the
    floor the captures are compared to, for the toast's own memory is not the capture's."""
    assert agent.proc is not None
    before = len(agent.events("CLIPBOARD_COPY"))
    xs.clipboard_set("客户 王五 身份证 11010519491231002X 卡号 6222021234567890128".encode())
    agent.wait_event("CLIPBOARD_COPY", after=before, timeout=60)
    time.sleep(SETTLE_S)
    xs.reap_owners()
    return status_mb(agent.proc.pid, "VmRSS")


def mapped_libs(pid: int) -> list[str]:
    """Which of the heavy image libraries have a shared object mapped into `pid`."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    sos = {line.split()[-1] for line in maps.splitlines() if ".so" in line}
    return sorted(name for name, mark in HEAVY_LIBS.items() if any(mark in so for so in sos))


def ocr_workers(parent: int) -> list[int]:
    """The pids of `parent`'s children running the OCR worker."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"guard.scan.ocr_worker" in cmd:
            out.append(int(entry.name))
    return out


class RootedAgent(AgentProcess):
    """The agent run from another source tree (the pre-OCR checkout) with this venv."""

    def __init__(self, root: Path, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.root = root
        self.env["PYTHONPATH"] = str(root)

    def start(self, ready_timeout: float = 60.0) -> AgentProcess:
        import threading

        self.proc = subprocess.Popen(self.argv(), cwd=self.root, env=self.env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
        threading.Thread(target=self._read, name="agent-output", daemon=True).start()
        self.wait_line("teller-guard-agent: ready", ready_timeout)
        return self


@contextlib.contextmanager
def checkout(commit: str) -> Iterator[Path]:
    """`commit`'s tree in a temporary directory (git archive: the repository is not touched)."""
    with tempfile.TemporaryDirectory(prefix="tg-pre-ocr-") as tmp:
        data = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True,
                              capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


@contextlib.contextmanager
def agent_in(mode: str, xs: XServer, policy_body: str | None, root: Path | None,
             extra_env: dict[str, str]) -> Iterator[AgentProcess]:
    from tests.support.servers import run_collector

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tg-bench-")))
        data = tmp / "data"
        provision_pin(data, "135790")
        policy = None
        extra: list[str] = []
        if policy_body is not None:
            policy = write_policy(tmp / "policy.toml", policy_body)
            extra = ["--policy", str(policy)]
        endpoint = None
        if mode == "endpoint":
            url = stack.enter_context(run_collector(f"sqlite:///{tmp / 'collector.db'}",
                                                    extra_args=extra))
            enroll(data, url.url, url.enroll_token)
            endpoint = url.url
        kwargs = {"lang": "zh_CN", "endpoint": endpoint, "extra_env": extra_env}
        agent = (RootedAgent(root, xs, data, policy, **kwargs) if root is not None
                 else AgentProcess(xs, data, policy, **kwargs))  # type: ignore[arg-type]
        agent.start()
        stack.callback(agent.stop)
        yield agent


def idle_rss(agent: AgentProcess) -> float:
    time.sleep(SETTLE_S)  # the first policy fetch, shipping, the tray settle
    assert agent.proc is not None
    return status_mb(agent.proc.pid, "VmRSS")


def after_worker(agent: AgentProcess, event_type: str, before: int) -> tuple[float, float, str]:
    """Wait for the event, follow the worker until it exits; (worker peak MB, agent RSS MB,
    outcome)."""
    assert agent.proc is not None
    pid = agent.proc.pid
    peak = 0.0
    deadline = time.monotonic() + 180
    event = None
    while time.monotonic() < deadline:
        for w in ocr_workers(pid):
            hwm = status_mb(w, "VmHWM")
            if hwm == hwm:
                peak = max(peak, hwm)
        if event is None:
            found = agent.events(event_type)[before:]
            event = found[0] if found else None
        if event is not None and not ocr_workers(pid):
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"no {event_type} event, or the OCR worker did not exit")
    time.sleep(1.0)
    return peak, status_mb(pid, "VmRSS"), event.outcome


def form_window(xs: XServer, tmp: Path) -> subprocess.Popen[bytes]:
    from tests.ui.x11.test_x11_capture import form_png

    path = tmp / "form.png"
    path.write_bytes(form_png())
    proc = subprocess.Popen(["display", "-title", "core-banking", "-geometry", "+0+0",
                             str(path)], env=xs.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_until(lambda: xs.visible_windows("core-banking"), timeout=15,
               what="the teller form window")
    return proc


def run_current(mode: str, xs: XServer, show_maps: bool,
                agent_env: dict[str, str] | None = None) -> None:
    from tests.ui.x11.test_x11_capture import form_png

    env = {"TELLER_GUARD_OCR_IDLE_S": str(IDLE_EXIT_S), **(agent_env or {})}
    with agent_in(mode, xs, policy_text() + CAPTURE_POLICY, None, env) as agent, \
            tempfile.TemporaryDirectory(prefix="tg-form-") as tmp:
        assert agent.proc is not None
        pid = agent.proc.pid
        idle = idle_rss(agent)
        libs_idle = mapped_libs(pid)
        text = warned_text_copy(agent, xs)
        maps0 = smaps(pid)
        window = form_window(xs, Path(tmp))
        try:
            before = len(agent.events("SCREEN_HOTKEY"))
            xs.key("Print")
            shot_peak, shot_rss, shot_outcome = after_worker(agent, "SCREEN_HOTKEY", before)
        finally:
            window.terminate()
            window.wait(5)
        libs_shot = mapped_libs(pid)
        maps1 = smaps(pid)
        before = len(agent.events("CLIPBOARD_COPY_IMAGE"))
        xs.clipboard_set(form_png(), target="image/png")
        clip_peak, clip_rss, clip_outcome = after_worker(agent, "CLIPBOARD_COPY_IMAGE", before)
        libs_clip = mapped_libs(pid)
        maps2 = smaps(pid)
        xs.reap_owners()
    print(f"[{mode}] agent RSS idle {idle:.0f} MB (image libraries mapped: "
          f"{', '.join(libs_idle) or 'none'}); after a warned text copy {text:.0f} MB")
    print(f"[{mode}]   PrintScreen over a 1100x360 teller form on 1920x1080 ({shot_outcome}): "
          f"agent RSS with the worker stopped {shot_rss:.0f} MB ({shot_rss - idle:+.0f} MB); "
          f"worker peak {shot_peak:.0f} MB; mapped: {', '.join(libs_shot) or 'none'}")
    if show_maps:
        print(f"[{mode}]     grown since the text copy: {grown(maps0, maps1)}")
    print(f"[{mode}]   a 1100x360 PNG copied to the clipboard ({clip_outcome}): agent RSS with "
          f"the worker stopped {clip_rss:.0f} MB ({clip_rss - idle:+.0f} MB); worker peak "
          f"{clip_peak:.0f} MB; mapped: {', '.join(libs_clip) or 'none'}", flush=True)
    if show_maps:
        print(f"[{mode}]     grown since PrintScreen: {grown(maps1, maps2)}", flush=True)


def run_pre_ocr(mode: str, xs: XServer, root: Path, commit: str) -> float:
    with agent_in(mode, xs, None, root, {}) as agent:
        rss = idle_rss(agent)
        text = warned_text_copy(agent, xs)
    print(f"[{mode}] pre-OCR agent ({commit}, packaged policy) RSS idle {rss:.0f} MB; after a "
          f"warned text copy {text:.0f} MB", flush=True)
    return rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("embedded", "endpoint", "both"), default="both")
    parser.add_argument("--pre-ocr", default=PRE_OCR, metavar="COMMIT",
                        help="the commit before image reading (default %(default)s); '' skips it")
    parser.add_argument("--maps", action="store_true",
                        help="print which mappings grew (heap, anon, libraries) per capture")
    parser.add_argument("--agent-env", action="append", default=[], metavar="NAME=VALUE",
                        help="set this in the current agent's environment (e.g. "
                             "MALLOC_ARENA_MAX=8, to measure what a setting is worth); repeatable")
    args = parser.parse_args()
    agent_env = dict(item.partition("=")[::2] for item in args.agent_env)
    for tool in ("display", "xdotool", "xclip"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing", file=sys.stderr)
            return 2
    modes = ("embedded", "endpoint") if args.mode == "both" else (args.mode,)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    with contextlib.ExitStack() as stack:
        xs = stack.enter_context(xserver())
        root = stack.enter_context(checkout(args.pre_ocr)) if args.pre_ocr else None
        for mode in modes:
            if root is not None:
                run_pre_ocr(mode, xs, root, args.pre_ocr)
            run_current(mode, xs, args.maps, agent_env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
