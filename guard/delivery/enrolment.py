"""Where this device's collector identity lives: endpoint and id in a file, key in the OS keyring.

The key signs every event batch (docs/PROTOCOL.md). It is kept by `guard.secretstore` in the OS
keyring (service ``TellerGuard``, user ``device-key:<device_id>``). Where no usable keyring exists
(a headless machine; the plaintext ``keyrings.alt`` backends are refused) the key goes to a file
readable only by its owner (mode 0600) in the data directory, and a log line says so. A key from
the guard's own embedded collector always goes to that file: the collector keeps it too, under a
key file in the same data directory, so the keyring would add no protection.
`enroll()` asks a collector for the key with an enrolment token (docs/PROTOCOL.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from guard.delivery.tls import CaBundleError, ssl_context
from guard.files import write_atomic
from guard.model import utc_now_iso
from guard.paths import ENV_ENDPOINT
from guard.secretstore import FILE, KEYRING, SERVICE, SecretStore, SecretStoreError, Slot

log = logging.getLogger(__name__)

__all__ = ["SERVICE", "STORE_FILE", "STORE_KEYRING", "DeviceCredentials", "DeviceKeyError",
           "DeviceKeyStore", "Enrolment", "enroll", "keyring_user"]

ENROLLMENT_FILE = "enrollment.json"
KEY_FILE = "device.key"

STORE_KEYRING = KEYRING
STORE_FILE = FILE
BY_TOKEN = "token"  # enrolled with IT's token (`enroll`, the service's token file or environment)
BY_EMBEDDED = "embedded"  # enrolled by the guard itself at its embedded local collector


class DeviceKeyError(Exception):
    """The device identity cannot be read or written; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class DeviceCredentials:
    """The collector, this device's id there, and the key that signs its batches."""

    endpoint: str
    device_id: str
    key: bytes

    def __repr__(self) -> str:  # never print the key
        return f"DeviceCredentials(endpoint={self.endpoint!r}, device_id={self.device_id!r})"


def keyring_user(device_id: str) -> str:
    return f"device-key:{device_id}"


