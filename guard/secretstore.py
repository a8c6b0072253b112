"""The guard's one secret store: the OS keyring, or a 0600 file where no real keyring exists.

Secrets (the device key, the teller's PIN hash) go to the OS keyring under the service
``TellerGuard``: Windows Credential Manager, Secret Service on a Linux desktop. A keyring that
would not keep a secret safely is refused with the reason (`NoUsableKeyring`): keyring's ``fail``
backend (a headless machine), an empty chain, and the plaintext ``keyrings.alt`` backends, even if
installed and active. Then, and whenever the keyring refuses or loses a secret, the secret goes to
a file readable only by its owner (mode 0600) next to the guard's data.

The backend is the platform's own (WinVaultKeyring on Windows, Secret Service on Linux, only when a
D-Bus session bus exists), imported alone: keyring's discovery imports every installed backend
through entry points (Secret Service's D-Bus and crypto stack even where no bus exists, ~10 MB of
the agent's idle memory; and entry points break in PyInstaller builds). Where keyring is told
which backend to use (``PYTHON_KEYRING_BACKEND``, its ``keyringrc.cfg``, or `keyring.set_keyring`
in this process) its own choice is taken, and checked as above.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
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


KEYRING_ENV = "PYTHON_KEYRING_BACKEND"
SESSION_BUS_ENV = "DBUS_SESSION_BUS_ADDRESS"

# The platform's own backend per `sys.platform` prefix: (module, class) in the keyring package.
OS_BACKENDS = {
    "win32": ("keyring.backends.Windows", "WinVaultKeyring"),
    "linux": ("keyring.backends.SecretService", "Keyring"),
    "darwin": ("keyring.backends.macOS", "Keyring"),
}


def keyring_config_file() -> Path | None:
    """keyring's own configuration file (``keyring.util.platform_.config_root()``), found without
    importing keyring; None when the home directory is unknown."""
    try:
        if sys.platform == "win32":
            base = Path(os.environ.get("LOCALAPPDATA", os.environ.get("ProgramData", ".")))
            return base / "Python Keyring" / "keyringrc.cfg"
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    except RuntimeError:  # Path.home() without HOME or a passwd entry
        return None
    return base / "python_keyring" / "keyringrc.cfg"


def keyring_is_told() -> bool:
    """Whether keyring has been told which backend to use: one set in this process
    (`keyring.set_keyring`), ``PYTHON_KEYRING_BACKEND``, or its ``keyringrc.cfg``."""
    core = sys.modules.get("keyring.core")
    if core is not None and getattr(core, "_keyring_backend", None) is not None:
        return True
    if os.environ.get(KEYRING_ENV, "").strip():
        return True
    config = keyring_config_file()
    return config is not None and config.is_file()


def os_keyring() -> Any:
    """The platform's own keyring backend, imported alone (no discovery); raises
    `NoUsableKeyring` with the reason when it cannot keep secrets here."""
    key = next((k for k in OS_BACKENDS if sys.platform.startswith(k)), None)
    if key is None:
        raise NoUsableKeyring(f"no OS keyring backend for {sys.platform}")
    if key == "linux" and not os.environ.get(SESSION_BUS_ENV, "").strip():
        # Secret Service is reached over the session bus only (jeepney reads just this variable)
        raise NoUsableKeyring(f"no OS keyring on this machine: no D-Bus session bus "
                              f"({SESSION_BUS_ENV} is unset), so no Secret Service (headless?)")
    module, name = OS_BACKENDS[key]
    try:
        backend_class = getattr(importlib.import_module(module), name)
    except ImportError:
        raise NoUsableKeyring("the keyring package is not installed") from None
    try:
        backend_class.priority  # noqa: B018  # keyring's viability check: raises with its reason
    except Exception as exc:  # RuntimeError by contract; D-Bus and Win32 errors as they come
        raise NoUsableKeyring(f"the OS keyring ({module}.{name}) cannot run here: {exc}") from exc
    return backend_class()


def usable_keyring() -> Any:
    """The keyring backend when it really keeps secrets; else raises `NoUsableKeyring`."""
    if not keyring_is_told():
        return os_keyring()
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
        """The secret from its file when there is one, else from the keyring (unless
        `keyring_first` is False); None when it is in neither. Raises `SecretStoreError` when
        the file exists but is unreadable.

        A file copy is always the newest: `put` removes it whenever the keyring takes the
        secret, so a file means the keyring refused or lost the last one (the keyring's copy, if
        any, is older). Reading it first also keeps the keyring's libraries out of a process
        whose secrets are in files (~10 MB of the agent's memory with Secret Service)."""
        value = self.files.get(slot)
        if value is not None:
            return Found(value, FILE)
        store = self.keyring() if keyring_first else None
        if store is not None:
            try:
                value = store.get(slot)
                if value:
                    return Found(value, KEYRING)
            except Exception as exc:  # see put()
                log.warning("secret store: cannot read the %s from the OS keyring (%s: %s)",
                            what, type(exc).__name__, exc)
        return None
