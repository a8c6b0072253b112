"""Repeats the local-attacker checks of issue 8 against a real machine service, as real tellers.

Run as root on Linux (it creates and removes two teller accounts)::

    sudo .venv/bin/python scripts/attack_local.py

It starts `python -m guard.cli service` as root in a temporary directory (no endpoint: the
embedded collector), makes two ordinary accounts, runs each attack as one of them with
`runuser -u USER -- python scripts/attack_local.py --attack NAME SOCKET`, prints one line per
attack (``HELD`` or ``BROKEN`` and what was seen), stops the service, reads its journal for what
it recorded about the attacks, and removes the accounts and the directory. Exit status 1 when an
attack got through. The tests (tests/guard/ipc/test_local_attacks.py) run the same `Lab`.

The attacker side speaks the wire format by hand (4-byte length + JSON), as a curious teller
with a copy of the source would; it imports nothing of the guard.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 60.0
# The tellers' interpreter: the attacker side needs only the standard library, and the project's
# virtualenv may live where an ordinary account cannot reach (under /root).
TELLER_PYTHON = os.environ.get("TELLER_GUARD_ATTACK_PYTHON") or shutil.which(
    "python3", path="/usr/bin:/bin") or sys.executable
CARD = "6222021234567890128"

# ------------------------------------------------------------------------------ attacker side


class Wire:
    """A framed connection to the local channel, by hand."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20.0)
        self.sock.connect(path)
        self.buf = b""

    def send(self, type_: str, body: dict[str, Any] | None = None) -> None:
        data = json.dumps({"v": 1, "type": type_, "id": uuid.uuid4().hex, "reply_to": None,
                           "body": body or {}}).encode()
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def read(self) -> dict[str, Any] | None:
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    msg: dict[str, Any] = json.loads(payload)
                    return msg
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def ask(self, type_: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
        self.send(type_, body)
        return self.read()

    def hello(self) -> dict[str, Any] | None:
        return self.ask("hello", {"versions": [1]})

    def close(self) -> None:
        self.sock.close()


def _event(teller: str, type_: str = "CLIPBOARD_COPY", channel: str = "clipboard",
           **extra: Any) -> dict[str, Any]:
    return {"schema": 1, "id": str(uuid.uuid4()), "type": type_, "teller": teller,
            "device": {"id": "forged", "hostname": "forged"}, "channel": channel, **extra}


def _me() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def attack_key(path: str, args: list[str]) -> dict[str, Any]:
    """Ask for the install hash key every way the channel ever offered it; read the key file."""
    seen: list[str] = []
    try:
        Path(args[0], "install.key").read_bytes()
        seen.append("install.key: READ")
    except OSError as exc:
        seen.append(f"install.key: {type(exc).__name__}")
    w = Wire(path)
    w.hello()
    for type_ in ("hash_key_request", "hash_key"):
        reply = w.ask(type_)
        seen.append(f"{type_}: {(reply or {}).get('type')} {(reply or {}).get('body', {})}")
    w.close()
    line = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    line.settimeout(20.0)
    line.connect(path)
    line.sendall(b"hash-key\n")
    answer = line.recv(4096).decode("utf-8", "replace").strip()
    line.close()
    seen.append(f"line hash-key: {answer}")
    text = " ".join(seen)
    words = text.replace('"', " ").replace("'", " ").split()
    looks_like_key = any(len(w) >= 32 and all(c in "0123456789abcdef" for c in w) for w in words)
    leaked = "install.key: READ" in seen or looks_like_key
    return {"leaked": leaked, "seen": seen}


def attack_other_teller(path: str, args: list[str]) -> dict[str, Any]:
    """Send events in another teller's name (framed and line dialects)."""
    victim = args[0]
    w = Wire(path)
    w.hello()
    framed = w.ask("event", {"event": _event(victim)})
    w.close()
    line = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    line.settimeout(20.0)
    line.connect(path)
    line.sendall(json.dumps(_event(victim)).encode() + b"\n")
    answer = line.recv(4096).decode("utf-8", "replace").strip()
    line.close()
    return {"framed": (framed or {}).get("type"), "line": answer}


SERVICE_ONLY = ["SERVICE_STARTED", "SERVICE_STOPPED", "POLICY_APPLIED", "HEARTBEAT",
                "EVENTS_DROPPED", "HASHES_COMPUTED", "LOCAL_EVENTS_THROTTLED"]


def attack_service_only(path: str, _: list[str]) -> dict[str, Any]:
    """Send the service's own event types, an unknown event type and an unknown finding type."""
    w = Wire(path)
    w.hello()
    out: dict[str, Any] = {}
    for type_ in SERVICE_ONLY:
        reply = w.ask("event", {"event": _event(_me(), type_, "system")})
        out[type_] = (reply or {}).get("type")
    reply = w.ask("event", {"event": _event(_me(), "MADE_UP")})
    out["MADE_UP"] = (reply or {}).get("type")
    reply = w.ask("event", {"event": _event(_me(), findings=[
        {"type": "SECRET_SAUCE", "count": 1, "masked": ["x"], "hashes": []}])})
    out["finding SECRET_SAUCE"] = (reply or {}).get("type")
    w.close()
    return out


def attack_hashes(path: str, _: list[str]) -> dict[str, Any]:
    """Forge hashes, and hand values that do not match their masked forms."""
    w = Wire(path)
    w.hello()
    forged = "ab" * 32
    event = _event(_me(), findings=[{"type": "BANK_CARD", "count": 1,
                                     "masked": ["622202*********0128"], "hashes": [forged]}])
    first = w.ask("event", {"event": event})
    mismatched = _event(_me(), findings=[{"type": "BANK_CARD", "count": 1,
                                          "masked": ["622202*********0128"], "hashes": []}])
    second = w.ask("event", {"event": mismatched, "hash_inputs": [["6217001234567890122"]]})
    honest = _event(_me(), findings=[{"type": "BANK_CARD", "count": 1,
                                      "masked": ["622202*********0128"], "hashes": []}])
    third = w.ask("event", {"event": honest, "hash_inputs": [[CARD]]})
    w.close()
    return {"forged": (first or {}).get("type"), "forged_id": event["id"],
            "mismatched": (second or {}).get("type"), "honest": (third or {}).get("type"),
            "honest_id": honest["id"]}


def attack_flood(path: str, args: list[str]) -> dict[str, Any]:
    """Send events as fast as the service answers."""
    n = int(args[0])
    w = Wire(path)
    w.hello()
    acked = deferred = other = 0
    for _ in range(n):
        reply = w.ask("event", {"event": _event(_me())}) or {}
        if reply.get("type") == "ack":
            acked += 1
        elif reply.get("type") == "refused" and reply.get("body", {}).get("retry"):
            deferred += 1
        else:
            other += 1
    w.close()
    return {"acked": acked, "deferred": deferred, "other": other}


def attack_quiet(path: str, args: list[str]) -> dict[str, Any]:
    """A teller's ordinary events (the victim of the flood)."""
    n = int(args[0])
    w = Wire(path)
    w.hello()
    acked = sum(1 for _ in range(n)
                if (w.ask("event", {"event": _event(_me())}) or {}).get("type") == "ack")
    w.close()
    return {"acked": acked, "sent": n}


def attack_oversized(path: str, _: list[str]) -> dict[str, Any]:
    """Announce a 512 MiB frame and push part of it."""
    w = Wire(path)
    w.hello()
    w.sock.sendall(struct.pack(">I", 512 * 1024 * 1024))
    pushed = 0
    with suppress(OSError):
        while pushed < 16 * 1024 * 1024:
            w.sock.sendall(b"y" * 65536)
            pushed += 65536
    reply = w.read() or {}
    closed = w.read() is None
    w.close()
    return {"code": reply.get("body", {}).get("code"), "closed": closed, "pushed": pushed}


def attack_idle(path: str, args: list[str]) -> dict[str, Any]:
    """Open many connections and keep them idle."""
    n = int(args[0])
    opened: list[socket.socket] = []
    busy = 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5.0)
        try:
            s.connect(path)
        except OSError:
            busy += 1
            continue
        opened.append(s)
    answered = 0
    for s in opened:  # a refused connection gets a "busy" error unasked, then the end
        try:
            data = s.recv(65536)
        except TimeoutError:
            answered += 1  # still open and quiet: an admitted, idle connection
            continue
        except OSError:
            data = b""
        if b"busy" in data or not data:
            busy += 1
    for s in opened:
        s.close()
    return {"admitted": answered, "refused": busy}