class DeviceKeyStore:
    """Reads and writes this device's credentials under a data directory."""

    def __init__(self, data_dir: Path | None = None) -> None:
        if data_dir is None:
            from guard import paths

            data_dir = paths.data_dir()
        self.data_dir = Path(data_dir)
        self._secrets = SecretStore()

    @property
    def enrollment_path(self) -> Path:
        return self.data_dir / ENROLLMENT_FILE

    @property
    def key_path(self) -> Path:
        return self.data_dir / KEY_FILE

    def _slot(self, device_id: str) -> Slot:
        return Slot(user=keyring_user(device_id), file=self.key_path)

    def save(self, creds: DeviceCredentials, *, enrolled_by: str = BY_TOKEN) -> str:
        """Store the credentials; returns where the key went (``keyring`` or ``file``).

        `enrolled_by` says who enrolled: ``token`` (IT's enrolment token) or ``embedded`` (the
        guard itself, at its embedded local collector).
        """
        encoded = base64.b64encode(creds.key).decode("ascii")
        # The embedded collector keeps this key too, wrapped with a key file in the same data
        # directory: the OS keyring would protect nothing more, and asking it loads its
        # libraries into the agent (~10 MB with Secret Service).
        secrets = self._secrets if enrolled_by != BY_EMBEDDED else SecretStore(use_keyring=False)
        try:
            where = secrets.put(self._slot(creds.device_id), encoded, what="device key")
        except SecretStoreError as exc:
            raise DeviceKeyError(f"the device key cannot be stored ({exc}); check that the data "
                                 "directory is writable") from exc
        if where == STORE_FILE and enrolled_by != BY_EMBEDDED:
            log.warning("devicekey: no usable OS keyring on this machine (headless?); the device "
                        "key is stored in %s, readable only by its owner (mode 0600)",
                        self.key_path)
        meta = {
            "endpoint": creds.endpoint,
            "device_id": creds.device_id,
            "key_store": where,
            "enrolled_by": enrolled_by,
            "enrolled_at": utc_now_iso("seconds"),
        }
        write_atomic(self.enrollment_path, json.dumps(meta, indent=2).encode("utf-8"))
        return where

    def enrollment(self) -> dict[str, str] | None:
        """The non-secret enrolment record, or None when this device was never enrolled."""
        try:
            data = json.loads(self.enrollment_path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DeviceKeyError(f"{self.enrollment_path} is damaged ({exc}); enrol again with "
                                 "`teller-guard enroll URL --token-file FILE`") from exc
        if not isinstance(data, dict) or not data.get("device_id") or not data.get("endpoint"):
            raise DeviceKeyError(f"{self.enrollment_path} is incomplete; enrol again with "
                                 "`teller-guard enroll URL --token-file FILE`")
        return {str(k): str(v) for k, v in data.items()}

    def load(self) -> DeviceCredentials | None:
        """The stored credentials, or None when not enrolled. The endpoint env var overrides."""
        meta = self.enrollment()
        if meta is None:
            return None
        device_id = meta["device_id"]
        try:
            found = self._secrets.get(self._slot(device_id),
                                      keyring_first=meta.get("key_store") == STORE_KEYRING,
                                      what="device key")
        except SecretStoreError as exc:
            raise DeviceKeyError(f"{exc}; enrol again with `teller-guard enroll URL "
                                 f"--token-file FILE`") from exc
        if found is None:
            raise DeviceKeyError(
                f"the device key for {device_id} is in neither the OS keyring nor "
                f"{self.key_path}; enrol again with `teller-guard enroll URL --token-file FILE`")
        encoded = found.value
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DeviceKeyError("the stored device key is damaged; enrol again") from exc
        if len(key) < 16:
            raise DeviceKeyError("the stored device key is too short; enrol again")
        endpoint = os.environ.get(ENV_ENDPOINT) or meta["endpoint"]
        return DeviceCredentials(endpoint=endpoint, device_id=device_id, key=key)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """The outcome of `enroll()`: the id the collector gave and where the key was stored."""

    endpoint: str
    device_id: str
    key_store: str


def enroll(endpoint: str, token: str, *, hostname: str, branch: str = "",
           device_id: str | None = None, store: DeviceKeyStore | None = None,
           ca_bundle: str | None = None, timeout_s: float = 15.0,
           enrolled_by: str = BY_TOKEN, admin_token: str | None = None) -> Enrolment:
    """Enrol this device at a collector with an enrolment token and store its key.

    `admin_token` lets an enrolled device id get a new key (the collector refuses that to the
    fleet token alone, so nobody holding it can take over a PC).

    Raises `DeviceKeyError` with the collector's reason when it refuses (wrong token: 403), or
    when it cannot be reached or the CA bundle cannot be loaded.
    """
    import httpx

    endpoint = endpoint.rstrip("/")
    if not endpoint.startswith(("https://", "http://")):
        raise DeviceKeyError(f"the collector URL must start with https:// (or http:// for a "
                             f"collector on this PC): {endpoint!r}")
    body: dict[str, str] = {"token": token, "hostname": hostname, "branch": branch}
    if device_id:
        body["device_id"] = device_id
    try:
        verify = ssl_context(ca_bundle)
    except CaBundleError as exc:
        raise DeviceKeyError(str(exc)) from exc
    try:
        with httpx.Client(verify=verify, trust_env=True,
                          timeout=timeout_s) as client:
            headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
            resp = client.post(endpoint + "/api/v1/enroll", json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeviceKeyError(f"cannot reach the collector at {endpoint}: "
                             f"{type(exc).__name__}: {exc}") from exc
    if resp.status_code != 200:
        try:
            reason = str(resp.json().get("error", ""))[:300]
        except (ValueError, AttributeError):
            reason = resp.text[:200]
        hint = " (check the enrolment token)" if resp.status_code == 403 else ""
        raise DeviceKeyError(f"the collector refused the enrolment: {resp.status_code} "
                             f"{reason}{hint}")
    try:
        answer = resp.json()
        new_id = str(answer["device_id"])
        key = base64.b64decode(str(answer["key"]), validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise DeviceKeyError(f"the collector's enrolment answer is unreadable: {exc}") from exc
    if len(key) < 16:
        raise DeviceKeyError("the collector gave a key shorter than 16 bytes; refusing it")
    store = store or DeviceKeyStore()
    where = store.save(DeviceCredentials(endpoint=endpoint, device_id=new_id, key=key),
                       enrolled_by=enrolled_by)
    return Enrolment(endpoint=endpoint, device_id=new_id, key_store=where)


