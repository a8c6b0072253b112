"""The event-batch signature of the collector protocol (HMAC-SHA256 over timestamp and body).

Both sides use the same function: the shipper signs `timestamp + "." + body` with the device key,
the collector recomputes it. `body` is the exact bytes on the wire (after gzip when used).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER_DEVICE = "X-TG-Device"
HEADER_TIMESTAMP = "X-TG-Timestamp"
HEADER_SIGNATURE = "X-TG-Signature"
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


def signed_headers(device_id: str, key: bytes, body: bytes, timestamp: int) -> dict[str, str]:
    """The three protocol headers for one batch body signed at `timestamp` (Unix seconds)."""
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(key, timestamp, body),
    }
