"""The local channel's wire format: a versioned message envelope in length-prefixed frames.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON, the envelope::

    {"v": 1, "type": "event", "id": "…", "reply_to": null, "body": {…}}

The length is checked against `MAX_FRAME` before a single body byte is kept, so a peer that
announces 512 MiB is refused with at most one header buffered (`FrameDecoder`). Unknown message
types and unsupported versions get an `error` reply naming what this end speaks; only a frame
that breaks the framing itself (too large, not JSON) ends the connection, after the reply.

Shared by both ends and both transports (Unix socket, Windows named pipe).
"""


from __future__ import annotations

import json
import logging
import struct
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from guard.model import Action, Channel, FindingSummary
from guard.pipeline.approval import CODE, IT, SUPERVISOR, ApprovalRequest, ApprovalResult
from guard.pipeline.prompt import PromptAnswer, PromptRequest

log = logging.getLogger(__name__)

SOCKET_NAME = "agent.sock"
PIPE_NAME = r"\\.\pipe\teller-guard"
MAX_LINE = 64 * 1024  # the line-per-event dialect of earlier agents
MAX_FRAME = 256 * 1024  # an event is at most a few KiB; a prompt with 32 findings well under this
PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size
_UID_ROOT = 0


class LocalChannelError(Exception):
    """The local channel failed; the message says what and how to fix it."""


class LocalChannelUnavailable(LocalChannelError):
    """The local channel cannot run on this platform or in this configuration."""


class LocalChannelRefused(LocalChannelError):
    """The service refused an event for good (not a valid event, wrong teller, user not allowed)."""


class LocalChannelDeferred(LocalChannelError):
    """The service could not take the event now (its journal is full or failing): keep it and
    send it again later."""


