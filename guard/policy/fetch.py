"""Downloads the central policy from the collector (signed GET, ETag) and hands it to the store."""


from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from guard.policy.store import PolicyStore

log = logging.getLogger(__name__)

POLICY_PATH = "/api/v1/policy"
# The batch signature of guard.delivery.protocol, spelled out here because policy sits below
# delivery in the layers: HMAC-SHA256 with the device key over `timestamp + "." + path`.
HEADER_DEVICE = "X-TG-Device"
HEADER_TIMESTAMP = "X-TG-Timestamp"
HEADER_SIGNATURE = "X-TG-Signature"


def signed_get_headers(device_id: str, key: bytes, path: str, timestamp: int) -> dict[str, str]:
    """The three protocol headers of a GET of `path` signed at `timestamp` (Unix seconds)."""
    msg = str(timestamp).encode("ascii") + b"." + path.encode("utf-8")
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: hmac.new(key, msg, hashlib.sha256).hexdigest(),
    }


Credentials = Any  # a DeviceCredentials (device_id, key), or a callable returning one or None


class CentralPolicyFetcher:
    """Fetches GET /api/v1/policy, signed with the device key, with If-None-Match.

    `credentials` is the device's `DeviceCredentials` or a callable returning the current ones
    (None while not enrolled). Without credentials the collector answers 401 and `fetch_once`
    reports "unauthorised".
    """

    def __init__(self, store: PolicyStore, endpoint: str, device_id: str = "",
                 timeout_s: float = 10.0, verify: Any = True,
                 credentials: Credentials | Callable[[], Credentials | None] | None = None
                 ) -> None:
        self._store = store
        self._endpoint = endpoint.rstrip("/")
        self._device_id = device_id
        self._timeout = timeout_s
        self._verify = verify
        self._credentials = credentials
        self.reachable: bool | None = None

    def _creds(self) -> Credentials | None:
        c = self._credentials
        if c is None:
            return None
        return c() if callable(c) else c

    def fetch_once(self) -> str:
        """One poll: "updated", "unchanged", "rejected", "unauthorised" or "unreachable"."""
        import httpx

        headers = {"Accept": "application/toml"}
        creds = self._creds()
        if creds is not None:
            # the same signature as a batch, over the path instead of a body
            headers.update(signed_get_headers(creds.device_id, creds.key, POLICY_PATH,
                                              int(time.time())))
        elif self._device_id:
            headers[HEADER_DEVICE] = self._device_id
        etag = self._store.central_etag
        if etag:
            headers["If-None-Match"] = etag
        try:
            resp = httpx.get(f"{self._endpoint}{POLICY_PATH}", headers=headers,
                             timeout=self._timeout, verify=self._verify)
        except httpx.HTTPError as exc:
            log.info("central policy not reachable: %s", exc.__class__.__name__)
            self.reachable = False
            return "unreachable"
        self.reachable = True
        if resp.status_code == 304:
            return "unchanged"
        if resp.status_code == 401:
            log.info("central policy refused: this PC is not enrolled there or its key is wrong")
            return "unauthorised"
        if resp.status_code != 200:
            log.info("central policy answered %s", resp.status_code)
            return "unreachable"
        ok = self._store.apply_central(resp.text, resp.headers.get("ETag"))
        return "updated" if ok else "rejected"
