"""The secret store: one contract for the 0600 file store and a keyring backend, how the store
chooses between them, and the refusal of plaintext keyrings by both users (device key, PIN)."""

from __future__ import annotations

import os
import shutil
import stat
import sys
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
    keyring_config_file,
    keyring_is_told,
    usable_keyring,
)
from tests.support.interpreter import fresh_env, last_json, run_code
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


def test_a_file_copy_is_newer_than_the_keyrings(tmp_path: Path,
                                                 memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    assert store.put(slot(tmp_path), "old") == KEYRING
    # the keyring refused the next secret: it went to the file, the keyring kept the old one
    FileSecrets().set(slot(tmp_path), "new")
    found = store.get(slot(tmp_path))
    assert found is not None and (found.value, found.place) == ("new", FILE)
    assert memory_keyring.secrets == {("TellerGuard", "test-a"): "old"}


# ----------------------------------------------------------------------------- which backend


@pytest.fixture
def untold_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """keyring told nothing: no backend set in this process, no environment variable, no
    keyringrc.cfg (the config root is `tmp_path`, returned); no session bus."""
    import keyring.core

    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path))
    return tmp_path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Secret Service's session bus")
def test_without_a_session_bus_there_is_no_keyring_and_no_discovery(
        untold_keyring: Path) -> None:
    with pytest.raises(NoUsableKeyring, match="no D-Bus session bus"):
        usable_keyring()
    import keyring.core

    assert keyring.core._keyring_backend is None  # keyring's own discovery never ran


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Secret Service's session bus")
def test_with_a_session_bus_secret_service_is_asked_and_its_reason_kept(
        untold_keyring: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("secretstorage")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={untold_keyring / 'no-bus'}")
    with pytest.raises(NoUsableKeyring, match=r"SecretService\.Keyring\) cannot run here: .+"):
        usable_keyring()
    assert SecretStore().put(slot(untold_keyring), "v") == FILE


def test_a_backend_named_in_keyrings_config_file_is_taken_and_still_checked(
        untold_keyring: Path) -> None:
    config = keyring_config_file()
    assert config is not None and config.parent.parent == untold_keyring
    config.parent.mkdir(parents=True)
    config.write_text("[backend]\ndefault-keyring=tests.support.keyrings.PlaintextKeyring\n")
    assert keyring_is_told()
    with pytest.raises(NoUsableKeyring, match=r"plaintext.*PlaintextKeyring"):
        usable_keyring()


def test_a_backend_named_in_the_environment_is_taken(untold_keyring: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert not keyring_is_told()
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.support.keyrings.MemoryKeyring")
    assert keyring_is_told()
    assert isinstance(usable_keyring(), MemoryKeyring)


def run_agent_like(code: str, env: dict[str, str], *args: str) -> dict[str, object]:
    """`code` in a fresh interpreter that has loaded the agent (`ui.app`); its last line as JSON."""
    out: dict[str, object] = run_code(code, *args, env=env)
    return out


AGENT_PIN = """\
import json, sys
from pathlib import Path
from ui.app import main  # noqa: F401  (the agent's own imports)
from guard.credentials import PinStore, hash_secret, verify_secret

pins = PinStore("teller1", Path(sys.argv[1]))
if sys.argv[2] == "set":
    pins.set(hash_secret("135790"))
ok = verify_secret("135790", pins.get() or "")
print(json.dumps({"ok": ok, "where": pins.backend,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in
                                   ("keyring", "secretstorage", "jeepney", "cryptography"))}))
"""


def agent_env(tmp_path: Path, bus: str | None) -> dict[str, str]:
    env = {k: v for k, v in fresh_env(XDG_CONFIG_HOME=str(tmp_path / "config")).items()
           if k not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS")}
    if bus is not None:
        env["DBUS_SESSION_BUS_ADDRESS"] = bus
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Secret Service's session bus")
def test_the_agent_reads_a_pin_in_its_file_without_loading_keyring(tmp_path: Path) -> None:
    pytest.importorskip("PySide6")
    pytest.importorskip("secretstorage")
    data = tmp_path / "data"
    data.mkdir()
    headless = run_agent_like(AGENT_PIN, agent_env(tmp_path, None), str(data), "set")
    assert headless == {"ok": True, "where": FILE, "loaded": []}
    # a session bus without a usable Secret Service (this machine's desktops): the PIN is in
    # its file, so reading it at the agent's start asks no keyring
    bus = f"unix:path={tmp_path / 'no-bus'}"
    assert run_agent_like(AGENT_PIN, agent_env(tmp_path, bus), str(data), "get") == headless
    # storing asks the keyring, alone: Secret Service's libraries, never the other backends
    stored = run_agent_like(AGENT_PIN, agent_env(tmp_path, bus), str(data), "set")
    loaded = stored["loaded"]
    assert stored["where"] == FILE and isinstance(loaded, list)
    assert "keyring.backends.SecretService" in loaded and "secretstorage" in loaded
    assert not [m for m in loaded if m.startswith(("keyring.backends.kwallet",
                                                   "keyring.backends.Windows"))]


@pytest.mark.skipif(shutil.which("dbus-run-session") is None
                    or shutil.which("gnome-keyring-daemon") is None,
                    reason="needs dbus-run-session and gnome-keyring-daemon")
def test_a_real_secret_service_keeps_the_pin(tmp_path: Path) -> None:
    pytest.importorskip("PySide6")
    pytest.importorskip("secretstorage")
    data = tmp_path / "data"
    data.mkdir()
    env = agent_env(tmp_path, None)
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "share"))
    script = tmp_path / "run.sh"
    script.write_text("printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null\n"
                      f'exec "{sys.executable}" -c "$1" "$2" set\n')
    seen = last_json(["dbus-run-session", "--", "sh", str(script), AGENT_PIN, str(data)],
                     env=env)
    assert seen["ok"] is True and seen["where"] == KEYRING
    assert not (data / "pin-teller1.hash").exists()
    assert "keyring.backends.SecretService" in seen["loaded"]
    assert "keyring.backends.kwallet" not in seen["loaded"]  # no discovery of every backend


def test_a_key_from_the_embedded_collector_stays_in_its_file(
        tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    from guard.delivery.enrolment import BY_EMBEDDED, STORE_KEYRING

    token = DeviceKeyStore(tmp_path / "token")
    assert token.save(DeviceCredentials("https://hq.example", "dev-t", os.urandom(32))) == (
        STORE_KEYRING)
    embedded = DeviceKeyStore(tmp_path / "embedded")
    key = os.urandom(32)
    assert embedded.save(DeviceCredentials("http://127.0.0.1:4711", "dev-e", key),
                         enrolled_by=BY_EMBEDDED) == STORE_FILE
    assert [user for _, user in memory_keyring.secrets] == ["device-key:dev-t"]
    assert stat.S_IMODE(embedded.key_path.stat().st_mode) == 0o600
    creds = embedded.load()
    assert creds is not None and creds.key == key
