"""The session agent's end of the local channel: one open connection that sends events (spooling
them while the service is away), asks for status, and answers the prompts the service sends."""


from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from guard.events import EventType, new_event
from guard.files import write_atomic
from guard.ipc.messages import (
    MAX_FRAME,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    FrameDecoder,
    LocalChannelDeferred,
    LocalChannelError,
    LocalChannelRefused,
    LocalChannelUnavailable,
    Message,
    MessageType,
    ProtocolError,
    answer_to_body,
    approval_request_from_body,
    decode,
    encode,
    error_message,
    prompt_from_body,
    verdict_from_body,
)
from guard.ipc.unix import _require_unix, connect_unix, is_pipe_name
from guard.model import Device, Event
from guard.pipeline.approval import ApprovalResult, SupervisorPrompting
from guard.pipeline.prompt import PromptAnswer, Prompter

log = logging.getLogger(__name__)

REFUSED_DIR = "refused"  # spooled events the service refused for good, kept for IT to read
PROMPT_WORKERS = 2  # a held print job and a new volume may be asked at the same time
TRY_TIMEOUT_S = 30.0  # one approval try: scrypt or PAM in the service, behind queued events


class Stream(Protocol):
    """A connected byte stream (a Unix socket, a named-pipe client handle, a test fake)."""

    def recv(self, n: int) -> bytes: ...
    def sendall(self, data: bytes) -> None: ...
    def close(self) -> None: ...


@dataclass(eq=False)
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    reply: Message | None = None


class _Link:
    """One open connection: a reader thread routes replies to their requests and hands prompts
    to the agent's prompter."""

    def __init__(self, stream: Stream, on_request: Callable[[_Link, Message], None],
                 on_closed: Callable[[], None] | None = None) -> None:
        self.stream = stream
        self._on_request = on_request
        self._on_closed = on_closed
        self._wlock = threading.Lock()
        self._plock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self.failure: Message | None = None  # an error the service sent unasked (then closed)
        self.closed = threading.Event()
        self.last_sent = time.monotonic()
        self._thread = threading.Thread(target=self._read, name="teller-guard-channel-reader",
                                        daemon=True)
        self._thread.start()

    def send(self, msg: Message) -> None:
        data = encode(msg)
        with self._wlock:
            if self.closed.is_set():
                raise OSError("the connection to the service is closed")
            self.stream.sendall(data)
            self.last_sent = time.monotonic()

    def request(self, msg: Message, timeout_s: float) -> Message:
        """Send and wait for the reply; OSError when the connection ends or nothing comes."""
        pending = _Pending()
        with self._plock:
            self._pending[msg.id] = pending
        try:
            self.send(msg)
            if not pending.done.wait(timeout_s):
                raise TimeoutError(f"the service did not answer a {msg.type} in {timeout_s} s")
        finally:
            with self._plock:
                self._pending.pop(msg.id, None)
        if pending.reply is None:
            if self.failure is not None:
                return self.failure
            raise OSError("the service closed the connection")
        return pending.reply

    def _read(self) -> None:
        decoder = FrameDecoder(MAX_FRAME)
        try:
            while not self.closed.is_set():
                try:
                    data = self.stream.recv(decoder.wants())
                except TimeoutError:
                    continue
                if not data:
                    break
                for payload in decoder.feed(data):
                    self._dispatch(decode(payload))
        except ProtocolError as exc:
            log.warning("local channel: the service sent something unreadable (%s)", exc)
        except OSError as exc:
            if not self.closed.is_set():
                log.info("local channel: connection ended (%s)", exc)
        finally:
            self.close()

    def _dispatch(self, msg: Message) -> None:
        if msg.reply_to is not None:
            with self._plock:
                pending = self._pending.get(msg.reply_to)
            if pending is not None:
                pending.reply = msg
                pending.done.set()
            return
        if msg.type == MessageType.ERROR:  # unasked: the service refuses this connection
            self.failure = msg
            self.close()
            return
        self._on_request(self, msg)

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self.stream.close()
        except OSError:
            pass
        with self._plock:
            for pending in self._pending.values():
                pending.done.set()
        if self._on_closed is not None:
            try:
                self._on_closed()
            except Exception:  # a hook must not keep the connection from closing
                log.exception("local channel: the connection-closed hook failed")


