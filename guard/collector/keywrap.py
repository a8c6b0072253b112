"""Device keys encrypted at rest with a server key kept outside the database.

The batch signature is an HMAC, so the collector needs each device key itself, not a verifier.
It keeps them wrapped: `wrap(server_key, device_id, key)` XORs the key with an HMAC-SHA256
keystream over a random nonce and the device id, and appends an HMAC-SHA256 tag over the
ciphertext (encrypt-then-MAC, both from HMAC-SHA256 as a PRF: only the standard library). A stolen
database alone yields no device key; the server key lives in a 0600 file (or the environment)
that is not part of the database or its backups.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

PREFIX = b"TGK1"
NONCE = 12
TAG = 16
ENV_KEY = "TELLER_GUARD_COLLECTOR_KEY"


class KeyFileError(Exception):
    """The server key cannot be read or made; the message says what to fix."""


class UnwrapError(Exception):
    """A stored device key does not decrypt with this server key (wrong key file, or edited)."""


def _sub(server_key: bytes, label: bytes) -> bytes:
    return hmac.new(server_key, b"teller-guard collector\0" + label, hashlib.sha256).digest()


def _stream(enc: bytes, nonce: bytes, device_id: str, n: int) -> bytes:
    out = b""
    counter = 0
    ident = device_id.encode("utf-8", "surrogatepass")
    while len(out) < n:
        out += hmac.new(enc, nonce + counter.to_bytes(4, "big") + ident, hashlib.sha256).digest()
        counter += 1
    return out[:n]


def _tag(mac: bytes, nonce: bytes, device_id: str, ct: bytes) -> bytes:
    ident = device_id.encode("utf-8", "surrogatepass")
    msg = nonce + len(ident).to_bytes(2, "big") + ident + ct
    return hmac.new(mac, msg, hashlib.sha256).digest()[:TAG]


def is_wrapped(stored: bytes) -> bool:
    return stored.startswith(PREFIX) and len(stored) > len(PREFIX) + NONCE + TAG


def wrap(server_key: bytes, device_id: str, key: bytes) -> bytes:
    """The stored form of `key`: prefix, nonce, ciphertext, tag (64 bytes for a 32-byte key)."""
    nonce = secrets.token_bytes(NONCE)
    ks = _stream(_sub(server_key, b"enc"), nonce, device_id, len(key))
    ct = bytes(a ^ b for a, b in zip(key, ks, strict=True))
    return PREFIX + nonce + ct + _tag(_sub(server_key, b"mac"), nonce, device_id, ct)


def unwrap(server_key: bytes, device_id: str, stored: bytes) -> bytes:
    """The device key back; `UnwrapError` when the tag does not match (wrong server key)."""
    if not is_wrapped(stored):
        raise UnwrapError("not a wrapped key")
    body = stored[len(PREFIX):]
    nonce, ct, tag = body[:NONCE], body[NONCE:-TAG], body[-TAG:]
    if not hmac.compare_digest(tag, _tag(_sub(server_key, b"mac"), nonce, device_id, ct)):
        raise UnwrapError("device key does not decrypt with this collector key")
    ks = _stream(_sub(server_key, b"enc"), nonce, device_id, len(ct))
    return bytes(a ^ b for a, b in zip(ct, ks, strict=True))


def load_or_create(path: Path | Callable[[], Path]) -> bytes:
    """The server key: `TELLER_GUARD_COLLECTOR_KEY` (hex) if set, else `path` (made 0600 once).

    Several collector processes sharing one database must share this key: give them the same
    file or the same environment value. Creation is exclusive, so two processes starting at once
    end up with the same key.
    """
    override = os.environ.get(ENV_KEY, "").strip()
    if override:
        try:
            key = bytes.fromhex(override)
        except ValueError:
            raise KeyFileError(f"{ENV_KEY} must be hex (64 hex digits)") from None
        if len(key) < 16:
            raise KeyFileError(f"{ENV_KEY} is too short: give 32 random bytes as 64 hex digits")
        return key
    if callable(path):
        path = path()  # where the file goes is worked out only when no override is set
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, 0o600)  # whatever the umask
                os.write(fd, secrets.token_hex(32).encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        text = b""
        for _ in range(50):  # another process may be writing it right now
            text = path.read_bytes().strip()
            if text:
                break
            import time

            time.sleep(0.02)
    except OSError as exc:
        raise KeyFileError(f"collector key file {path}: {exc.strerror or exc}") from exc
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError(f"collector key file {path} is damaged (not hex); restore it from "
                           f"the backup (device keys stored with it cannot be read otherwise)"
                           ) from None
    if len(key) < 16:
        raise KeyFileError(f"collector key file {path} holds fewer than 16 bytes")
    return key
