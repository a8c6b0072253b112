"""Who may unlock and who may quit: the teller's PIN, the OS password check, the IT credential.

- Secrets are stored only as salted scrypt hashes (``scrypt$n=..,r=..,p=..$salt$hash``, base64).
- The teller's PIN hash lives in the OS keyring (service ``TellerGuard``,
  user ``teller-pin:<login>``) through `guard.secretstore`; where no usable keyring exists
  (plaintext keyrings are refused) it falls back to a 0600 file in the data directory.
- The OS password is checked where the platform can: Windows LogonUserW, Linux PAM through libpam
  (both via ctypes). Elsewhere only the PIN unlocks.
- Wrong tries are answered with a growing wait (`Backoff`).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from guard.secretstore import FILE, SecretStore, SecretStoreError, Slot

log = logging.getLogger(__name__)

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
PIN_MIN_LEN = 6


class CredentialError(Exception):
    """A stored credential cannot be read or written; the message says where and how to fix it."""


def hash_secret(secret: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash of `secret` in the self-describing form stored in policy/keyring."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"scrypt$n={n},r={r},p={p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_secret(secret: str, encoded: str) -> bool:
    """True when `secret` matches `encoded` (constant-time compare); False for a malformed hash."""
    try:
        scheme, params, salt_b64, digest_b64 = encoded.split("$")
        if scheme != "scrypt":
            return False
        values = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(digest_b64, validate=True)
        if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
            return False
        digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                                dklen=len(expected), maxmem=256 * 1024 * 1024)
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(digest, expected)


def check_pin_shape(pin: str) -> None:
    """Raise `ValueError("pin_too_short"|"pin_not_digits")` for an unacceptable PIN."""
    if not pin.isascii() or not pin.isdigit():
        raise ValueError("pin_not_digits")
    if len(pin) < PIN_MIN_LEN:
        raise ValueError("pin_too_short")


# ---------------------------------------------------------------------------------------------
# PIN storage.


class PinStore:
    """The teller's PIN hash in `guard.secretstore`: the OS keyring (plaintext keyrings refused),
    else a 0600 file under the data dir."""

    def __init__(self, teller: str, fallback_dir: Path, *, use_keyring: bool = True) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in (teller or "default"))
        self._slot = Slot(user=f"teller-pin:{teller or 'default'}",
                          file=fallback_dir / f"pin-{safe}.hash")
        self._secrets = SecretStore(use_keyring=use_keyring)
        self.backend = FILE

    def get(self) -> str | None:
        try:
            found = self._secrets.get(self._slot, what="PIN hash")
        except SecretStoreError as exc:
            raise CredentialError(f"{self._slot.file} cannot be read ({exc}); delete it and set "
                                  "the PIN again") from exc
        self.backend = found.place if found is not None else FILE
        return found.value if found is not None else None

    def set(self, encoded: str) -> None:
        try:
            self.backend = self._secrets.put(self._slot, encoded, what="PIN hash")
        except SecretStoreError as exc:
            raise CredentialError(f"the PIN cannot be stored in {self._slot.file} ({exc}); check "
                                  "that the data directory is writable") from exc


# ---------------------------------------------------------------------------------------------
# OS password checks.


class PasswordChecker(Protocol):
    available: bool
    reason: str

    def check(self, user: str, password: str) -> bool:
        """True when `password` is `user`'s OS password. Blocks up to a few seconds."""


class NoPasswordChecker:
    """The platform cannot check OS passwords here: only the PIN unlocks."""

    available = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def check(self, user: str, password: str) -> bool:
        return False


# PAM ABI (Linux-PAM, _pam_types.h)
_PAM_SUCCESS = 0
_PAM_PROMPT_ECHO_OFF = 1
_PAM_PROMPT_ECHO_ON = 2


class _PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class _PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


_CONV_FUNC = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(_PamMessage)),
    ctypes.POINTER(ctypes.POINTER(_PamResponse)), ctypes.c_void_p,
)


class _PamConv(ctypes.Structure):
    _fields_ = [("conv", _CONV_FUNC), ("appdata_ptr", ctypes.c_void_p)]


