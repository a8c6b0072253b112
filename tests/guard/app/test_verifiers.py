"""Service mode keeps every credential verifier out of the teller's process.

The real machine service (a subprocess, root) applies a central policy from a real collector on
loopback; agents talk to it over its real socket. The policy an agent receives holds no scrypt
verifier, and supervisor and IT credentials typed in the agent are checked by the service, with
a back-off per teller. An older service that does not know the check leaves the agent refusing.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from guard.app.session import Agent
from guard.credentials import Backoff, hash_secret
from guard.delivery.journal import Journal
from guard.ipc.agent_side import ServiceSink, agent_sink
from guard.ipc.client import LocalChannelClient
from guard.ipc.messages import MessageType
from guard.ipc.server import LocalChannelServer
from guard.ipc.status import STATUS_FILE
from guard.model import Device
from guard.pipeline.approval import IT, SUPERVISOR, Approver
from guard.pipeline.prompt import ScriptedPrompter
from guard.platforms._fake import FakePasswordCheck, FakePlatform
from guard.policy.schema import WITHHELD
from guard.policy.store import PolicyStore
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[3]
WAIT_S = 60.0
SUP_SECRET = "wang-0420-sup"
IT_SECRET = "it-desk-7731"
POLICY = """\
version = "verifiers-test"
[agent]
it_credential_hash = "{it_hash}"
[clipboard]
action = "block"
approval = "supervisor"
[idle]
backoff_after = 1
backoff_base_s = 600
backoff_max_s = 600
[[supervisors]]
id = "sup01"
name = "王主管"
credential_hash = "{sup_hash}"
[[supervisors]]
id = "sup02"
name = "李主管"
os_group = "tg-nobody-group"
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix socket local channel")


class _NoClipboard:
    def read(self) -> None: ...
    def write_text(self, text: str) -> None: ...
    def clear(self) -> None: ...


class _NoLock:
    def show_lock(self) -> None: ...
    def hide_lock(self) -> None: ...


