"""Downloads the central policy from the collector (ETag) and hands it to the store."""


from __future__ import annotations

import logging
from typing import Any

from guard.policy.store import PolicyStore

log = logging.getLogger(__name__)

class CentralPolicyFetcher:
    """Fetches GET /api/v1/policy with If-None-Match and hands new documents to the store."""

    def __init__(self, store: PolicyStore, endpoint: str, device_id: str = "",
                 timeout_s: float = 10.0, verify: Any = True) -> None:
        self._store = store
        self._endpoint = endpoint.rstrip("/")
        self._device_id = device_id
        self._timeout = timeout_s
        self._verify = verify
        self.reachable: bool | None = None

    def fetch_once(self) -> str:
        """One poll: returns "updated", "unchanged", "rejected" or "unreachable"."""
        import httpx

        headers = {"Accept": "application/toml"}
        if self._device_id:
            headers["X-TG-Device"] = self._device_id
        etag = self._store.central_etag
        if etag:
            headers["If-None-Match"] = etag
        try:
            resp = httpx.get(f"{self._endpoint}/api/v1/policy", headers=headers,
                             timeout=self._timeout, verify=self._verify)
        except httpx.HTTPError as exc:
            log.info("central policy not reachable: %s", exc.__class__.__name__)
            self.reachable = False
            return "unreachable"
        self.reachable = True
        if resp.status_code == 304:
            return "unchanged"
        if resp.status_code != 200:
            log.info("central policy answered %s", resp.status_code)
            return "unreachable"
        ok = self._store.apply_central(resp.text, resp.headers.get("ETag"))
        return "updated" if ok else "rejected"