class PamPasswordChecker:
    """Linux PAM (libpam via ctypes), service `teller-guard` (falls back to PAM's `other`).

    `confdir` makes PAM read the service file from that directory instead of /etc/pam.d
    (pam_start_confdir, Linux-PAM ≥ 1.4), for a dedicated configuration or tests.
    """

    def __init__(self, service: str = "teller-guard", confdir: str | None = None) -> None:
        self.service = service
        self.confdir = confdir
        self.available = False
        self.reason = ""
        self._pam: Any = None
        self._libc: Any = None
        name = ctypes.util.find_library("pam") or "libpam.so.0"
        try:
            self._pam = ctypes.CDLL(name)
            self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError as exc:
            self.reason = f"libpam not found ({exc}); install libpam0g"
            return
        self._pam.pam_start.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.POINTER(_PamConv), ctypes.POINTER(ctypes.c_void_p)]
        self._pam.pam_start.restype = ctypes.c_int
        if confdir is not None:
            if not hasattr(self._pam, "pam_start_confdir"):
                self.reason = "this libpam has no pam_start_confdir (needs Linux-PAM 1.4)"
                return
            self._pam.pam_start_confdir.argtypes = [
                ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_PamConv), ctypes.c_char_p,
                ctypes.POINTER(ctypes.c_void_p)]
            self._pam.pam_start_confdir.restype = ctypes.c_int
        self._pam.pam_authenticate.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._pam.pam_authenticate.restype = ctypes.c_int
        self._pam.pam_acct_mgmt.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._pam.pam_acct_mgmt.restype = ctypes.c_int
        self._pam.pam_end.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._pam.pam_end.restype = ctypes.c_int
        self._libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
        self._libc.calloc.restype = ctypes.c_void_p
        self._libc.strdup.argtypes = [ctypes.c_char_p]
        self._libc.strdup.restype = ctypes.c_void_p
        self.available = True

    def check(self, user: str, password: str) -> bool:
        if not self.available or not user:
            return False
        secret = password.encode("utf-8")
        libc = self._libc

        def conv(n_messages: int, messages: Any, response: Any, _data: Any) -> int:
            # PAM frees the responses with free(): allocate them with the C allocator.
            block = libc.calloc(n_messages, ctypes.sizeof(_PamResponse))
            if not block:
                return 5  # PAM_BUF_ERR
            replies = ctypes.cast(block, ctypes.POINTER(_PamResponse))
            for i in range(n_messages):
                if messages[i].contents.msg_style in (_PAM_PROMPT_ECHO_OFF, _PAM_PROMPT_ECHO_ON):
                    replies[i].resp = libc.strdup(secret)
                    replies[i].resp_retcode = 0
            response[0] = replies
            return _PAM_SUCCESS

        callback = _CONV_FUNC(conv)
        conversation = _PamConv(callback, None)
        handle = ctypes.c_void_p()
        if self.confdir is not None:
            rc = self._pam.pam_start_confdir(self.service.encode(), user.encode("utf-8"),
                                             ctypes.byref(conversation), self.confdir.encode(),
                                             ctypes.byref(handle))
        else:
            rc = self._pam.pam_start(self.service.encode(), user.encode("utf-8"),
                                     ctypes.byref(conversation), ctypes.byref(handle))
        if rc != _PAM_SUCCESS:
            return False
        try:
            rc = self._pam.pam_authenticate(handle, 0)
            if rc == _PAM_SUCCESS:
                rc = self._pam.pam_acct_mgmt(handle, 0)
            return rc == _PAM_SUCCESS
        finally:
            self._pam.pam_end(handle, rc)


class WindowsPasswordChecker:
    """Windows LogonUserW (interactive logon type) via ctypes."""

    LOGON32_LOGON_INTERACTIVE = 2
    LOGON32_PROVIDER_DEFAULT = 0

    def __init__(self, advapi32: Any = None, kernel32: Any = None) -> None:
        self.available = False
        self.reason = ""
        self._advapi32 = advapi32
        self._kernel32 = kernel32
        if advapi32 is None and sys.platform == "win32":
            self._advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
            self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        if self._advapi32 is None:
            self.reason = "LogonUserW exists only on Windows"
            return
        self.available = True

    def check(self, user: str, password: str) -> bool:
        if not self.available:
            return False
        domain = "."
        if "\\" in user:
            domain, user = user.split("\\", 1)
        token = ctypes.c_void_p()
        ok = self._advapi32.LogonUserW(user, domain, password, self.LOGON32_LOGON_INTERACTIVE,
                                       self.LOGON32_PROVIDER_DEFAULT, ctypes.byref(token))
        if ok and token.value and self._kernel32 is not None:
            self._kernel32.CloseHandle(token)
        return bool(ok)


