"""Where this device's collector identity lives: endpoint and id in a file, key in the OS keyring.

The key signs every event batch (docs/PROTOCOL.md). It is kept in the OS keyring (service
``TellerGuard``, user ``device-key:<device_id>``): Windows Credential Manager, Secret Service on a
Linux desktop. A headless machine has no usable keyring (keyring's ``fail`` backend); then the key
goes to a file readable only by its owner (mode 0600) in the data directory, and a log line says so.
The plaintext ``keyrings.alt`` backends are never used, even if installed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guard.paths import ENV_ENDPOINT, write_atomic

log = logging.getLogger(__name__)

SERVICE = "TellerGuard"
ENROLLMENT_FILE = "enrollment.json"
KEY_FILE = "device.key"

STORE_KEYRING = "keyring"
STORE_FILE = "file"


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


def _usable_keyring() -> Any | None:
    """The active keyring backend if it really keeps secrets, else None (with the reason logged)."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        log.warning("devicekey: the keyring package is not installed")
        return None
    backend = keyring.get_keyring()
    module = type(backend).__module__
    if module.startswith("keyrings.alt"):
        log.error("devicekey: refusing the plaintext keyring backend %s; uninstall keyrings.alt",
                  type(backend).__name__)
        return None
    if isinstance(backend, fail.Keyring):
        return None
    chained = getattr(backend, "backends", None)
    if chained is not None and not chained:
        return None
    return backend


class DeviceKeyStore:
    """Reads and writes this device's credentials under a data directory."""

    def __init__(self, data_dir: Path | None = None) -> None:
        if data_dir is None:
            from guard import paths

            data_dir = paths.data_dir()
        self.data_dir = Path(data_dir)

    @property
    def enrollment_path(self) -> Path:
        return self.data_dir / ENROLLMENT_FILE

    @property
    def key_path(self) -> Path:
        return self.data_dir / KEY_FILE

    def save(self, creds: DeviceCredentials) -> str:
        """Store the credentials; returns where the key went (``keyring`` or ``file``)."""
        encoded = base64.b64encode(creds.key).decode("ascii")
        where = STORE_FILE
        backend = _usable_keyring()
        if backend is not None:
            try:
                backend.set_password(SERVICE, keyring_user(creds.device_id), encoded)
                # a backend that accepts a secret it cannot give back is no store at all
                if backend.get_password(SERVICE, keyring_user(creds.device_id)) == encoded:
                    where = STORE_KEYRING
                else:
                    log.warning("devicekey: the OS keyring did not return the device key it "
                                "accepted; keeping it in a private file instead")
            except Exception as exc:  # keyring backends raise many types (D-Bus, Win32, locked)
                log.warning("devicekey: the OS keyring refused the device key (%s: %s)",
                            type(exc).__name__, exc)
        if where == STORE_FILE:
            write_atomic(self.key_path, encoded.encode("ascii"))
            log.warning("devicekey: no usable OS keyring on this machine (headless?); the device "
                        "key is stored in %s, readable only by its owner (mode 0600)",
                        self.key_path)
        else:
            self.key_path.unlink(missing_ok=True)  # an older file copy must not linger
        meta = {
            "endpoint": creds.endpoint,
            "device_id": creds.device_id,
            "key_store": where,
            "enrolled_at": datetime.now(UTC).isoformat(timespec="seconds"),
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
                                 "`teller-guard enroll URL TOKEN`") from exc
        if not isinstance(data, dict) or not data.get("device_id") or not data.get("endpoint"):
            raise DeviceKeyError(f"{self.enrollment_path} is incomplete; enrol again with "
                                 "`teller-guard enroll URL TOKEN`")
        return {str(k): str(v) for k, v in data.items()}

    def load(self) -> DeviceCredentials | None:
        """The stored credentials, or None when not enrolled. The endpoint env var overrides."""
        meta = self.enrollment()
        if meta is None:
            return None
        device_id = meta["device_id"]
        encoded: str | None = None
        backend = _usable_keyring()
        if backend is not None and meta.get("key_store") == STORE_KEYRING:
            try:
                encoded = backend.get_password(SERVICE, keyring_user(device_id))
            except Exception as exc:  # see save()
                log.warning("devicekey: cannot read the device key from the OS keyring (%s: %s)",
                            type(exc).__name__, exc)
        if encoded is None:
            try:
                encoded = self.key_path.read_text("ascii").strip()
            except FileNotFoundError:
                raise DeviceKeyError(
                    f"the device key for {device_id} is in neither the OS keyring nor "
                    f"{self.key_path}; enrol again with `teller-guard enroll URL TOKEN`") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise DeviceKeyError(f"cannot read {self.key_path}: {exc}") from exc
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
           ca_bundle: str | None = None, timeout_s: float = 15.0) -> Enrolment:
    """Enrol this device at a collector with IT's enrolment token and store its key.

    Raises `DeviceKeyError` with the collector's reason when it refuses (wrong token: 403).
    """
    import httpx

    from guard.delivery.shipper import ssl_context

    endpoint = endpoint.rstrip("/")
    if not endpoint.startswith(("https://", "http://")):
        raise DeviceKeyError(f"the collector URL must start with https:// (or http:// for a "
                             f"collector on this PC): {endpoint!r}")
    body: dict[str, str] = {"token": token, "hostname": hostname, "branch": branch}
    if device_id:
        body["device_id"] = device_id
    try:
        with httpx.Client(verify=ssl_context(ca_bundle), trust_env=True,
                          timeout=timeout_s) as client:
            resp = client.post(endpoint + "/api/v1/enroll", json=body)
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
    where = store.save(DeviceCredentials(endpoint=endpoint, device_id=new_id, key=key))
    return Enrolment(endpoint=endpoint, device_id=new_id, key_store=where)