ATTACKS: dict[str, Callable[[str, list[str]], dict[str, Any]]] = {
    "key": attack_key, "other_teller": attack_other_teller, "service_only": attack_service_only,
    "hashes": attack_hashes, "flood": attack_flood, "quiet": attack_quiet,
    "oversized": attack_oversized, "idle": attack_idle,
}

# ------------------------------------------------------------------------------ the lab (root)


@dataclass
class Lab:
    """A root machine service in a temporary directory and two teller accounts."""

    base: Path
    data: Path
    sock: Path
    tellers: tuple[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    def run_as(self, user: str, attack: str, *args: str) -> dict[str, Any]:
        """Run one attack as `user` (runuser); its JSON result."""
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": "/tmp",
               "LANG": "C.UTF-8"}
        out = subprocess.run(
            ["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()),
             TELLER_PYTHON, str(Path(__file__).resolve()), "--attack", attack, str(self.sock),
             *args], capture_output=True, text=True, timeout=300, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"attack {attack} as {user} failed: {out.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    def start(self) -> None:
        self.log_path = self.base / "service.log"
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("TELLER_GUARD_ENDPOINT", None)
        env.pop("TELLER_GUARD_HASH_KEY", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guard.cli", "service", "--data-dir", str(self.data),
             "--socket", str(self.sock)], stdout=log, stderr=log, env=env, cwd=str(self.base))
        log.close()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited: {self.log_path.read_text()[-2000:]}")
            if self.sock.exists():
                with suppress(OSError):
                    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    probe.connect(str(self.sock))
                    probe.close()
                    return
            time.sleep(0.1)
        raise RuntimeError("the service did not listen in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def journal(self) -> list[dict[str, Any]]:
        """Every event the (stopped) service journaled."""
        sys.path.insert(0, str(ROOT))
        from guard.delivery.journal import Journal

        j = Journal(self.data / "journal.db")
        try:
            return [json.loads(r.body) for r in j.records()]
        finally:
            j.close()

    def uid(self, user: str) -> int:
        return pwd.getpwnam(user).pw_uid


def _useradd(name: str) -> None:
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)


