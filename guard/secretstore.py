"""The guard's one secret store: the OS keyring, or a 0600 file where no real keyring exists.

Secrets (the device key, the teller's PIN hash) go to the OS keyring under the service
``TellerGuard``: Windows Credential Manager, Secret Service on a Linux desktop. A keyring that
would not keep a secret safely is refused with the reason (`NoUsableKeyring`): keyring's ``fail``
backend (a headless machine), an empty chain, and the plaintext ``keyrings.alt`` backends, even if
installed and active. Then, and whenever the keyring refuses or loses a secret, the secret goes to
a file readable only by its owner (mode 0600) next to the guard's data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from guard.files import write_atomic

log = logging.getLogger(__name__)

SERVICE = "TellerGuard"
KEYRING = "keyring"
FILE = "file"


class SecretStoreError(Exception):
    """A secret's private file cannot be read or written; the message names the file."""


class NoUsableKeyring(RuntimeError):
    """The OS keyring cannot keep secrets here; the message says why."""


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one secret lives: its user name in the keyring, and its file where there is none."""

    user: str
    file: Path


@dataclass(frozen=True, slots=True)
class Found:
    """A secret that was read, and where it came from (`KEYRING` or `FILE`)."""

    value: str
    place: str

    def __repr__(self) -> str:  # never print the secret
        return f"Found(place={self.place!r})"


def usable_keyring() -> Any:
    """The active keyring backend when it really keeps secrets; else raises `NoUsableKeyring`."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        raise NoUsableKeyring("the keyring package is not installed") from None
    backend = keyring.get_keyring()
    members = getattr(backend, "backends", None)
    for part in [backend, *(members or [])]:
        if type(part).__module__.startswith("keyrings.alt"):
            raise NoUsableKeyring(f"refusing the plaintext keyring backend "
                                  f"{type(part).__name__}; uninstall keyrings.alt")
    if isinstance(backend, fail.Keyring):
        raise NoUsableKeyring("no OS keyring on this machine (keyring's fail backend; headless?)")
    if members is not None and not members:
        raise NoUsableKeyring("no OS keyring backend is available")
    return backend


class SecretBackend(Protocol):
    """One place secrets can be kept; `get` answers None for a secret never stored."""

    place: str

    def get(self, slot: Slot) -> str | None: ...
    def set(self, slot: Slot, value: str) -> None: ...
    def delete(self, slot: Slot) -> None: ...


class FileSecrets:
    """Secrets in files readable only by their owner (mode 0600), one file per slot."""

    place = FILE

    def get(self, slot: Slot) -> str | None:
        try:
            return slot.file.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretStoreError(f"cannot read {slot.file}: {exc}") from exc

    def set(self, slot: Slot, value: str) -> None:
        try:
            write_atomic(slot.file, value.encode("utf-8"))
        except OSError as exc:
            raise SecretStoreError(f"cannot write {slot.file}: {exc}") from exc

    def delete(self, slot: Slot) -> None:
        try:
            slot.file.unlink(missing_ok=True)
        except OSError as exc:
            raise SecretStoreError(f"cannot delete {slot.file}: {exc}") from exc


class KeyringSecrets:
    """Secrets in a keyring backend under the service ``TellerGuard``. Backend errors (D-Bus,
    Win32, a locked keyring) come through as they are: `SecretStore` falls back on them."""

    place = KEYRING

    def __init__(self, backend: Any, service: str = SERVICE) -> None:
        self.backend = backend
        self.service = service

    def get(self, slot: Slot) -> str | None:
        value = self.backend.get_password(self.service, slot.user)
        return None if value is None else str(value)

    def set(self, slot: Slot, value: str) -> None:
        self.backend.set_password(self.service, slot.user, value)

    def delete(self, slot: Slot) -> None:
        from keyring.errors import PasswordDeleteError

        try:
            self.backend.delete_password(self.service, slot.user)
        except PasswordDeleteError:
            pass  # never stored: nothing to delete


class SecretStore:
    """The OS keyring when it is usable, else the 0600 files; what the keyring refuses or does
    not give back goes to the file. The keyring is looked up on every call, so a keyring that
    appears (or is set by a test) is used from then on."""

    def __init__(self, *, use_keyring: bool = True) -> None:
        self.use_keyring = use_keyring
        self.files = FileSecrets()

    def keyring(self) -> KeyringSecrets | None:
        """The usable keyring, or None (the reason logged: an error for a refused plaintext one)."""
        if not self.use_keyring:
            return None
        try:
            return KeyringSecrets(usable_keyring())
        except NoUsableKeyring as exc:
            if "plaintext" in str(exc):
                log.error("secret store: %s", exc)
            else:
                log.debug("secret store: %s", exc)
            return None

    def put(self, slot: Slot, value: str, what: str = "secret") -> str:
        """Keep `value`; returns where it went (`KEYRING` or `FILE`).

        Raises `SecretStoreError` when it had to go to the file and the file cannot be written.
        """
        store = self.keyring()
        if store is not None:
            try:
                store.set(slot, value)
                # a backend that accepts a secret it cannot give back is no store at all
                if store.get(slot) == value:
                    self.files.delete(slot)  # an older file copy must not linger
                    return KEYRING
                log.warning("secret store: the OS keyring did not return the %s it accepted; "
                            "keeping it in a private file instead", what)
            except SecretStoreError:
                raise
            except Exception as exc:  # keyring backends raise many types (D-Bus, Win32, locked)
                log.warning("secret store: the OS keyring refused the %s (%s: %s)", what,
                            type(exc).__name__, exc)
        self.files.set(slot, value)
        return FILE

    def get(self, slot: Slot, *, keyring_first: bool = True, what: str = "secret") -> Found | None:
        """The secret from the keyring (unless `keyring_first` is False) or else its file; None
        when it is in neither. Raises `SecretStoreError` when the file exists but is unreadable."""
        store = self.keyring() if keyring_first else None
        if store is not None:
            try:
                value = store.get(slot)
                if value:
                    return Found(value, KEYRING)
            except Exception as exc:  # see put()
                log.warning("secret store: cannot read the %s from the OS keyring (%s: %s)",
                            what, type(exc).__name__, exc)
        value = self.files.get(slot)
        return None if value is None else Found(value, FILE)
