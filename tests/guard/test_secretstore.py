"""The secret store: one contract for the 0600 file store and a keyring backend, how the store
chooses between them, and the refusal of plaintext keyrings by both users (device key, PIN)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from guard.credentials import PinStore, hash_secret, verify_secret
from guard.delivery.enrolment import STORE_FILE, DeviceCredentials, DeviceKeyStore
from guard.secretstore import (
    FILE,
    KEYRING,
    FileSecrets,
    KeyringSecrets,
    NoUsableKeyring,
    SecretBackend,
    SecretStore,
    SecretStoreError,
    Slot,
    usable_keyring,
)
from tests.support.keyrings import MemoryKeyring, PlaintextKeyring, active_keyring


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    with active_keyring(MemoryKeyring()) as backend:
        yield backend


@pytest.fixture
def use_keyring() -> Iterator[Callable[[KeyringBackend], None]]:
    """Makes a backend the active keyring for one test; the one before comes back after."""
    with active_keyring(fail.Keyring()):
        yield keyring.set_keyring


def slot(tmp_path: Path, name: str = "a") -> Slot:
    return Slot(user=f"test-{name}", file=tmp_path / f"{name}.secret")


class SecretBackendContract:
    """What every place secrets are kept must do (run against each backend below)."""

    @pytest.fixture
    def backend(self) -> SecretBackend:
        raise NotImplementedError

    def test_a_secret_never_stored_is_none(self, backend: SecretBackend, tmp_path: Path) -> None:
        assert backend.get(slot(tmp_path)) is None

    def test_a_stored_secret_comes_back(self, backend: SecretBackend, tmp_path: Path) -> None:
        backend.set(slot(tmp_path), "scrypt$n=16384,r=8,p=1$c2FsdA==$aGFzaA==")
        assert backend.get(slot(tmp_path)) == "scrypt$n=16384,r=8,p=1$c2FsdA==$aGFzaA=="

    def test_storing_again_replaces(self, backend: SecretBackend, tmp_path: Path) -> None:
        backend.set(slot(tmp_path), "first")
        backend.set(slot(tmp_path), "second")
        assert backend.get(slot(tmp_path)) == "second"

    def test_slots_are_kept_apart(self, backend: SecretBackend, tmp_path: Path) -> None:
        backend.set(slot(tmp_path, "a"), "alpha")
        backend.set(slot(tmp_path, "b"), "beta")
        assert (backend.get(slot(tmp_path, "a")), backend.get(slot(tmp_path, "b"))) == (
            "alpha", "beta")

    def test_delete_forgets_and_deleting_nothing_is_fine(self, backend: SecretBackend,
                                                          tmp_path: Path) -> None:
        backend.set(slot(tmp_path), "gone soon")
        backend.delete(slot(tmp_path))
        assert backend.get(slot(tmp_path)) is None
        backend.delete(slot(tmp_path))  # already gone: no error
        backend.delete(slot(tmp_path, "never"))


class TestFileSecrets(SecretBackendContract):
    @pytest.fixture
    def backend(self) -> SecretBackend:
        return FileSecrets()

    def test_the_file_is_readable_only_by_its_owner(self, backend: SecretBackend,
                                                     tmp_path: Path) -> None:
        backend.set(slot(tmp_path), "private")
        assert stat.S_IMODE(slot(tmp_path).file.stat().st_mode) == 0o600

    def test_an_unreadable_file_is_an_error_naming_it(self, backend: SecretBackend,
                                                       tmp_path: Path) -> None:
        slot(tmp_path).file.mkdir()  # a directory where the file should be
        with pytest.raises(SecretStoreError, match=r"a\.secret"):
            backend.get(slot(tmp_path))


class TestKeyringSecrets(SecretBackendContract):
    @pytest.fixture
    def backend(self, memory_keyring: MemoryKeyring) -> SecretBackend:
        return KeyringSecrets(keyring.get_keyring())

    def test_secrets_live_under_the_guards_service_name(self, backend: SecretBackend,
                                                         memory_keyring: MemoryKeyring,
                                                         tmp_path: Path) -> None:
        backend.set(slot(tmp_path), "k")
        assert memory_keyring.secrets == {("TellerGuard", "test-a"): "k"}
        assert not slot(tmp_path).file.exists()


# ----------------------------------------------------------------------------- the choice


def test_a_usable_keyring_is_used_and_an_older_file_copy_removed(
        tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    FileSecrets().set(slot(tmp_path), "old file copy")
    store = SecretStore()
    assert store.put(slot(tmp_path), "new") == KEYRING
    assert not slot(tmp_path).file.exists()
    found = store.get(slot(tmp_path))
    assert found is not None and (found.value, found.place) == ("new", KEYRING)
    assert "new" not in repr(found)


def test_without_a_keyring_the_secret_goes_to_the_file(
        tmp_path: Path, use_keyring: Callable[[KeyringBackend], None]) -> None:
    use_keyring(fail.Keyring())
    with pytest.raises(NoUsableKeyring, match="fail backend"):
        usable_keyring()
    store = SecretStore()
    assert store.put(slot(tmp_path), "v") == FILE
    found = store.get(slot(tmp_path))
    assert found is not None and (found.value, found.place) == ("v", FILE)


def test_a_keyring_that_refuses_or_loses_secrets_falls_back_to_the_file(
        tmp_path: Path, use_keyring: Callable[[KeyringBackend], None]) -> None:
    class Refusing(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            raise RuntimeError("the keyring is locked")

    class Forgetful(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            pass  # accepts, keeps nothing

    for backend in (Refusing(), Forgetful()):
        use_keyring(backend)
        assert SecretStore().put(slot(tmp_path), "kept") == FILE
        assert FileSecrets().get(slot(tmp_path)) == "kept"


def test_a_plaintext_keyring_is_refused_with_its_reason(
        use_keyring: Callable[[KeyringBackend], None]) -> None:
    use_keyring(PlaintextKeyring())
    with pytest.raises(NoUsableKeyring, match=r"plaintext.*PlaintextKeyring.*keyrings\.alt"):
        usable_keyring()
    assert isinstance(NoUsableKeyring("x"), RuntimeError)


def test_a_plaintext_keyring_is_refused_by_the_device_key_and_the_pin(
        tmp_path: Path, use_keyring: Callable[[KeyringBackend], None]) -> None:
    plaintext = PlaintextKeyring()
    use_keyring(plaintext)
    keys = DeviceKeyStore(tmp_path)
    assert keys.save(DeviceCredentials("http://127.0.0.1:1", "dev-x", os.urandom(32))) == STORE_FILE
    pins = PinStore("teller1", tmp_path)
    pins.set(hash_secret("135790"))
    assert pins.backend == FILE
    assert plaintext.secrets == {}  # nothing reached the plaintext store
    assert stat.S_IMODE(keys.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "pin-teller1.hash").stat().st_mode) == 0o600
    creds = keys.load()
    assert creds is not None and creds.device_id == "dev-x"
    assert verify_secret("135790", pins.get() or "")
