"""The collector's ASGI application: enrolment, signed event batches, policy, query and dashboard.

Every endpoint follows docs/PROTOCOL.md. A bad request always gets a 4xx answer with
`{"error": "<reason>"}`; nothing of a rejected batch is stored. Database work runs in the thread
pool so that the event loop keeps answering while a batch is written.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
import urllib.parse
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from guard import __version__
from guard.collector import dashboard, keywrap, openapi
from guard.collector.limits import TokenThrottle
from guard.collector.privacy import PrivacyCheck
from guard.collector.store import (
    CODE_STATUSES,
    ChainHead,
    CodeQuery,
    CodesExhausted,
    DeviceExists,
    EventQuery,
    IssuedCode,
    ReplayedBatch,
    Store,
    StoreKeyError,
    StoreRejected,
    StoreUnavailable,
    to_us,
)
from guard.delivery import approval_code
from guard.delivery.protocol import HEADER_DEVICE, HEADER_SIGNATURE, HEADER_TIMESTAMP, verify
from guard.model import Channel, Event

log = logging.getLogger("guard.collector")

MIB = 1024 * 1024
DEVICE_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
TIMESTAMP = re.compile(r"^\d{1,12}$")
SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")
COOKIE = "tg_admin"
SESSION_S = 12 * 3600  # a dashboard sign-in lasts one working day
MAX_OFFSET = 1_000_000_000
HEADER_CHAIN = "X-TG-Chain"
CHAIN = re.compile(r"^(\d{1,18}):([0-9a-f]{16,128})$")
# event times the collector accepts: none before the product existed, none a day ahead of its clock
EARLIEST = datetime(2020, 1, 1, tzinfo=UTC)
MAX_AHEAD_S = 24 * 3600
MIN_TOKEN_CHARS = 16
MIN_TOKEN_DISTINCT = 8
FRAME_CSP = "frame-ancestors 'none'"


class WeakTokenError(ValueError):
    """A token too short or too plain to stand against guessing."""


def check_token(name: str, token: str) -> None:
    """Refuse a token under 16 characters or with fewer than 8 distinct ones (about 96 bits for a
    random token of that length; `new_token()` gives 32 characters)."""
    if len(token) < MIN_TOKEN_CHARS or len(set(token)) < MIN_TOKEN_DISTINCT:
        raise WeakTokenError(
            f"the {name} token is too weak: give at least {MIN_TOKEN_CHARS} random characters "
            f"(e.g. python -c \"import secrets; print(secrets.token_urlsafe(24))\")")


@dataclass(frozen=True, slots=True)
class Settings:
    """How one collector runs; tokens are compared in constant time and never logged."""

    db_url: str
    enroll_token: str
    admin_token: str
    policy_file: Path | None = None
    max_body_bytes: int = 4 * MIB
    window_s: int = 300
    heartbeat_window_s: int = 900
    # the server key that encrypts device keys at rest (None: `default_key_file(db_url)`)
    key_file: Path | None = None
    # wrong enrolment tokens per client address: free tries, lockout after, lockout length
    enroll_free_tries: int = 5
    enroll_lockout_after: int = 10
    enroll_lockout_s: float = 900.0


class ApiError(Exception):
    """A request the collector refuses; becomes `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class Forwarder(Protocol):
    """What the app needs from a SIEM forwarder (see `guard.collector.siem`)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def submit(self, events: list[Event]) -> None: ...


class ApprovalCodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")
    channel: str = Field(pattern="^(" + "|".join(sorted(approval_code.CHANNELS)) + ")$")
    minutes: int = Field(default=30, ge=1, le=approval_code.MAX_SLOTS * approval_code.SLOT_S // 60)
    # who asks (IT's name or login) and why: recorded with the code for compliance
    issuer: str = Field(default="", max_length=128)
    reason: str = Field(default="", max_length=512)


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    token: str = Field(max_length=512)
    hostname: str = Field(default="", max_length=255)
    branch: str = Field(default="", max_length=128)
    device_id: str | None = Field(default=None, pattern=DEVICE_ID.pattern)


class _Policy:
    """The policy document served to agents, re-read when its file changes."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._body = b""
        self._etag = _etag(b"")

    def current(self) -> tuple[bytes, str]:
        if self._path is None:
            return self._body, self._etag
        with self._lock:
            try:
                st = self._path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
                if stamp != self._stamp:
                    self._body = self._path.read_bytes()
                    self._etag = _etag(self._body)
                    self._stamp = stamp
            except OSError as exc:
                # keep serving the last good copy; IT sees why in the log
                log.warning("policy file %s unreadable (%s); serving the last copy",
                            self._path, exc)
            return self._body, self._etag


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def default_policy_file() -> Path | None:
    """The packaged default policy (resources/policy.toml), if this build carries it."""
    try:
        from teller_guard_resources import resource
    except ImportError:
        return None
    packaged = resource("policy.toml")
    return Path(str(packaged)) if packaged.is_file() else None


def default_key_file(db_url: str) -> Path:
    """Where the server key lives by default: beside a SQLite file (`<db>.key`); never inside
    the database. Any other database needs `Settings.key_file` (the `teller-guard collector`
    command gives the data directory's `collector.key`): every collector process sharing the
    database must use the same key."""
    import sqlalchemy as sa

    try:
        database = sa.engine.make_url(db_url).database if db_url.startswith("sqlite") else None
    except sa.exc.ArgumentError:
        database = None
    if database and database != ":memory:" and not database.startswith("file:"):
        return Path(database + ".key")
    raise ValueError("this database keeps no file of its own: give the collector a key file "
                     "(--key-file or TELLER_GUARD_COLLECTOR_KEY), the same for every collector "
                     "process sharing the database")


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


def _check_text(value: Any, where: str = "body", status: int = 422) -> None:
    """Refuse NUL characters and unpaired surrogates, which no database stores faithfully."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(status, f"{where}: text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(status, f"{where}: text is not valid Unicode") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, where, status)
            _check_text(v, f"{where}.{k}" if len(where) < 80 else where, status)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_text(v, f"{where}[{i}]" if len(where) < 80 else where, status)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> Any:
    """Strict JSON (no NaN/Infinity); malformed input is a 400."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not valid JSON"
        raise ApiError(400, f"malformed JSON: {reason}") from None


def _validation_message(exc: ValidationError, prefix: str) -> str:
    # Only locations and messages: never the offending input, which may be customer data.
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{prefix}{'.' if loc else ''}{loc}: {err.get('msg', 'invalid')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _decompress(body: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise ApiError(413, f"body over the limit of {limit} bytes once decompressed")
        out += d.flush()
        if not d.eof or len(out) > limit:
            raise ApiError(400, "bad gzip body: truncated or over the limit")
        if d.unused_data:
            raise ApiError(400, "bad gzip body: trailing data after the gzip stream")
    except zlib.error as exc:
        raise ApiError(400, f"bad gzip body: {exc}") from None
    return out


class Collector:
    """The request handlers, bound to one store, one policy and one optional SIEM forwarder."""

    def __init__(self, settings: Settings, store: Store, forwarder: Forwarder | None) -> None:
        self.settings = settings
        self.store = store
        self.forwarder = forwarder
        policy_file = settings.policy_file or default_policy_file()
        self._policy_doc = _Policy(policy_file)
        self._cookie_key = hashlib.sha256(
            b"dashboard-session\0" + settings.admin_token.encode("utf-8", "surrogatepass")
        ).digest()
        self._privacy = PrivacyCheck()
        self._throttle = TokenThrottle(free=settings.enroll_free_tries,
                                       lockout_after=settings.enroll_lockout_after,
                                       lockout_s=settings.enroll_lockout_s)

    def _new_session(self) -> str:
        """A dashboard session cookie: its expiry time and a MAC over it (no server state)."""
        expires = str(int(time.time()) + SESSION_S)
        mac = hmac.new(self._cookie_key, expires.encode(), hashlib.sha256).hexdigest()
        return f"{expires}.{mac}"

    def _valid_session(self, cookie: str) -> bool:
        expires, _, mac = cookie.partition(".")
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses
        if not (expires.isascii() and expires.isdigit()) or len(expires) > 12 \
                or int(expires) < time.time():
            return False
        good = hmac.new(self._cookie_key, expires.encode(), hashlib.sha256).hexdigest()
        return _same(mac, good)

    # -- helpers ------------------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"body over the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"body over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _is_admin(self, request: Request) -> bool:
        try:
            self._admin(request)
        except ApiError:
            return False
        return True

    def _admin(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "admin token required: Authorization: Bearer <token>",
                           {"WWW-Authenticate": "Bearer"})
        if not _same(token.strip(), self.settings.admin_token):
            raise ApiError(401, "wrong admin token", {"WWW-Authenticate": "Bearer"})

    # -- endpoints ----------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def enroll(self, request: Request) -> Response:
        raw = await self._body(request)
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise ApiError(422, "enrolment request must be a JSON object")
        _check_text(data)
        try:
            req = EnrollRequest.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, _validation_message(exc, "enroll")) from None
        leak = self._privacy.check_texts({"hostname": req.hostname, "branch": req.branch})
        if leak is not None:
            raise ApiError(422, f"enroll.{leak.field}: {leak.what}")
        addr = request.client.host if request.client else "unknown"
        wait = self._throttle.wait_s(addr)
        if wait > 0:
            count, locked = self._throttle.fail(addr)
            if locked:
                log.warning("enrolment locked for %s after %d failed attempts", addr, count)
            raise ApiError(429, f"too many wrong enrolment tokens from this address: retry in "
                                f"{int(wait) + 1} s", {"Retry-After": str(int(wait) + 1)})
        if not _same(req.token, self.settings.enroll_token):
            count, locked = self._throttle.fail(addr)
            log.warning("wrong enrolment token from %s (%d failures)%s", addr, count,
                        "; locked out" if locked else "")
            raise ApiError(403, "wrong enrolment token")
        self._throttle.succeed(addr)
        device_id = req.device_id or str(uuid.uuid4())
        replace = self._is_admin(request)
        try:
            key = await run_in_threadpool(self.store.enroll, device_id, req.hostname,
                                          req.branch, replace=replace)
        except DeviceExists:
            log.warning("refused to re-enrol device %s from %s without the admin token",
                        device_id, addr)
            raise ApiError(409, "this device id is enrolled already: giving it a new key needs "
                                "the admin token (Authorization: Bearer <admin token>)") from None
        log.info("device %s %s (branch %r)", device_id,
                 "re-enrolled by the admin" if replace else "enrolled", req.branch)
        return JSONResponse({"device_id": device_id, "key": base64.b64encode(key).decode()})

    async def post_events(self, request: Request) -> Response:
        device = request.headers.get(HEADER_DEVICE, "")
        stamp = request.headers.get(HEADER_TIMESTAMP, "")
        signature = request.headers.get(HEADER_SIGNATURE, "")
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        chain = request.headers.get(HEADER_CHAIN)
        raw = await self._body(request)
        result = await run_in_threadpool(self._accept, device, stamp, signature, encoding, raw,
                                         chain)
        return JSONResponse(result)

    def _device_key(self, device: str) -> bytes:
        try:
            key = self.store.device_key(device)
        except StoreKeyError as exc:
            log.error("%s: was the collector key file replaced?", exc)
            raise ApiError(401, "the collector cannot read this device's key: enrol it again "
                                "(ask the admin)") from None
        if key is None:
            raise ApiError(401, "unknown device: enrol it first (POST /api/v1/enroll)")
        return key

    def _authenticate(self, device: str, stamp: str, signature: str) -> tuple[bytes, int]:
        if not DEVICE_ID.match(device):
            raise ApiError(401, f"missing or malformed {HEADER_DEVICE} header")
        if not TIMESTAMP.match(stamp):
            raise ApiError(401, f"missing or malformed {HEADER_TIMESTAMP} (Unix seconds)")
        if not SIGNATURE.match(signature):
            raise ApiError(401, f"missing or malformed {HEADER_SIGNATURE} (hex HMAC-SHA256)")
        key = self._device_key(device)
        ts = int(stamp)
        skew = ts - int(time.time())
        if abs(skew) > self.settings.window_s:
            raise ApiError(401, f"timestamp outside the ±{self.settings.window_s} s window "
                                f"(off by {skew} s): check the PC clock")
        return key, ts

    def _accept(self, device: str, stamp: str, signature: str, encoding: str,
                raw: bytes, chain: str | None = None) -> dict[str, list[str]]:
        key, ts = self._authenticate(device, stamp, signature)
        head: ChainHead | None = None
        signed_stamp = stamp
        if chain is not None:
            m = CHAIN.match(chain.strip())
            if m is None:
                raise ApiError(401, f"malformed {HEADER_CHAIN}: give seq:hash (decimal "
                                    f"position, lowercase hex hash)")
            head = ChainHead(int(m.group(1)), m.group(2))
            # the chain head is signed with the batch: timestamp "." chain "." body
            signed_stamp = f"{stamp}.{chain.strip()}"
        if not verify(key, signed_stamp, raw, signature):
            raise ApiError(401, "bad signature")
        if encoding == "gzip":
            body = _decompress(raw, self.settings.max_body_bytes)
        elif encoding in ("", "identity"):
            body = raw
        else:
            raise ApiError(400, f"unsupported Content-Encoding {encoding[:40]!r} (use gzip)")
        data = parse_json(body)
        batch = self._validate(data, device)
        for i, ev in enumerate(batch):
            leak = self._privacy.check(ev)
            if leak is not None:
                self.store.record_refusal(device, str(ev.id), leak.field, leak.what)
                log.warning("refused a batch of device %s: %s", device, leak.message(i))
                raise ApiError(422, f"{leak.message(i)}; events must carry only masked values "
                                    f"and keyed hashes")
        try:
            result = self.store.ingest(device, signature.lower(), ts, batch, head)
        except ReplayedBatch:
            raise ApiError(409, "this signed batch was already received (replay)") from None
        if self.forwarder is not None and result.stored:
            self.forwarder.submit(result.stored)
        return {"acked": result.acked, "duplicates": result.duplicates}

    @staticmethod
    def _validate(data: Any, device: str) -> list[Event]:
        if not isinstance(data, dict) or set(data) != {"events"}:
            raise ApiError(422, 'batch must be {"events": [...]}')
        items = data["events"]
        if not isinstance(items, list):
            raise ApiError(422, '"events" must be a list')
        batch: list[Event] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ApiError(422, f"events[{i}] must be an object")
            _check_text(item, f"events[{i}]")
            try:
                ev = Event.model_validate(item)
            except ValidationError as exc:
                raise ApiError(422, _validation_message(exc, f"events[{i}]")) from None
            except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 has no UTC equivalent
                raise ApiError(422, f"events[{i}].time: out of range") from None
            latest = datetime.now(UTC) + timedelta(seconds=MAX_AHEAD_S)
            if not EARLIEST <= ev.time <= latest:
                raise ApiError(422, f"events[{i}].time: outside the accepted window (from "
                                    f"{EARLIEST.date()} to one day after the collector's "
                                    f"clock): check the PC clock")
            if ev.device.id != device:
                raise ApiError(403, f"events[{i}].device.id is not the signing device "
                                    f"({HEADER_DEVICE})")
            batch.append(ev)
        return batch

    async def get_events(self, request: Request) -> Response:
        self._admin(request)
        q = _event_query(request.query_params)
        rows = await run_in_threadpool(self.store.query, q)
        return JSONResponse({
            "events": [r.event for r in rows],
            "next_offset": q.offset + len(rows) if len(rows) == q.limit else None,
        })

    async def approval_codes(self, request: Request) -> Response:
        """Issue a one-time approval code (admin): bound to one device, one channel and a short
        window, derived from the device key so the PC verifies it offline (docs/PROTOCOL.md).
        Recorded first (its id, issuer and reason; never the code): no code leaves unrecorded."""
        self._admin(request)
        data = parse_json(await self._body(request))
        if not isinstance(data, dict):
            raise ApiError(422, "approval-code request must be a JSON object")
        _check_text(data, "approval-code request")
        try:
            req = ApprovalCodeRequest.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, _validation_message(exc, "approval-code request")) from None
        leak = self._privacy.check_texts({"issuer": req.issuer, "reason": req.reason})
        if leak is not None:
            raise ApiError(422, f"approval-code request.{leak.field}: {leak.what}; describe the "
                                f"case without customer data")
        addr = request.client.host if request.client else "unknown"
        issuer = req.issuer.strip() or f"admin token from {addr}"
        issued, key = await run_in_threadpool(self._issue, req, issuer)
        code = approval_code.code_for(key, req.device_id, issued.code_id)
        minutes = issued.slots * approval_code.SLOT_S // 60
        log.info("one-time approval code #%d issued for device %s, channel %s, %d minutes, by %s",
                 issued.seq, req.device_id, req.channel, minutes, issuer)
        return JSONResponse({"code": code, "grouped": approval_code.grouped(code),
                             "device_id": req.device_id, "channel": req.channel,
                             "valid_minutes": minutes, "id": issued.seq, "recorded": True,
                             "valid_until": _rfc3339(issued.valid_until_us),
                             "issuer": issued.issuer})

    def _issue(self, req: ApprovalCodeRequest, issuer: str) -> tuple[IssuedCode, bytes]:
        try:
            return self.store.issue_code(req.device_id, req.channel, req.minutes,
                                         issuer=issuer, reason=req.reason.strip())
        except StoreKeyError as exc:
            log.error("%s: was the collector key file replaced?", exc)
            raise ApiError(409, "the collector cannot read this device's key; enrol it again")\
                from None
        except LookupError:
            raise ApiError(404, f"unknown device {req.device_id!r}: enrol it first") from None
        except CodesExhausted as exc:
            raise ApiError(409, str(exc)) from None
        except approval_code.CodeError as exc:
            raise ApiError(422, str(exc)) from None

    async def get_codes(self, request: Request) -> Response:
        """The issued codes (admin), newest first: `?status=&device=&channel=&limit=&offset=`."""
        self._admin(request)
        q = _code_query(request.query_params)
        now = time.time_ns() // 1000
        rows = await run_in_threadpool(self.store.codes, q, now)
        return JSONResponse({
            "codes": [code_json(c, now) for c in rows],
            "next_offset": q.offset + len(rows) if len(rows) == q.limit else None,
        })

    async def get_devices(self, request: Request) -> Response:
        self._admin(request)
        devs = await run_in_threadpool(self.store.devices)
        return JSONResponse({"devices": [
            {
                "id": d.id, "hostname": d.hostname, "branch": d.branch,
                "enrolled": _rfc3339(d.enrolled_us), "last_seen": _rfc3339(d.last_seen_us),
                "last_heartbeat": _rfc3339(d.last_heartbeat_us),
                "last_heartbeat_device": _rfc3339(d.last_heartbeat_device_us),
            }
            for d in devs
        ]})

    async def policy(self, request: Request) -> Response:
        await run_in_threadpool(self._signed_get, request)
        body, etag = await run_in_threadpool(self._policy_doc.current)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        inm = request.headers.get("if-none-match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            if etag in tags or "*" in tags:
                return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/toml; charset=utf-8", headers=headers)

    def _signed_get(self, request: Request) -> None:
        """A GET signed by an enrolled device: HMAC over `timestamp + "." + path`."""
        device = request.headers.get(HEADER_DEVICE, "")
        stamp = request.headers.get(HEADER_TIMESTAMP, "")
        signature = request.headers.get(HEADER_SIGNATURE, "")
        key, _ts = self._authenticate(device, stamp, signature)
        if not verify(key, stamp, request.url.path.encode("utf-8", "surrogatepass"), signature):
            raise ApiError(401, "bad signature")

    async def openapi_json(self, request: Request) -> Response:
        return JSONResponse(openapi.spec())

    async def login(self, request: Request) -> Response:
        """POST /login with a form field `token`: sets the session cookie (never a URL token)."""
        origin = request.headers.get("origin")
        if origin is not None and origin != "null" and origin.rstrip("/") != _own_origin(request):
            raise ApiError(403, "sign-in from another site refused")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise ApiError(415, "sign in with the form (application/x-www-form-urlencoded)")
        raw = await self._body(request)
        if len(raw) > 4096:
            raise ApiError(413, "sign-in form over 4096 bytes")
        try:
            form = urllib.parse.parse_qs(raw.decode("utf-8"), max_num_fields=5)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "unreadable sign-in form") from None
        token = (form.get("token") or [""])[0]
        addr = request.client.host if request.client else "unknown"
        if not token or not _same(token, self.settings.admin_token):
            log.warning("failed dashboard sign-in from %s", addr)
            return HTMLResponse(dashboard.login_page(failed=True), status_code=401,
                                headers={"Cache-Control": "no-store"})
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, self._new_session(), max_age=SESSION_S, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
        return resp

    async def dashboard_page(self, request: Request) -> Response:
        # `?token=` no longer signs in (it lands in history and proxy logs): the form POSTs
        authed = self._valid_session(request.cookies.get(COOKIE, "")) or self._is_admin(request)
        if not authed:
            return HTMLResponse(dashboard.login_page(failed=False), status_code=401,
                                headers={"Cache-Control": "no-store"})
        overview = await run_in_threadpool(self.store.overview, self.settings.heartbeat_window_s)
        html = dashboard.render(overview, heartbeat_window_s=self.settings.heartbeat_window_s)
        return HTMLResponse(html, headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       "img-src data:; form-action 'self'; "
                                       "frame-ancestors 'none'",
            "Cache-Control": "no-store",
        })


    # The events page for compliance staff (signed in only): the query API's filters as a form.

    def _signed_in(self, request: Request) -> bool:
        return self._valid_session(request.cookies.get(COOKIE, "")) or self._is_admin(request)

    def _page_query(self, request: Request, limit: int, offset: int) -> tuple[dict[str, str],
                                                                              EventQuery]:
        filters = {k: request.query_params.get(k, "").strip() for k in dashboard.EVENT_FILTERS}
        params = {k: v for k, v in filters.items() if v}
        for name in ("since", "until"):  # the form's datetime-local: the collector's local time
            if name in params:
                try:
                    t = datetime.fromisoformat(params[name])
                except ValueError:
                    raise ApiError(400, f"{name}: not a time, e.g. 2026-01-31T09:00") from None
                params[name] = (t if t.tzinfo else t.astimezone()).isoformat()
        params.update(limit=str(limit), offset=str(offset), order="desc")
        return filters, _event_query(params)

    async def events_page(self, request: Request) -> Response:
        if not self._signed_in(request):
            return HTMLResponse(dashboard.login_page(failed=False), status_code=401,
                                headers={"Cache-Control": "no-store"})
        raw_page = request.query_params.get("page", "1")
        page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() else 1
        page = max(1, min(page, MAX_OFFSET // dashboard.PAGE_SIZE))
        try:
            filters, q = self._page_query(request, dashboard.PAGE_SIZE + 1,
                                          (page - 1) * dashboard.PAGE_SIZE)
        except ApiError as exc:
            filters = {k: request.query_params.get(k, "") for k in dashboard.EVENT_FILTERS}
            return HTMLResponse(dashboard.events_page([], filters, 1, False, exc.message),
                                status_code=400, headers=_PAGE_HEADERS)
        rows = await run_in_threadpool(self.store.query, q)
        html = dashboard.events_page(rows[:dashboard.PAGE_SIZE], filters, page,
                                     len(rows) > dashboard.PAGE_SIZE)
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    async def event_detail(self, request: Request) -> Response:
        if not self._signed_in(request):
            return HTMLResponse(dashboard.login_page(failed=False), status_code=401,
                                headers={"Cache-Control": "no-store"})
        raw = str(request.path_params["seq"])
        seq = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
        row = None if seq is None else await run_in_threadpool(self.store.event, seq)
        if row is None:
            raise ApiError(404, "no such event")
        return HTMLResponse(dashboard.event_detail_page(row), headers=_PAGE_HEADERS)

    async def events_csv(self, request: Request) -> Response:
        if not self._signed_in(request):
            raise ApiError(401, "sign in to the dashboard first")
        _filters, q = self._page_query(request, 1000, 0)
        parts = [dashboard.csv_header()]
        for offset in range(0, _EXPORT_MAX, 1000):
            q = dataclasses.replace(q, offset=offset)
            rows = await run_in_threadpool(self.store.query, q)
            parts.append(dashboard.csv_rows(rows))
            if len(rows) < q.limit:
                break
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        return Response("".join(parts), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="teller-guard-events-{stamp}.csv"',
            "Cache-Control": "no-store"})


    async def codes_page(self, request: Request) -> Response:
        """The issued one-time codes for IT and compliance (signed in only)."""
        if not self._signed_in(request):
            return HTMLResponse(dashboard.login_page(failed=False), status_code=401,
                                headers={"Cache-Control": "no-store"})
        filters = {k: request.query_params.get(k, "").strip() for k in dashboard.CODE_FILTERS}
        raw_page = request.query_params.get("page", "1")
        page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() else 1
        page = max(1, min(page, MAX_OFFSET // dashboard.PAGE_SIZE))
        params = {k: v for k, v in filters.items() if v}
        params.update(limit=str(dashboard.PAGE_SIZE + 1),
                      offset=str((page - 1) * dashboard.PAGE_SIZE))
        try:
            q = _code_query(params)
        except ApiError as exc:
            return HTMLResponse(dashboard.codes_page([], filters, 1, False, 0, exc.message),
                                status_code=400, headers=_PAGE_HEADERS)
        now = time.time_ns() // 1000
        rows = await run_in_threadpool(self.store.codes, q, now)
        html = dashboard.codes_page(rows[:dashboard.PAGE_SIZE], filters, page,
                                    len(rows) > dashboard.PAGE_SIZE, now)
        return HTMLResponse(html, headers=_PAGE_HEADERS)


def code_json(c: IssuedCode, now_us: int) -> dict[str, Any]:
    """One issued code as the API lists it (its id and history, never the code)."""
    return {
        "id": c.seq, "device_id": c.device_id, "hostname": c.hostname, "branch": c.branch,
        "channel": c.channel, "status": c.status(now_us), "issued": _rfc3339(c.issued_us),
        "valid_from": _rfc3339(c.valid_from_us), "valid_until": _rfc3339(c.valid_until_us),
        "issuer": c.issuer, "reason": c.reason, "uses": c.uses, "spent": _rfc3339(c.spent_us),
        "spent_event": c.spent_event, "last_use": _rfc3339(c.last_use_us),
    }


def _code_query(params: Mapping[str, str]) -> CodeQuery:
    device = params.get("device") or None
    if device is not None and not DEVICE_ID.match(device):
        raise ApiError(400, "device: a device id (letters, digits and ._:@-)")
    channel = params.get("channel") or None
    if channel is not None and channel not in approval_code.CHANNELS:
        raise ApiError(400, f"channel: one of {', '.join(sorted(approval_code.CHANNELS))}")
    status = params.get("status") or None
    if status is not None and status not in CODE_STATUSES:
        raise ApiError(400, f"status: one of {', '.join(CODE_STATUSES)}")
    q = _event_query({k: v for k, v in params.items() if k in ("limit", "offset")})
    return CodeQuery(device=device, channel=channel, status=status, limit=q.limit,
                     offset=q.offset)


_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
_EXPORT_MAX = 10_000  # events in one CSV export


def _own_origin(request: Request) -> str:
    host = request.headers.get("host", "")
    return f"{request.url.scheme}://{host}"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


def _rfc3339(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


_CHANNELS = {str(c) for c in Channel}


def _event_query(params: Mapping[str, str]) -> EventQuery:
    def text(name: str) -> str | None:
        value = params.get(name)
        if value is None:
            return None
        if len(value) > 256:
            raise ApiError(400, f"{name}: at most 256 characters")
        _check_text(value, name, 400)
        return value

    def when(name: str) -> int | None:
        value = params.get(name)
        if value is None:
            return None
        try:
            t = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ApiError(
                400, f"{name}: not an RFC 3339 time, e.g. 2026-01-31T09:00:00Z") from None
        if t.tzinfo is None:
            raise ApiError(400, f"{name}: give a UTC offset, e.g. 2026-01-31T09:00:00+08:00")
        try:
            return to_us(t)
        except OverflowError:
            raise ApiError(400, f"{name}: out of range") from None

    def number(name: str, default: int, low: int, high: int) -> int:
        value = params.get(name)
        if value is None:
            return default
        if not value.isascii() or not value.strip().isdigit() or len(value) > 12:
            raise ApiError(400, f"{name}: a whole number from {low} to {high}")
        n = int(value)
        if not low <= n <= high:
            raise ApiError(400, f"{name}: a whole number from {low} to {high}")
        return n

    channel = text("channel")
    if channel is not None and channel not in _CHANNELS:
        raise ApiError(400, f"channel: one of {', '.join(sorted(_CHANNELS))}")
    order = params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "order: asc or desc")
    return EventQuery(
        since_us=when("since"),
        until_us=when("until"),
        branch=text("branch"),
        device=text("device"),
        teller=text("teller"),
        channel=channel,
        type=text("type"),
        finding_type=text("finding_type"),
        outcome=text("outcome"),
        limit=number("limit", 100, 1, 1000),
        offset=number("offset", 0, 0, MAX_OFFSET),
        descending=order == "desc",
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail), exc.headers)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    log.error("database unavailable: %s", exc)
    return _error(503, "the collector's database is unavailable; retry later",
                  {"Retry-After": "5"})


async def _store_rejected(request: Request, exc: Exception) -> Response:
    return _error(422, str(exc))


async def _server_error(request: Request, exc: Exception) -> Response:
    # the traceback goes to the log (rate-limited), the client gets JSON without details
    log.error("internal error on %s %s: %s", request.method, request.url.path,
              type(exc).__name__, exc_info=exc)
    return _error(500, "internal error of the collector; see its log")


class SecurityHeaders:
    """ASGI middleware: frame protection on every answer, HSTS when served over TLS."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _v in headers}
                headers.append((b"x-frame-options", b"DENY"))
                headers.append((b"x-content-type-options", b"nosniff"))
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", FRAME_CSP.encode()))
                if tls:
                    headers.append((b"strict-transport-security",
                                    b"max-age=31536000; includeSubDomains"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings, *, store: Store | None = None,
               forwarder: Forwarder | None = None,
               on_ready: Callable[[], None] | None = None) -> Starlette:
    """Build the collector app; the database schema is created before this returns."""
    if not settings.enroll_token or not settings.admin_token:
        raise ValueError("the collector needs an enrolment token and an admin token")
    own_store = store is None
    if store is None:
        server_key = keywrap.load_or_create(
            settings.key_file or (lambda: default_key_file(settings.db_url)))
        store = Store(settings.db_url, replay_window_s=settings.window_s, server_key=server_key)
    store.create_schema()
    c = Collector(settings, store, forwarder)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if forwarder is not None:
            forwarder.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            if forwarder is not None:
                await run_in_threadpool(forwarder.stop)
            if own_store:
                store.close()

    routes = [
        Route("/", c.dashboard_page, methods=["GET"]),
        Route("/login", c.login, methods=["POST"]),
        Route("/events", c.events_page, methods=["GET"]),
        Route("/events.csv", c.events_csv, methods=["GET"]),
        Route("/events/{seq}", c.event_detail, methods=["GET"]),
        Route("/api/v1/health", c.health, methods=["GET"]),
        Route("/api/v1/enroll", c.enroll, methods=["POST"]),
        Route("/api/v1/events", c.post_events, methods=["POST"]),
        Route("/api/v1/events", c.get_events, methods=["GET"]),
        Route("/api/v1/devices", c.get_devices, methods=["GET"]),
        Route("/api/v1/approval-codes", c.approval_codes, methods=["POST"]),
        Route("/api/v1/approval-codes", c.get_codes, methods=["GET"]),
        Route("/codes", c.codes_page, methods=["GET"]),
        Route("/api/v1/policy", c.policy, methods=["GET"]),
        Route("/openapi.json", c.openapi_json, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            StoreUnavailable: _store_unavailable,
            StoreRejected: _store_rejected,
            Exception: _server_error,
        },
        middleware=[Middleware(SecurityHeaders)],
    )
    app.state.collector = c
    return app


def new_token() -> str:
    """A random token for enrolment or administration (printed once for IT to copy)."""
    return secrets.token_urlsafe(24)


__all__ = ["ApiError", "Collector", "Settings", "WeakTokenError", "check_token", "create_app",
           "default_key_file", "new_token"]
