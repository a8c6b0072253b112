"""A minimal Chrome DevTools Protocol driver for headless Chromium over `--remote-debugging-pipe`
(no websocket library needed): open a page, run script in it, wait for loads, take screenshots,
download files."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest


class CdpError(Exception):
    """Chromium answered a command with an error or not at all."""


class Chromium:
    """One headless Chromium with one page; `with Chromium(tmp) as page: page.goto(url)`."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1000) -> None:
        if shutil.which("chromium") is None:
            pytest.fail("chromium is missing: apt-get install chromium")
        self.profile = profile
        self.width, self.height = width, height
        self._next = 0
        self._buf = b""
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds() -> None:  # the pipe protocol: the browser reads fd 3 and writes fd 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--hide-scrollbars", f"--user-data-dir={self.profile}",
             f"--window-size={self.width},{self.height}", "about:blank"],
            pass_fds=(3, 4, to_child_r, from_child_w), preexec_fn=fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=self.width,
                  height=self.height, deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (CdpError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)

    def _read(self, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise CdpError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise CdpError("chromium closed the pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return dict(json.loads(msg))

    def call(self, method: str, session: bool = False, timeout: float = 30,
             **params: Any) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self._events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for i, ev in enumerate(self._events):
            if ev.get("method") == method:
                return dict(self._events.pop(i).get("params", {}))
        end = time.monotonic() + timeout
        while True:
            ev = self._read(max(0.01, end - time.monotonic()))
            if ev.get("method") == method:
                return dict(ev.get("params", {}))
            self._events.append(ev)

    def _forget(self, method: str) -> None:
        self._events = [e for e in self._events if e.get("method") != method]

    def goto(self, url: str) -> None:
        self._forget("Page.loadEventFired")
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", session=True, expression=expression,
                      returnByValue=True)
        if "exceptionDetails" in r:
            raise CdpError(f"script failed: {r['exceptionDetails']}")
        return r.get("result", {}).get("value")

    def js_then_load(self, expression: str) -> None:
        """Run script that navigates (a form submit, a link click) and wait for the new page."""
        self._forget("Page.loadEventFired")
        self.js(expression)
        self.wait_event("Page.loadEventFired")

    def screenshot(self, out: Path) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        out.write_bytes(base64.b64decode(data))

    def download(self, expression: str, into: Path, timeout: float = 30) -> Path:
        """Run script that starts a download (clicking an export link); return the file."""
        into.mkdir(parents=True, exist_ok=True)
        self.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(into),
                  eventsEnabled=True)
        self._forget("Browser.downloadProgress")
        self.js(expression)
        end = time.monotonic() + timeout
        while True:
            ev = self.wait_event("Browser.downloadProgress", max(0.01, end - time.monotonic()))
            if ev.get("state") == "completed":
                files = [p for p in into.iterdir() if not p.name.endswith(".crdownload")]
                if len(files) == 1:
                    return files[0]
                raise CdpError(f"expected one downloaded file, found {files}")
            if ev.get("state") == "canceled":
                raise CdpError("the download was cancelled")