class ProtocolError(LocalChannelError):
    """A message broke the protocol. `code` is what the error reply carries (`too_large`,
    `bad_frame`, `version`, `unknown_type`, `bad_message`); `fatal` when the framing itself is
    broken and the connection cannot go on."""

    def __init__(self, code: str, message: str, *, fatal: bool = False,
                 reply_to: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.fatal = fatal
        self.reply_to = reply_to


class FrameTooLarge(ProtocolError):
    """A frame's announced length is over the bound; refused before its body is read."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__("too_large", f"a frame of {length} bytes is over the {limit}-byte "
                         f"limit of the local channel", fatal=True)
        self.length = length


class MessageType(StrEnum):
    HELLO = "hello"  # agent → service: who I am, which versions I speak; service → agent: chosen
    EVENT = "event"  # agent → service: body.event, and body.hash_inputs (in memory only): the
    # normalised values of its findings, aligned with event.findings[i].masked, which the service
    # hashes with the install key (the key never reaches a teller's process)
    ACK = "ack"  # service → agent: journaled
    REFUSED = "refused"  # service → agent: not journaled (body.retry: keep it and try later)
    STATUS_REQUEST = "status_request"
    STATUS = "status"
    PROMPT = "prompt"  # service → agent: ask the teller (body: a PromptRequest)
    NOTIFY = "notify"  # service → agent: show a toast; no answer
    ANSWER = "answer"  # agent → service: the teller's PromptAnswer
    PING = "ping"  # keeps an idle connection open; answered with PONG
    PONG = "pong"
    POLICY_REQUEST = "policy_request"  # agent → service: the central policy layer in force
    POLICY = "policy"  # service → agent: body.text (TOML) and body.etag, or empty
    VERIFY_CODE = "verify_code"  # agent → service: body.channel, body.code (a one-time code)
    CODE_VERDICT = "code_verdict"  # service → agent: body.ok (True once, for a valid unused code)
    # Supervisor approval (四眼) of an action the service enforces (a held print job). The
    # service checks every credential itself; the agent only shows the dialog and relays what
    # was typed. An agent offers these in its hello (body.approvals); one that does not is never
    # sent APPROVE, and the action stays blocked (the safe choice).
    APPROVE = "approve"  # service → agent: show the supervisor dialog (an ApprovalRequest);
    # the agent ends it with an ANSWER replying to it (body.reason: what the supervisor typed)
    APPROVAL_TRY = "approval_try"  # agent → service: body.approval (the APPROVE's id),
    # body.method, body.supervisor, body.secret — one try typed in that dialog
    APPROVAL_VERDICT = "approval_verdict"  # service → agent: the try's ApprovalResult (no secret)
    # A credential whose verifier only the service holds, checked for the teller's own agent: a
    # supervisor approving an action the agent enforces, or unlocking the overlay; the IT
    # credential (quit dialog, overlay). The service backs off per teller; an older service
    # answers an error, and the agent refuses (it has no verifier to check against).
    VERIFY_CREDENTIAL = "verify_credential"  # agent → service: body.method (supervisor|it),
    # body.supervisor (an id, or "" for it), body.secret (in memory only)
    CREDENTIAL_VERDICT = "credential_verdict"  # service → agent: an ApprovalResult (no secret)
    ERROR = "error"  # the message could not be handled; body.code says why


KNOWN_TYPES = frozenset(t.value for t in MessageType)


@dataclass(frozen=True, slots=True)
class Message:
    """One envelope. `id` is unique per sender; a reply carries the request's id in `reply_to`."""

    type: str
    body: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    reply_to: str | None = None
    v: int = PROTOCOL_VERSION

    def reply(self, type_: MessageType | str, body: dict[str, Any] | None = None) -> Message:
        return Message(type=str(type_), body=body or {}, reply_to=self.id)

    def to_dict(self) -> dict[str, Any]:
        return {"v": self.v, "type": self.type, "id": self.id, "reply_to": self.reply_to,
                "body": self.body}


def encode(message: Message, *, limit: int = MAX_FRAME) -> bytes:
    """The frame for `message`; `FrameTooLarge` when it would be over `limit` (never sent)."""
    data = json.dumps(message.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
    if len(data) > limit:
        raise FrameTooLarge(len(data), limit)
    return _HEADER.pack(len(data)) + data


def error_message(code: str, text: str, reply_to: str | None = None) -> Message:
    return Message(type=MessageType.ERROR, body={"code": code, "message": text,
                                                 "versions": list(SUPPORTED_VERSIONS)},
                   reply_to=reply_to)


def decode(payload: bytes) -> Message:
    """The envelope in one frame's payload; `ProtocolError` says what is wrong with it.

    Checks the version before the type, so a newer peer learns which versions this end speaks.
    """
    try:
        raw = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("bad_frame", f"a frame is not UTF-8 JSON ({type(exc).__name__})",
                            fatal=True) from None
    if not isinstance(raw, dict):
        raise ProtocolError("bad_message", "a message must be a JSON object")
    msg_id = raw.get("id")
    reply_to = msg_id if isinstance(msg_id, str) else None
    version = raw.get("v")
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError("version", f"protocol version {version!r} is not supported; this "
                            f"end speaks {list(SUPPORTED_VERSIONS)}", reply_to=reply_to)
    type_ = raw.get("type")
    if not isinstance(type_, str) or type_ not in KNOWN_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {str(type_)[:40]!r}",
                            reply_to=reply_to)
    body = raw.get("body", {})
    answer_to = raw.get("reply_to")
    if not isinstance(msg_id, str) or not msg_id or len(msg_id) > 64 or not isinstance(
            body, dict) or not (answer_to is None or isinstance(answer_to, str)):
        raise ProtocolError("bad_message", "a message needs a string id (≤ 64 chars), an "
                            "object body and a string or null reply_to", reply_to=reply_to)
    return Message(type=type_, body=body, id=msg_id, reply_to=answer_to, v=version)


class FrameDecoder:
    """Splits a byte stream into frame payloads, refusing an oversized one from its header.

    `feed()` returns the complete payloads so far. At most `limit + HEADER_SIZE` bytes plus the
    last chunk fed are ever held (`buffered`); after `FrameTooLarge` the stream is unusable.
    """

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._need: int | None = None  # the current frame's body length, once its header is in
        self.high_water = 0  # the most bytes ever buffered at once (for tests and status)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        self.high_water = max(self.high_water, len(self._buf))
        out: list[bytes] = []
        while True:
            if self._need is None:
                if len(self._buf) < HEADER_SIZE:
                    return out
                (length,) = _HEADER.unpack_from(self._buf)
                if length > self.limit:
                    self._buf.clear()
                    raise FrameTooLarge(length, self.limit)
                del self._buf[:HEADER_SIZE]
                self._need = length
            if len(self._buf) < self._need:
                return out
            out.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = None

    def wants(self, default: int = 65536) -> int:
        """How many bytes to read next so no read takes more than the current frame needs."""
        if self._need is None:
            return max(1, min(default, HEADER_SIZE - len(self._buf))) if len(
                self._buf) < HEADER_SIZE else default
        return max(1, min(default, self._need - len(self._buf)))


class LineDecoder:
    """The earlier dialect (one JSON event per line), bounded as it is read."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self._buf = bytearray()
        self.high_water = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        self.high_water = max(self.high_water, len(self._buf))
        out: list[bytes] = []
        while (end := self._buf.find(b"\n")) >= 0:
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if len(line) > self.limit:
                raise ProtocolError("too_large", "event too large", fatal=True)
            out.append(line)
        if len(self._buf) > self.limit:
            self._buf.clear()
            raise ProtocolError("too_large", "event too large", fatal=True)
        return out

    def wants(self, default: int = 65536) -> int:
        return default


# -- prompt bodies


def prompt_to_body(request: PromptRequest) -> dict[str, Any]:
    return {"action": str(request.action), "channel": str(request.channel),
            "kind": request.kind, "timeout_s": request.timeout_s,
            "min_reason_len": request.min_reason_len, "reasons": list(request.reasons),
            "detail": dict(request.detail),
            "findings": [f.model_dump(mode="json") for f in request.findings]}


def prompt_from_body(body: dict[str, Any]) -> PromptRequest:
    """The `PromptRequest` in a prompt message; `ProtocolError` when it is not one."""
    try:
        detail = body.get("detail", {})
        if not isinstance(detail, dict):
            raise TypeError("detail must be an object")
        return PromptRequest(
            action=Action(body["action"]), channel=Channel(body["channel"]),
            kind=str(body["kind"]), timeout_s=float(body.get("timeout_s", 30.0)),
            min_reason_len=int(body.get("min_reason_len", 0)),
            reasons=tuple(str(r) for r in body.get("reasons", ())),
            detail={str(k): str(v) for k, v in detail.items()},
            findings=tuple(FindingSummary.model_validate(f) for f in body.get("findings", ())))
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ProtocolError("bad_message", f"not a prompt request: {type(exc).__name__}") from None


def answer_to_body(answer: PromptAnswer) -> dict[str, Any]:
    return {"proceed": answer.proceed, "reason": answer.reason, "timed_out": answer.timed_out}


def answer_from_body(body: dict[str, Any]) -> PromptAnswer:
    """The `PromptAnswer` in an answer message; anything unreadable is the safe choice."""
    proceed = body.get("proceed")
    reason = body.get("reason", "")
    if not isinstance(proceed, bool) or not isinstance(reason, str):
        return PromptAnswer(proceed=False, timed_out=True)
    return PromptAnswer(proceed=proceed, reason=reason[:1000],
                        timed_out=bool(body.get("timed_out", False)))


# -- supervisor approval bodies

MAX_SECRET = 256  # characters of a typed credential or code
MAX_SUPERVISORS = 64  # supervisors offered in one approval request
MAX_ID = 64  # a supervisor id, an approval id
APPROVAL_KEYS = frozenset({"ok", "wrong_credential", "unknown_supervisor", "self_approval",
                           "code_refused", "backoff", "not_offered"})


def approval_request_to_body(request: ApprovalRequest) -> dict[str, Any]:
    return {"prompt": prompt_to_body(request.prompt),
            "supervisors": [[sid, name] for sid, name in request.supervisors],
            "codes": request.codes}


def approval_request_from_body(body: dict[str, Any]) -> ApprovalRequest:
    """The `ApprovalRequest` in an approve message; `ProtocolError` when it is not one."""
    prompt = body.get("prompt")
    sups = body.get("supervisors", [])
    codes = body.get("codes", False)
    if not isinstance(prompt, dict) or not isinstance(sups, list) or not isinstance(codes, bool):
        raise ProtocolError("bad_message", "approve needs a prompt object, a supervisors list "
                            "and a codes flag")
    if len(sups) > MAX_SUPERVISORS or not all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) and 0 < len(x) <= 200
                                                        for x in s) for s in sups):
        raise ProtocolError("bad_message", f"approve's supervisors must be at most "
                            f"{MAX_SUPERVISORS} [id, name] pairs of strings")
    return ApprovalRequest(prompt_from_body(prompt), tuple((s[0], s[1]) for s in sups), codes)


@dataclass(frozen=True, slots=True)
class ApprovalTry:
    """One try typed in the supervisor dialog, as the agent relays it. `secret` is in memory
    only: never logged, journaled or echoed back."""

    approval: str
    method: str
    supervisor: str
    secret: str = field(repr=False)


def approval_try_from_body(body: dict[str, Any]) -> ApprovalTry:
    """The try in an approval_try message; `ProtocolError` (naming no value) when malformed."""
    approval, method = body.get("approval"), body.get("method")
    supervisor, secret = body.get("supervisor", ""), body.get("secret")
    if not (isinstance(approval, str) and 0 < len(approval) <= MAX_ID):
        raise ProtocolError("bad_message", "approval_try needs the approval's id")
    if method not in (SUPERVISOR, CODE):
        raise ProtocolError("bad_message", f"approval_try's method must be {SUPERVISOR!r} or "
                            f"{CODE!r}")
    if not isinstance(supervisor, str) or len(supervisor) > MAX_ID:
        raise ProtocolError("bad_message", f"approval_try's supervisor must be a string of at "
                            f"most {MAX_ID} characters")
    if not isinstance(secret, str) or not 0 < len(secret) <= MAX_SECRET:
        raise ProtocolError("bad_message", f"approval_try's secret must be 1 to {MAX_SECRET} "
                            f"characters")
    return ApprovalTry(approval, str(method), supervisor, secret)


@dataclass(frozen=True, slots=True)
class CredentialTry:
    """A credential the agent asks the service to check (`VERIFY_CREDENTIAL`). `secret` is in
    memory only: never logged, journaled or echoed back."""

    method: str
    supervisor: str
    secret: str = field(repr=False)


def credential_try_from_body(body: dict[str, Any]) -> CredentialTry:
    """The try in a verify_credential message; `ProtocolError` (naming no value) when
    malformed."""
    method, supervisor, secret = body.get("method"), body.get("supervisor", ""), body.get(
        "secret")
    if method not in (SUPERVISOR, IT):
        raise ProtocolError("bad_message", f"verify_credential's method must be {SUPERVISOR!r} "
                            f"or {IT!r}")
    if not isinstance(supervisor, str) or len(supervisor) > MAX_ID or (
            method == SUPERVISOR and not supervisor):
        raise ProtocolError("bad_message", f"verify_credential's supervisor must be an id of at "
                            f"most {MAX_ID} characters (for a supervisor's credential)")
    if not isinstance(secret, str) or not 0 < len(secret) <= MAX_SECRET:
        raise ProtocolError("bad_message", f"verify_credential's secret must be 1 to "
                            f"{MAX_SECRET} characters")
    return CredentialTry(str(method), supervisor, secret)


def verdict_to_body(result: ApprovalResult) -> dict[str, Any]:
    return {"ok": result.ok, "method": result.method, "supervisor": result.supervisor,
            "supervisor_name": result.supervisor_name,
            "retry_after_s": round(result.retry_after_s, 3), "message_key": result.message_key}


def verdict_from_body(body: dict[str, Any]) -> ApprovalResult:
    """The `ApprovalResult` in an approval_verdict; anything unreadable is a refusal."""
    ok, method = body.get("ok"), body.get("method")
    key = body.get("message_key")
    retry = body.get("retry_after_s", 0.0)
    sid, name = body.get("supervisor", ""), body.get("supervisor_name", "")
    if not isinstance(ok, bool) or method not in (SUPERVISOR, CODE, IT) \
            or key not in APPROVAL_KEYS \
            or not isinstance(retry, int | float) or isinstance(retry, bool) \
            or not isinstance(sid, str) or not isinstance(name, str):
        return ApprovalResult(False, message_key="not_offered")
    return ApprovalResult(ok, str(method), sid[:MAX_ID], name[:200],
                          retry_after_s=min(max(0.0, float(retry)), 3600.0),
                          message_key=str(key))