def _userdel(name: str) -> None:
    subprocess.run(["userdel", name], check=False, capture_output=True)


@contextmanager
def lab() -> Iterator[Lab]:
    """A running `Lab`; the service stopped, the accounts and directory removed afterwards."""
    if sys.platform != "linux" or os.geteuid() != 0:
        raise SystemExit("run as root on Linux: it starts a root service and makes accounts")
    tag = uuid.uuid4().hex[:6]
    tellers = (f"tga{tag}", f"tgb{tag}")
    base = Path(tempfile.mkdtemp(prefix="tg-attack-"))
    os.chmod(base, 0o755)  # the tellers reach the socket; the data directory stays 0700
    data = base / "data"
    data.mkdir(mode=0o700)
    made: list[str] = []
    the_lab = Lab(base=base, data=data, sock=base / "agent.sock", tellers=tellers)
    try:
        for t in tellers:
            _useradd(t)
            made.append(t)
        the_lab.start()
        yield the_lab
    finally:
        the_lab.stop()
        for t in made:
            _userdel(t)
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------ the checks


@dataclass(frozen=True)
class Result:
    name: str
    held: bool
    seen: str


def run_all(the_lab: Lab, *, flood: int = 600) -> list[Result]:
    """Every attack in order; the last ones read the journal after stopping the service."""
    a, b = the_lab.tellers
    out: list[Result] = []
    key = the_lab.run_as(a, "key", str(the_lab.data))
    key_file = the_lab.data / "install.key"
    mode = oct(key_file.stat().st_mode & 0o777) if key_file.exists() else "absent"
    out.append(Result("ask for the hash key", not key["leaked"] and len(key["seen"]) == 4,
                      f"{'; '.join(key['seen'])[:300]}; install.key {mode} in a 0700 directory"))
    other = the_lab.run_as(a, "other_teller", b)
    out.append(Result("send another teller's events",
                      other["framed"] == "refused" and other["line"].startswith("error"),
                      f"framed {other['framed']}, line {other['line'][:80]!r}"))
    svc = the_lab.run_as(a, "service_only")
    out.append(Result("send service-only types and unknown types",
                      all(v == "refused" for v in svc.values()),
                      ", ".join(f"{k} {v}" for k, v in svc.items())))
    hashes = the_lab.run_as(a, "hashes")
    flooded = the_lab.run_as(a, "flood", str(flood))
    quiet = the_lab.run_as(b, "quiet", "5")
    out.append(Result("flood the channel",
                      flooded["deferred"] > 0 and flooded["other"] == 0
                      and quiet["acked"] == quiet["sent"],
                      f"{a}: {flooded['acked']} journaled, {flooded['deferred']} refused with "
                      f"retry (kept by the agent); {b}: {quiet['acked']}/{quiet['sent']} "
                      f"journaled"))
    big = the_lab.run_as(a, "oversized")
    out.append(Result("oversized frame", big["code"] == "too_large" and big["closed"],
                      f"answer {big['code']}, closed {big['closed']}, "
                      f"{big['pushed'] // 1024} KiB pushed"))
    idle = the_lab.run_as(a, "idle", "30")
    quiet_b = the_lab.run_as(b, "quiet", "1")
    out.append(Result("idle connections", idle["refused"] > 0 and idle["admitted"] <= 8
                      and quiet_b["acked"] == 1,
                      f"{idle['admitted']} admitted, {idle['refused']} refused; the other "
                      f"teller still gets in: {quiet_b['acked'] == 1}"))
    the_lab.stop()
    journal = the_lab.journal()
    by_id = {e["id"]: e for e in journal}
    forged = by_id.get(hashes["forged_id"], {})
    honest = by_id.get(hashes["honest_id"], {})
    forged_hashes = forged.get("findings", [{}])[0].get("hashes") if forged else None
    honest_hashes = honest.get("findings", [{}])[0].get("hashes") if honest else None
    out.append(Result("forge hashes, hash values that do not match",
                      hashes["forged"] == "ack" and forged_hashes == []
                      and hashes["mismatched"] == "refused" and hashes["honest"] == "ack"
                      and bool(honest_hashes) and honest_hashes != ["ab" * 32],
                      f"forged hash journaled as {forged_hashes}, mismatched value "
                      f"{hashes['mismatched']}, honest value hashed by the service"))
    uid_a = the_lab.uid(a)
    throttled = [e for e in journal if e["type"] == "LOCAL_EVENTS_THROTTLED"
                 and e["detail"].get("uid") == uid_a]
    computed = [e for e in journal if e["type"] == "HASHES_COMPUTED"
                and e["detail"].get("uid") == uid_a]
    planted = [e for e in journal if e["type"] in SERVICE_ONLY[:5] and e.get("teller") == a]
    out.append(Result("the service's record of it",
                      len(throttled) == 1
                      and throttled[0]["detail"]["refused"] == flooded["deferred"]
                      and sum(e["detail"]["values"] for e in computed) == 1 and not planted,
                      f"{len(throttled)} LOCAL_EVENTS_THROTTLED "
                      f"(refused {throttled[0]['detail']['refused'] if throttled else '-'}), "
                      f"{len(computed)} HASHES_COMPUTED, {len(planted)} planted service events"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--attack", help=argparse.SUPPRESS)
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.attack:
        print(json.dumps(ATTACKS[args.attack](args.rest[0], args.rest[1:])))
        return 0
    with lab() as the_lab:
        results = run_all(the_lab)
    for r in results:
        print(f"{'HELD  ' if r.held else 'BROKEN'} {r.name}: {r.seen}")
    return 0 if all(r.held for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