def _unix_connector(path: Path, timeout_s: float) -> Callable[[], Stream]:
    def connect() -> Stream:
        sock: socket.socket = connect_unix(path, timeout_s)
        return sock
    return connect


class LocalChannelClient:
    """The session agent's end: sends events to the service, spooling them while it is away.

    `send()` never raises for a missing service (only `LocalChannelRefused` when the service
    refuses the event itself): the event goes to the spool (a directory of
    one-file-per-event, written atomically) and is sent, in order, by the next `send()` or
    `flush()` that reaches the service. When the service cannot journal for now (disk full) the
    event stays spooled and is tried again; nothing spooled is deleted until the service took
    it. The spool is bounded; past `max_spool` the oldest are dropped and an AGENT_SPOOL_DROPPED
    event with the count is sent in their place.

    `send(event, hash_inputs)` hands the normalised values of the event's findings to the
    service beside it (the service hashes them; this process has no key). They stay in memory:
    an event that has to be spooled is spooled without them, so it reaches the journal with no
    hashes.

    With a `prompter`, the agent offers to answer the service's prompts: each is asked on a
    worker thread and answered on the same connection. A prompter that can show the supervisor
    dialog (`SupervisorPrompting`) is offered for approvals too: the service sends the dialog,
    each try typed in it is relayed to the service, which checks it and answers the verdict.
    `on_disconnect` is called (from any thread) when an open connection ends.
    """

    def __init__(self, path: Path, spool_dir: Path, *, device: Device, teller: str = "",
                 max_spool: int = 10_000, timeout_s: float = 2.0,
                 prompter: Prompter | None = None,
                 connector: Callable[[], Stream] | None = None) -> None:
        if connector is None:
            _require_unix(path)
        self.path = Path(path)
        self.spool_dir = Path(spool_dir)
        self.device = device
        self.teller = teller
        self.max_spool = max_spool
        self.timeout_s = timeout_s
        self.prompter = prompter
        self.on_disconnect: Callable[[], None] | None = None
        self.ping_every_s = 30.0  # the service's idle timeout / 3, learnt from its hello
        self.service_version: int | None = None
        self._connector = connector or self._default_connector()
        self._lock = threading.Lock()  # one sender at a time: the spool keeps its order
        self._link_lock = threading.Lock()
        self._link: _Link | None = None
        self._prompts: ThreadPoolExecutor | None = None
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(self.spool_dir, 0o700)
        except OSError:
            pass

    def _default_connector(self) -> Callable[[], Stream]:
        if sys.platform == "win32" and is_pipe_name(self.path):
            from guard.ipc.pipe import connect_pipe

            name, timeout = str(self.path), self.timeout_s
            return lambda: connect_pipe(name, timeout)
        return _unix_connector(self.path, self.timeout_s)

    # -- spool

    def spooled(self) -> list[Path]:
        return sorted(p for p in self.spool_dir.glob("*.json"))

    def _spool(self, event: Event) -> None:
        name = f"{time.time_ns():020d}-{event.id}.json"
        write_atomic(self.spool_dir / name, event.to_json().encode("utf-8"))
        files = self.spooled()
        if len(files) > self.max_spool:
            excess = files[: len(files) - self.max_spool + 1]
            for f in excess:
                f.unlink(missing_ok=True)
            log.error("local channel: spool over %d events; dropped the %d oldest",
                      self.max_spool, len(excess))
            notice = new_event(EventType.AGENT_SPOOL_DROPPED, device=self.device,
                               teller=self.teller,
                               detail={"count": len(excess), "where": "agent spool"})
            # Named to sort before the remaining spool files, in place of what was dropped.
            first = self.spooled()[0].name.split("-", 1)[0] if self.spooled() else "0" * 20
            stamp = max(0, int(first) - 1)
            path = self.spool_dir / f"{stamp:020d}-{notice.id}.json"
            write_atomic(path, notice.to_json().encode("utf-8"))

    def _set_aside(self, path: Path) -> None:
        """A spooled event the service refused for good: kept beside the spool, not resent."""
        aside = self.spool_dir / REFUSED_DIR
        try:
            aside.mkdir(exist_ok=True)
            shutil.move(str(path), str(aside / path.name))
        except OSError as exc:
            log.error("local channel: cannot set a refused event aside (%s)", exc)

    # -- the connection

    def _connected(self) -> _Link:
        """The open connection, made (with the hello) when there is none."""
        with self._link_lock:
            link = self._link
            if link is not None and not link.closed.is_set():
                return link
            stream = self._connector()
            link = _Link(stream, self._on_request, self._link_closed)
            try:
                hello = Message(type=MessageType.HELLO, body={
                    "versions": list(SUPPORTED_VERSIONS), "teller": self.teller,
                    "prompts": self.prompter is not None,
                    "approvals": isinstance(self.prompter, SupervisorPrompting),
                    "pid": os.getpid()})
                reply = link.request(hello, self.timeout_s)
                if reply.type == MessageType.ERROR:
                    raise _error(reply)
                if reply.type != MessageType.HELLO:
                    raise LocalChannelError(f"the service answered hello with {reply.type!r}")
            except BaseException:
                link.close()
                raise
            self.service_version = int(reply.body.get("version", PROTOCOL_VERSION))
            idle = reply.body.get("idle_timeout_s")
            if isinstance(idle, int | float) and idle > 0:
                self.ping_every_s = max(0.05, float(idle) / 3)
            self._link = link
            return link

    def connected(self) -> bool:
        link = self._link
        return link is not None and not link.closed.is_set()

    def _link_closed(self) -> None:
        hook = self.on_disconnect
        if hook is not None:
            hook()

    def _request(self, msg: Message) -> Message:
        link = self._connected()
        try:
            return link.request(msg, self.timeout_s)
        except OSError:
            link.close()
            raise

    def _disconnect(self) -> None:
        with self._link_lock:
            link, self._link = self._link, None
        if link is not None:
            link.close()

    # -- sending

    def send(self, event: Event, hash_inputs: list[list[str]] | None = None) -> bool:
        """Hand one event to the service; True when it is journaled there, False when spooled
        (without `hash_inputs`: values are never written, so a spooled event has no hashes)."""
        with self._lock:
            if self.spooled() and not self._flush_locked():
                self._spool(event)
                return False
            try:
                self._send_one(event.to_json(), hash_inputs)
                return True
            except LocalChannelDeferred as exc:
                log.warning("local channel: %s; event spooled, sent again later", exc)
                self._spool(event)
                return False
            except LocalChannelRefused:
                raise
            except (OSError, LocalChannelError) as exc:
                self._disconnect()
                log.info("local channel: service away (%s); event spooled", exc)
                self._spool(event)
                return False

    def flush(self) -> bool:
        """Send every spooled event in order; True when the spool is empty."""
        with self._lock:
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        for f in self.spooled():
            try:
                body = f.read_text(encoding="utf-8")
            except OSError:
                continue
            try:
                self._send_one(body)
            except LocalChannelDeferred:
                return False  # kept, in order, for the next try
            except LocalChannelRefused as exc:
                log.error("local channel: the service refused a spooled event (%s); set aside "
                          "in %s", exc, self.spool_dir / REFUSED_DIR)
                self._set_aside(f)
                continue
            except (OSError, LocalChannelError):
                self._disconnect()
                return False
            f.unlink(missing_ok=True)
        return True

    def _send_one(self, body: str, hash_inputs: list[list[str]] | None = None) -> None:
        import json

        try:
            raw = json.loads(body)
        except ValueError:
            raise LocalChannelRefused("a spooled event is not JSON") from None
        message: dict[str, Any] = {"event": raw}
        if hash_inputs:
            message["hash_inputs"] = hash_inputs
        reply = self._request(Message(type=MessageType.EVENT, body=message))
        if reply.type == MessageType.ACK:
            return
        if reply.type == MessageType.REFUSED:
            reason = str(reply.body.get("reason", "refused"))
            if reply.body.get("retry"):
                raise LocalChannelDeferred(f"the service could not journal the event: {reason}")
            raise LocalChannelRefused(f"the service refused the event: {reason}")
        raise _error(reply)

    # -- asking

    def verify_code(self, channel: str, code: str) -> bool:
        """True when the service accepts `code` as a valid, unused one-time code for
        `channel` (it records its use); False for any other answer or no service."""
        try:
            reply = self._request(Message(type=MessageType.VERIFY_CODE,
                                          body={"channel": channel, "code": code}))
        except (OSError, LocalChannelError) as exc:
            log.warning("local channel: the one-time code cannot be checked (%s)", exc)
            return False
        return reply.type == MessageType.CODE_VERDICT and reply.body.get("ok") is True

    def verify_credential(self, method: str, supervisor: str, secret: str) -> ApprovalResult:
        """The service's verdict on a supervisor's credential (`method` ``supervisor``, with
        the supervisor's id) or the IT credential (``it``): the service holds the verifiers and
        backs off per teller. Any other answer is a refusal (``not_offered``): no service, or
        an older one that does not know the message; this process never checks locally (the
        policy it holds has no verifiers)."""
        refused = ApprovalResult(False, method, supervisor, message_key="not_offered")
        msg = Message(type=MessageType.VERIFY_CREDENTIAL,
                      body={"method": method, "supervisor": supervisor, "secret": secret})
        try:
            link = self._connected()
            try:
                reply = link.request(msg, TRY_TIMEOUT_S)
            except OSError:
                link.close()
                raise
        except (OSError, LocalChannelError) as exc:
            log.warning("local channel: the %s credential cannot be checked (%s); refused",
                        method, exc)
            return refused
        if reply.type != MessageType.CREDENTIAL_VERDICT:
            log.warning("local channel: the service does not check credentials (%s: %s); "
                        "refused — update the machine service", reply.type,
                        str(reply.body.get("code", ""))[:40])
            return refused
        verdict = verdict_from_body(reply.body)
        return verdict if verdict.method == method else refused

    def status(self) -> dict[str, Any] | None:
        """The service's status reply (``service``: its published status, ``channel``: the
        listener's state), or None when it does not answer."""
        try:
            reply = self._request(Message(type=MessageType.STATUS_REQUEST))
        except (OSError, LocalChannelError) as exc:
            log.info("local channel: no status from the service (%s)", exc)
            return None
        return reply.body if reply.type == MessageType.STATUS else None

    def central_policy(self) -> tuple[str, str] | None:
        """The central policy layer the service applies (TOML text, ETag), or None when it has
        none or does not answer."""
        try:
            reply = self._request(Message(type=MessageType.POLICY_REQUEST))
        except (OSError, LocalChannelError) as exc:
            log.info("local channel: no policy from the service (%s)", exc)
            return None
        text = reply.body.get("text") if reply.type == MessageType.POLICY else None
        return (text, str(reply.body.get("etag", ""))) if isinstance(text, str) else None

    def keepalive(self) -> bool:
        """Keep the connection open: reconnect when the agent answers prompts (the service can
        only ask a connected session), ping when it has been quiet. Called periodically; True
        when the connection is open afterwards."""
        link = self._link
        if link is None or link.closed.is_set():
            if self.prompter is not None:
                try:
                    self._connected()
                except (OSError, LocalChannelError) as exc:
                    log.debug("local channel: service not reachable (%s)", exc)
            return self.connected()
        if time.monotonic() - link.last_sent >= self.ping_every_s:
            try:
                link.request(Message(type=MessageType.PING), self.timeout_s)
            except OSError:
                link.close()
        return self.connected()

    # -- prompts from the service

    def _on_request(self, link: _Link, msg: Message) -> None:
        """A message the service sent unasked (reader thread: must not block)."""
        takes = (MessageType.PROMPT, MessageType.NOTIFY) + (
            (MessageType.APPROVE,) if isinstance(self.prompter, SupervisorPrompting) else ())
        if msg.type not in takes or self.prompter is None:
            _send_quietly(link, error_message("unexpected", f"this agent does not take "
                                              f"{msg.type!r} messages", msg.id))
            return
        if self._prompts is None:
            self._prompts = ThreadPoolExecutor(max_workers=PROMPT_WORKERS,
                                               thread_name_prefix="teller-guard-prompt")
        self._prompts.submit(self._approve if msg.type == MessageType.APPROVE else self._answer,
                             link, msg)

    def _approve(self, link: _Link, msg: Message) -> None:
        """Show the supervisor dialog the service sent; relay each try to the service, which
        checks it (this process never sees a verifier or the device key), and end the dialog
        with an answer carrying the typed reason."""
        prompter = self.prompter
        assert isinstance(prompter, SupervisorPrompting)
        try:
            request = approval_request_from_body(msg.body)
        except ProtocolError as exc:
            _send_quietly(link, error_message(exc.code, str(exc), msg.id))
            return

        def check(method: str, supervisor_id: str, secret: str) -> ApprovalResult:
            try_ = Message(type=MessageType.APPROVAL_TRY, body={
                "approval": msg.id, "method": method, "supervisor": supervisor_id,
                "secret": secret})
            try:
                reply = link.request(try_, TRY_TIMEOUT_S)
            except OSError as exc:
                log.warning("local channel: the approval cannot be checked (%s)", exc)
                return ApprovalResult(False, method, supervisor_id, message_key="not_offered")
            if reply.type != MessageType.APPROVAL_VERDICT:
                return ApprovalResult(False, method, supervisor_id, message_key="not_offered")
            return verdict_from_body(reply.body)

        try:
            result = prompter.approve(request, check)
        except Exception:  # the dialog failed: the action stays blocked
            log.exception("local channel: the supervisor dialog failed")
            result = None
        answer = PromptAnswer(proceed=result is not None and result.ok,
                              reason=result.reason if result is not None else "",
                              timed_out=result is None)
        _send_quietly(link, msg.reply(MessageType.ANSWER, answer_to_body(answer)))

    def _answer(self, link: _Link, msg: Message) -> None:
        prompter = self.prompter
        assert prompter is not None
        try:
            request = prompt_from_body(msg.body)
        except ProtocolError as exc:
            _send_quietly(link, error_message(exc.code, str(exc), msg.id))
            return
        if msg.type == MessageType.NOTIFY:
            try:
                prompter.notify(request)
            except Exception:  # the UI's failure must not end the channel
                log.exception("local channel: showing a notification failed")
            return
        try:
            answer = prompter.ask(request)
        except Exception:  # the UI failed to ask: the safe choice
            log.exception("local channel: asking the teller failed; answering cancel")
            answer = PromptAnswer(proceed=False, timed_out=True)
        _send_quietly(link, msg.reply(MessageType.ANSWER, answer_to_body(answer)))

    def close(self) -> None:
        with self._lock:
            self._disconnect()
        if self._prompts is not None:
            self._prompts.shutdown(wait=False, cancel_futures=True)
            self._prompts = None


def _send_quietly(link: _Link, msg: Message) -> None:
    try:
        link.send(msg)
    except OSError as exc:
        log.info("local channel: answer not sent; the service took the safe choice (%s)", exc)


def _error(reply: Message) -> LocalChannelError:
    """The exception for an error reply: refused for good, or a protocol mismatch."""
    code = str(reply.body.get("code", ""))
    text = str(reply.body.get("message", reply.type))
    if code == "refused":
        return LocalChannelRefused(text)
    if code == "version":
        return LocalChannelUnavailable(f"the service speaks another protocol version: {text}")
    return LocalChannelError(f"the service answered an error ({code}): {text}")
