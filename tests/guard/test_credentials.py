"""Credentials: scrypt hashes, the PIN store (keyring and file fallback), the real PAM conversation
and which OS password check the platform gives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from guard.credentials import (
    NoPasswordChecker,
    PinStore,
    hash_secret,
    os_password_checker,
    verify_secret,
)
from guard.platforms._fake import FakePasswordCheck
from guard.platforms._linux.password import PamPasswordChecker
from guard.platforms._windows.password import WindowsPasswordChecker
from tests.support.keyrings import MemoryKeyring, active_keyring


def test_hash_is_salted_and_verifies() -> None:
    a, b = hash_secret("246810"), hash_secret("246810")
    assert a != b and a.startswith("scrypt$n=16384,r=8,p=1$")
    assert verify_secret("246810", a) and verify_secret("246810", b)
    assert not verify_secret("246811", a)


@pytest.mark.parametrize("bad", ["", "plain", "scrypt$n=1$x$y", "md5$a$b$c",
                                 "scrypt$n=16384,r=8,p=1$!!$??",
                                 "scrypt$n=1073741824,r=8,p=1$AAAA$AAAA"])
def test_malformed_hashes_never_verify(bad: str) -> None:
    assert not verify_secret("anything", bad)


@pytest.fixture
def restore_keyring():  # type: ignore[no-untyped-def]
    with active_keyring(fail.Keyring()):
        yield


def test_pin_goes_to_the_keyring_when_there_is_one(tmp_path: Path, restore_keyring) -> None:  # type: ignore[no-untyped-def]
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    store = PinStore("teller1", tmp_path)
    store.set(hash_secret("135790"))
    assert store.backend == "keyring"
    assert list(backend.secrets) == [("TellerGuard", "teller-pin:teller1")]
    assert not list(tmp_path.iterdir())
    assert verify_secret("135790", store.get() or "")


def test_pin_falls_back_to_a_private_file(tmp_path: Path, restore_keyring) -> None:  # type: ignore[no-untyped-def]
    keyring.set_keyring(fail.Keyring())
    store = PinStore("teller/../x", tmp_path)
    assert store.get() is None
    store.set(hash_secret("135790"))
    (path,) = tmp_path.iterdir()
    assert path.parent == tmp_path and path.name == "pin-teller_.._x.hash"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "135790" not in path.read_text()
    assert verify_secret("135790", PinStore("teller/../x", tmp_path).get() or "")


# The PAM and LogonUserW checkers are tested with the platform contracts
# (tests/guard/platforms/test_linux.py, test_windows.py); here: which one credentials uses.


@pytest.fixture
def pam_confdir(tmp_path: Path) -> Path:
    """A PAM configuration whose auth step runs a script that accepts one password."""
    script = tmp_path / "check.sh"
    script.write_text('#!/bin/sh\nread pw\n[ "$pw" = "right-password" ]\n')
    script.chmod(0o755)
    conf = tmp_path / "pam.d"
    conf.mkdir()
    (conf / "teller-guard-test").write_text(
        f"auth required pam_exec.so expose_authtok quiet {script}\n"
        "account required pam_permit.so\n")
    return conf


@pytest.mark.skipif(not os.path.exists("/usr/lib/x86_64-linux-gnu/security/pam_exec.so"),
                    reason="needs libpam-modules (pam_exec.so)")
def test_pam_conversation_hands_over_the_password(pam_confdir: Path) -> None:
    checker = PamPasswordChecker("teller-guard-test", confdir=str(pam_confdir))
    assert checker.usable, checker.reason
    assert checker.check("teller1", "right-password")
    assert not checker.check("teller1", "wrong-password")
    assert not checker.check("", "right-password")


def test_pam_on_this_system_refuses_a_wrong_password() -> None:
    checker = PamPasswordChecker()
    assert checker.usable
    assert not checker.check("root", "certainly-not-the-password")


def test_the_os_checker_comes_from_the_session_platform(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELLER_GUARD_PLATFORM", raising=False)
    assert isinstance(os_password_checker(), PamPasswordChecker)  # this machine is Linux
    monkeypatch.setenv("TELLER_GUARD_PLATFORM", "windows")
    checker = os_password_checker()
    assert isinstance(checker, WindowsPasswordChecker) and not checker.usable
    monkeypatch.setenv("TELLER_GUARD_PLATFORM", "fake")
    assert isinstance(os_password_checker(), FakePasswordCheck)


def test_no_platform_means_no_os_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELLER_GUARD_PLATFORM", "amiga")
    checker = os_password_checker()
    assert isinstance(checker, NoPasswordChecker) and not checker.usable
    assert "not one of linux, windows, fake" in checker.reason
    assert not checker.check("teller1", "anything")