def os_password_checker() -> PasswordChecker:
    """The OS password check this platform offers (or a `NoPasswordChecker` saying why not)."""
    if sys.platform == "win32":
        return WindowsPasswordChecker()
    if sys.platform.startswith("linux"):
        pam = PamPasswordChecker()
        if pam.available:
            return pam
        return NoPasswordChecker(pam.reason)
    return NoPasswordChecker(f"no OS password check on {sys.platform}")


# ---------------------------------------------------------------------------------------------
# Back-off.


@dataclass(frozen=True, slots=True)
class BackoffState:
    failures: int
    retry_after_s: float


class Backoff:
    """Counts wrong tries; after `after` of them each further wrong try doubles the wait."""

    def __init__(self, after: int = 3, base_s: float = 5.0, max_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.after, self.base_s, self.max_s = after, base_s, max_s
        self._clock = clock
        self._failures = 0
        self._until = 0.0
        self._lock = threading.Lock()

    def wait_left(self) -> float:
        with self._lock:
            return max(0.0, self._until - self._clock())

    def failed(self) -> BackoffState:
        with self._lock:
            self._failures += 1
            over = self._failures - self.after
            wait = 0.0 if over < 0 else min(self.max_s, self.base_s * (2 ** over))
            self._until = self._clock() + wait
            return BackoffState(self._failures, wait)

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._until = 0.0

    @property
    def failures(self) -> int:
        with self._lock:
            return self._failures


# ---------------------------------------------------------------------------------------------
# The unlock decision.


@dataclass(frozen=True, slots=True)
class UnlockResult:
    """The answer to an unlock attempt.

    `ok` True means the overlay may go. Otherwise `retry_after_s` is how long the teller must wait
    before the next try (back-off after wrong tries; 0 when they may retry at once) and
    `message_key` says why, for the UI to word through tr(): ``ok``, ``wrong_credential``,
    ``backoff`` (still waiting), ``not_locked``, ``no_pin`` (no PIN set and no OS check).
    """

    ok: bool
    retry_after_s: float = 0.0
    message_key: str = "ok"


class TellerCredentials:
    """Checks what the teller types at the lock overlay: the OS password (mode ``auto`` where the
    platform can check it) or the teller's PIN, with back-off after wrong tries."""

    def __init__(self, *, teller: str, pins: PinStore, os_checker: PasswordChecker,
                 backoff: Backoff, mode: Callable[[], str] = lambda: "auto") -> None:
        self.teller = teller
        self.pins = pins
        self.os_checker = os_checker
        self.backoff = backoff
        self._mode = mode

    def os_check_usable(self) -> bool:
        return self._mode() == "auto" and self.os_checker.available

    def has_pin(self) -> bool:
        return self.pins.get() is not None

    def needs_pin_setup(self) -> bool:
        return not self.os_check_usable() and not self.has_pin()

    def set_pin(self, pin: str) -> None:
        check_pin_shape(pin)
        self.pins.set(hash_secret(pin))

    def verify(self, credential: str) -> UnlockResult:
        wait = self.backoff.wait_left()
        if wait > 0:
            return UnlockResult(False, wait, "backoff")
        stored = self.pins.get()
        if stored is None and not self.os_check_usable():
            return UnlockResult(False, 0.0, "no_pin")
        ok = stored is not None and verify_secret(credential, stored)
        if not ok and self.os_check_usable():
            ok = self.os_checker.check(self.teller, credential)
        if ok:
            self.backoff.succeeded()
            return UnlockResult(True, 0.0, "ok")
        state = self.backoff.failed()
        return UnlockResult(False, state.retry_after_s, "wrong_credential")