@pytest.fixture
def service(tmp_path: Path, short_dir: Path) -> Iterator[tuple[Path, Path]]:
    """The real service (data directory, socket) with the central policy applied."""
    from tests.support.servers import run_collector

    policy = tmp_path / "central.toml"
    policy.write_text(POLICY.format(it_hash=hash_secret(IT_SECRET),
                                    sup_hash=hash_secret(SUP_SECRET)), encoding="utf-8")
    data, sock = tmp_path / "machine", short_dir / "s.sock"
    with contextlib.ExitStack() as stack:
        collector = stack.enter_context(run_collector(
            f"sqlite:///{tmp_path}/collector.db", extra_args=["--policy", str(policy)]))
        token = tmp_path / "enroll-token"
        token.write_text(collector.enroll_token, encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if k not in ("TELLER_GUARD_ENDPOINT", "TELLER_GUARD_POLICY",
                            "TELLER_GUARD_SOCKET", "TELLER_GUARD_DATA_DIR")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", ""))
                                            if p)
        log = stack.enter_context(open(tmp_path / "service.log", "ab"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "guard.cli", "service", "--data-dir", str(data), "--socket",
             str(sock), "--endpoint", str(collector), "--enroll-token-file", str(token)],
            env=env, cwd=REPO, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

        def stop() -> None:
            proc.terminate()
            proc.wait(30)
        stack.callback(stop)

        def applied() -> bool:
            if proc.poll() is not None:
                pytest.fail((tmp_path / "service.log").read_text(errors="replace")[-3000:])
            try:
                status = json.loads((data / STATUS_FILE).read_text("utf-8"))
            except (OSError, ValueError):
                return False
            return bool(status.get("policy_version") == "verifiers-test" and sock.exists())

        eventually("the service applying the central policy", applied, WAIT_S, interval=0.1)
        yield data, sock


def _sink(root: Path, sock: Path, teller: str) -> ServiceSink:
    sink = agent_sink(root / teller, socket_path=sock, device=Device(id="a", hostname="pc"),
                      teller=teller)
    assert sink is not None
    return sink


def test_the_policy_an_agent_receives_holds_no_verifier(
        tmp_path: Path, service: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    data, sock = service
    assert "scrypt$" in (data / "policy-central.toml").read_text("utf-8")  # the service's own
    sink = _sink(tmp_path, sock, "teller01")
    try:
        layer = sink.central_policy()
    finally:
        sink.close()
    assert layer is not None
    text, etag = layer
    assert "scrypt$" not in text and etag
    assert WITHHELD in text and "sup01" in text and "王主管" in text and "tg-nobody-group" in text

    # The whole agent: it follows the service's policy and keeps no verifier on disk.
    monkeypatch.setenv("TELLER_GUARD_SOCKET", str(sock))
    teller_dir = tmp_path / "agent"
    agent = Agent.create(prompter=ScriptedPrompter(), clipboard=_NoClipboard(), locker=_NoLock(),
                         data_dir=teller_dir, platform=FakePlatform())
    try:
        assert agent.service_sink is not None
        central = agent.service_sink.central_policy()
        assert central is not None and agent.store.apply_central(*central)
        policy = agent.store.current()
        assert policy.version == "verifiers-test"
        assert policy.agent.it_credential_hash == WITHHELD
        assert {s.credential_hash for s in policy.supervisors} <= {WITHHELD, ""}
        assert agent.supervisors() == (("sup01", "王主管"), ("sup02", "李主管"))
        assert {"supervisor", "it"} <= set(agent.unlock_methods())
        written = b"".join(p.read_bytes() for p in teller_dir.rglob("*") if p.is_file())
        assert b"scrypt$" not in written

        # Checked by the service: the right secrets pass, a wrong one fails.
        assert agent.verify_it_credential(IT_SECRET)
        assert agent.pipeline.approver is not None
        ok = agent.pipeline.approver.check(SUPERVISOR, "sup01", SUP_SECRET)
        assert ok.ok and ok.supervisor == "sup01" and ok.supervisor_name == "王主管"
        assert not agent.verify_it_credential("it-guess")
    finally:
        agent.service_sink.close()  # type: ignore[union-attr]


def test_supervisor_and_it_credentials_are_checked_by_the_service_and_back_off_per_teller(
        tmp_path: Path, service: tuple[Path, Path]) -> None:
    _, sock = service
    one, two = _sink(tmp_path, sock, "teller01"), _sink(tmp_path, sock, "teller02")
    try:
        # A supervisor's credential: right, then wrong, then even the right one waits.
        right = one.verify_credential(SUPERVISOR, "sup01", SUP_SECRET)
        assert right.ok and right.supervisor == "sup01" and right.supervisor_name == "王主管"
        wrong = one.verify_credential(SUPERVISOR, "sup01", "guess-1")
        assert not wrong.ok and wrong.message_key == "wrong_credential"
        assert wrong.retry_after_s > 500
        waiting = one.verify_credential(SUPERVISOR, "sup01", SUP_SECRET)
        assert not waiting.ok and waiting.message_key == "backoff"
        assert waiting.retry_after_s > 500
        # The IT credential, with its own back-off.
        assert one.verify_credential(IT, "", IT_SECRET).ok
        it_wrong = one.verify_credential(IT, "", "it-guess")
        assert not it_wrong.ok and it_wrong.message_key == "wrong_credential"
        assert one.verify_credential(IT, "", IT_SECRET).message_key == "backoff"
        # Another teller's tries are their own.
        assert two.verify_credential(SUPERVISOR, "sup01", SUP_SECRET).ok
        assert two.verify_credential(IT, "", IT_SECRET).ok
        # An OS-group supervisor with a wrong password; an unknown one (a wrong try too).
        group = two.verify_credential(SUPERVISOR, "sup02", "not-a-password")
        assert not group.ok and group.message_key == "wrong_credential"
        three = _sink(tmp_path, sock, "teller03")
        try:
            unknown = three.verify_credential(SUPERVISOR, "teller03", SUP_SECRET)
            assert not unknown.ok and unknown.message_key == "unknown_supervisor"
        finally:
            three.close()
    finally:
        one.close()
        two.close()


def test_the_agents_approver_backs_off_with_the_service_and_keeps_the_verdict(
        tmp_path: Path, service: tuple[Path, Path]) -> None:
    """The approver of an agent-enforced action (a blocked copy) and of the lock overlay asks
    the service; the service's back-off is what the dialog shows."""
    _, sock = service
    sink = _sink(tmp_path, sock, "teller05")
    store = PolicyStore(cache_dir=tmp_path / "store", use_machine=False)
    store.withhold_verifiers()
    central = sink.central_policy()
    assert central is not None and store.apply_central(*central)
    approver = Approver(policy=store.current, teller="teller05", password=FakePasswordCheck(),
                        backoff=Backoff(5, 1, 1), remote=sink.verify_credential)
    try:
        assert [s.id for s in approver.supervisors()] == ["sup01", "sup02"]
        assert approver.check_once(SUPERVISOR, "sup01", SUP_SECRET).ok
        wrong = approver.check(SUPERVISOR, "sup01", "guess")
        assert not wrong.ok and wrong.message_key == "wrong_credential"
        assert approver.backoff.failures == 1
        waiting = approver.check(SUPERVISOR, "sup01", SUP_SECRET)
        assert not waiting.ok and waiting.message_key == "backoff" and waiting.retry_after_s > 500
        assert approver.backoff.failures == 1  # the service's wait is not another wrong try
    finally:
        sink.close()
    assert "guess" not in (tmp_path / "service.log").read_text(errors="replace")
    assert SUP_SECRET not in (tmp_path / "service.log").read_text(errors="replace")


class _OldServer(LocalChannelServer):
    """A service from before `verify_credential`: it answers the message with an error."""

    _handlers: ClassVar[dict[str, Any]] = {
        k: v for k, v in LocalChannelServer._handlers.items()
        if k != MessageType.VERIFY_CREDENTIAL}


def test_an_older_service_that_cannot_check_leaves_the_agent_refusing(
        tmp_path: Path, short_dir: Path) -> None:
    journal = Journal(tmp_path / "journal.db", device=Device(id="pc", hostname="pc"))
    server = _OldServer(journal, short_dir / "old.sock")
    server.start()
    client = LocalChannelClient(server.path, tmp_path / "spool",
                                device=Device(id="pc", hostname="pc"), teller="teller01")
    try:
        for method, sid in ((SUPERVISOR, "sup01"), (IT, "")):
            verdict = client.verify_credential(method, sid, SUP_SECRET)
            assert not verdict.ok and verdict.message_key == "not_offered"
        assert client.status() is not None  # the connection itself still works
        # The agent's approver, with a policy that names the supervisor, refuses too: it has
        # no verifier to fall back on.
        store = PolicyStore(cache_dir=tmp_path / "store", use_machine=False)
        store.withhold_verifiers()
        assert store.apply_central(POLICY.format(it_hash=hash_secret(IT_SECRET, n=2**4),
                                                 sup_hash=hash_secret(SUP_SECRET, n=2**4)), "e")
        approver = Approver(policy=store.current, teller="teller01",
                            password=FakePasswordCheck(), backoff=Backoff(5, 1, 1),
                            remote=client.verify_credential)
        refused = approver.check(SUPERVISOR, "sup01", SUP_SECRET)
        assert not refused.ok and refused.message_key == "not_offered"
    finally:
        client.close()
        server.stop()
        journal.close()


def test_no_service_at_all_is_a_refusal_not_a_local_check(tmp_path: Path,
                                                          short_dir: Path) -> None:
    client = LocalChannelClient(short_dir / "nobody.sock", tmp_path / "spool",
                                device=Device(id="pc", hostname="pc"), teller="teller01",
                                timeout_s=0.5)
    verdict = client.verify_credential(IT, "", IT_SECRET)
    assert not verdict.ok and verdict.message_key == "not_offered"
    client.close()
