"""Who may unlock and who may quit: the teller's PIN, the OS password check, the IT credential.

- Secrets are stored only as salted scrypt hashes (``scrypt$n=..,r=..,p=..$salt$hash``, base64).
- The teller's PIN hash lives in the OS keyring (service ``TellerGuard``,
  user ``teller-pin:<login>``) through `guard.secretstore`; where no usable keyring exists
  (plaintext keyrings are refused) it falls back to a 0600 file in the data directory.
- The OS password is checked where the platform can (`guard.platforms`: Windows LogonUserW, Linux
  PAM through libpam). Elsewhere only the PIN unlocks.
- Wrong tries are answered with a growing wait (`Backoff`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from guard import platforms
from guard.platforms.base import NoPasswordCheck, PasswordCheck, PlatformUnavailable
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


# The platform's password check (PAM on Linux, LogonUserW on Windows) and its fallback.
PasswordChecker = PasswordCheck
NoPasswordChecker = NoPasswordCheck


SHADOW_FILE = Path("/etc/shadow")


def os_check_works_for(checker: PasswordChecker, user: str,
                       shadow: Path = SHADOW_FILE) -> tuple[bool, str]:
    """Whether the OS password check can ever accept `user`'s password, and why not.

    Asked once at the agent's start, not at the lock: an account whose password is locked or
    empty in the shadow file (root on many demo and kiosk setups: ``*`` or ``!``) can never be
    checked, so the teller must get a PIN instead. Where the shadow file cannot be read (a
    teller is not root; PAM's helper reads it for them) the check is taken as working."""
    if not checker.usable:
        return False, checker.reason or "no OS password check on this platform"
    if not user:
        return False, "the teller's login is unknown"
    try:
        lines = shadow.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return True, ""
    for line in lines:
        name, _, rest = line.partition(":")
        if name != user:
            continue
        field = rest.split(":", 1)[0]
        if not field or field[0] in "!*":
            return False, f"the OS password of {user} is locked or empty"
        return True, ""
    return True, ""  # not a local account (LDAP, SSSD): PAM knows


def os_password_checker() -> PasswordChecker:
    """The OS password check of this session's platform (a `NoPasswordChecker` saying why when
    no platform backend runs here)."""
    try:
        return platforms.current_session().password
    except PlatformUnavailable as exc:
        return NoPasswordChecker(str(exc))


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
                 backoff: Backoff, mode: Callable[[], str] = lambda: "auto",
                 shadow: Path = SHADOW_FILE) -> None:
        self.teller = teller
        self.pins = pins
        self.os_checker = os_checker
        self.backoff = backoff
        self._mode = mode
        # Found out once, at start: "auto" falls back to the PIN when the OS check cannot work
        # for this teller (the PIN setup is offered at once, not after the first lock).
        self.os_works, self.os_problem = os_check_works_for(os_checker, teller, shadow)
        if not self.os_works:
            log.info("the OS password cannot unlock for %s (%s); the PIN does", teller,
                     self.os_problem)

    def os_check_usable(self) -> bool:
        return self._mode() == "auto" and self.os_works

    def matches(self, credential: str) -> bool:
        """True when `credential` is the teller's own PIN or OS password (no back-off counted):
        such a secret never stands for a supervisor."""
        stored = self.pins.get()
        if stored is not None and verify_secret(credential, stored):
            return True
        return self.os_check_usable() and self.os_checker.check(self.teller, credential)

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
