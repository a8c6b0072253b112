"""The event-batch signature of the collector protocol (HMAC-SHA256 over timestamp and body).

Both sides use the same function: the shipper signs `timestamp + "." + body` with the device key,
the collector recomputes it. `body` is the exact bytes on the wire (after gzip when used). A batch
that carries the journal's chain head (``X-TG-Chain: <seq>:<hash>`` of its last event) signs it
too: the signature is then over `timestamp + "." + chain + "." + body` (docs/PROTOCOL.md).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER_DEVICE = "X-TG-Device"
HEADER_TIMESTAMP = "X-TG-Timestamp"
HEADER_SIGNATURE = "X-TG-Signature"
HEADER_CHAIN = "X-TG-Chain"
WINDOW_S = 300


def sign(key: bytes, timestamp: int | str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `timestamp + "." + body` with the device key."""
    msg = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def verify(key: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """True when `signature` is the batch signature; compared in constant time."""
    try:
        expected = sign(key, timestamp, body)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, signature.strip().lower())


def chain_value(seq: int, chain_hash: str) -> str:
    """The ``X-TG-Chain`` value: decimal position, colon, lowercase hex chain hash."""
    h = chain_hash.strip().lower()
    if seq < 0 or not 16 <= len(h) <= 128 or any(c not in "0123456789abcdef" for c in h):
        raise ValueError(f"not a chain head: {seq}:{chain_hash[:20]!r}")
    return f"{int(seq)}:{h}"


def sign_batch(key: bytes, timestamp: int | str, body: bytes, chain: str | None = None) -> str:
    """The batch signature: over `timestamp + "." + body`, or with a chain head
    `timestamp + "." + chain + "." + body` (the header value exactly as sent)."""
    stamp = str(timestamp) if chain is None else f"{timestamp}.{chain}"
    return sign(key, stamp, body)


def verify_batch(key: bytes, timestamp: str, body: bytes, signature: str,
                 chain: str | None = None) -> bool:
    """True when `signature` is the batch signature (with `chain` when one was sent)."""
    stamp = timestamp if chain is None else f"{timestamp}.{chain.strip()}"
    return verify(key, stamp, body, signature)


def signed_headers(device_id: str, key: bytes, body: bytes, timestamp: int,
                   chain: str | None = None) -> dict[str, str]:
    """The protocol headers for one batch body signed at `timestamp` (Unix seconds), with the
    chain head of its last event when given (`chain_value`)."""
    headers = {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign_batch(key, timestamp, body, chain),
    }
    if chain is not None:
        headers[HEADER_CHAIN] = chain
    return headers
