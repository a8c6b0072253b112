"""The .deb: built with dpkg-deb, installed into a fresh root with `dpkg --root` (maintainer
scripts run with DPKG_ROOT), then upgraded and purged; files, unit, policy and settings checked."""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from guard.app.enrol_token import TOKEN_FILE_NAME
from guard.policy.layers import merge, packaged_text, parse_toml, read_file_layer, validate
from tests.installer.conftest import INSTALLER, need

BUILD = INSTALLER / "debian" / "build-deb.sh"
ENDPOINT = "https://guard.bank.example"


def build(version: str, out: Path) -> Path:
    subprocess.run(["bash", str(BUILD), version, "--test-payload", str(out)], check=True,
                   capture_output=True, text=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need("dpkg-deb")
    out = tmp_path_factory.mktemp("deb")
    return {v: build(v, out / f"teller-guard_{v}_amd64.deb") for v in ("0.1.0", "0.2.0")}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh, empty root with only dpkg's database."""
    r = tmp_path / "root"
    (r / "var/lib/dpkg/info").mkdir(parents=True)
    (r / "var/lib/dpkg/updates").mkdir()
    (r / "var/lib/dpkg/status").touch()
    return r


def dpkg(root: Path, *args: str, env: dict[str, str] | None = None) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TELLER_GUARD_")}
    subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends",
                    "--force-not-root", "--log=/dev/null", *args],
                   env={**base, **(env or {})}, check=True, capture_output=True, text=True,
                   timeout=120)


def token_file(root: Path) -> Path:
    return root / "var/lib/teller-guard" / TOKEN_FILE_NAME


def settings(root: Path) -> dict[str, str]:
    text = (root / "etc/teller-guard/service.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")


def test_package_metadata(debs: dict[str, Path]) -> None:
    info = subprocess.run(["dpkg-deb", "-f", str(debs["0.1.0"])], check=True,
                          capture_output=True, text=True).stdout
    assert "Package: teller-guard" in info and "Version: 0.1.0" in info
    assert "Architecture: amd64" in info and "TEST PAYLOAD" in info
    conffiles = subprocess.run(["dpkg-deb", "-I", str(debs["0.1.0"]), "conffiles"], check=True,
                               capture_output=True, text=True).stdout
    assert conffiles.split() == ["/etc/teller-guard/policy.toml"]


def test_install_into_a_fresh_root(debs: dict[str, Path], root: Path) -> None:
    (root / "etc/teller-guard").mkdir(parents=True)
    (root / "etc/teller-guard/install.env").write_text(
        f"TELLER_GUARD_ENDPOINT={ENDPOINT}\nTELLER_GUARD_ENROLL_TOKEN=tok-preseed\n")
    dpkg(root, "-i", str(debs["0.1.0"]), env={"TELLER_GUARD_BRANCH": "BR042"})

    assert os.access(root / "opt/teller-guard/teller-guard", os.X_OK)
    assert os.access(root / "opt/teller-guard/teller-guard-agent", os.X_OK)
    assert os.readlink(root / "usr/bin/teller-guard") == "/opt/teller-guard/teller-guard"
    desktop = (root / "etc/xdg/autostart/teller-guard-agent.desktop").read_text()
    assert "Exec=/opt/teller-guard/teller-guard-agent" in desktop
    unit = (root / "lib/systemd/system/teller-guard.service").read_text()
    assert "ExecStart=/opt/teller-guard/teller-guard service" in unit
    assert "EnvironmentFile=-/etc/teller-guard/service.env" in unit
    # the machine policy file is a valid layer over the packaged default
    policy_file = root / "etc/teller-guard/policy.toml"
    validate(merge(parse_toml(packaged_text(), "packaged"), read_file_layer(policy_file)),
             str(policy_file))
    tomllib.loads(policy_file.read_text())
    # the settings: the preseed file, dpkg's environment for the branch; root only
    assert settings(root) == {"TELLER_GUARD_ENDPOINT": ENDPOINT,
                              "TELLER_GUARD_BRANCH": "BR042"}
    # the token only in the file the service deletes once enrolled (FileToken), not in the
    # unit's environment nor left in the preseed file
    assert token_file(root).read_text() == "tok-preseed\n"
    assert "tok-preseed" not in (root / "etc/teller-guard/service.env").read_text()
    assert (root / "etc/teller-guard/install.env").read_text() == \
        f"TELLER_GUARD_ENDPOINT={ENDPOINT}\n"
    for path in (root / "etc/teller-guard/service.env", root / "etc/teller-guard/install.env",
                 token_file(root)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.stat().st_uid == os.getuid(), path
    assert stat.S_IMODE((root / "var/lib/teller-guard").stat().st_mode) == 0o700
    # the service's own default: its data directory (the unit's TELLER_GUARD_DATA_DIR) holds it
    assert "Environment=TELLER_GUARD_DATA_DIR=/var/lib/teller-guard" in unit
    assert token_file(root).name == TOKEN_FILE_NAME


def test_without_a_token_there_is_no_token_file(debs: dict[str, Path], root: Path) -> None:
    dpkg(root, "-i", str(debs["0.1.0"]), env={"TELLER_GUARD_ENDPOINT": ENDPOINT})
    assert settings(root) == {"TELLER_GUARD_ENDPOINT": ENDPOINT, "TELLER_GUARD_BRANCH": ""}
    assert not token_file(root).exists()


def test_an_upgrade_neither_brings_back_a_used_token_nor_keeps_one_in_service_env(
        debs: dict[str, Path], root: Path) -> None:
    (root / "etc/teller-guard").mkdir(parents=True)
    preseed = root / "etc/teller-guard/install.env"
    preseed.write_text(f"TELLER_GUARD_ENDPOINT={ENDPOINT}\nTELLER_GUARD_ENROLL_TOKEN=tok-1\n")
    dpkg(root, "-i", str(debs["0.1.0"]))
    token_file(root).unlink()  # the service enrolled and deleted it
    dpkg(root, "-i", str(debs["0.2.0"]))  # the same preseed file in place
    assert not token_file(root).exists()
    assert settings(root)["TELLER_GUARD_ENDPOINT"] == ENDPOINT

    assert "tok-1" not in preseed.read_text()
    # an older package's service.env with the token in it (no preseed file left): the token
    # moves to the token file, the other settings stay
    preseed.unlink()
    env_file = root / "etc/teller-guard/service.env"
    env_file.write_text(f"TELLER_GUARD_ENDPOINT={ENDPOINT}\nTELLER_GUARD_ENROLL_TOKEN=tok-old\n"
                        "TELLER_GUARD_BRANCH=BR7\n")
    dpkg(root, "-i", str(debs["0.2.0"]))
    assert settings(root) == {"TELLER_GUARD_ENDPOINT": ENDPOINT, "TELLER_GUARD_BRANCH": "BR7"}
    assert token_file(root).read_text() == "tok-old\n"
    assert stat.S_IMODE(token_file(root).stat().st_mode) == 0o600
    # a new token given at the upgrade replaces one not used yet
    dpkg(root, "-i", str(debs["0.2.0"]), env={"TELLER_GUARD_ENROLL_TOKEN": "tok-new"})
    assert token_file(root).read_text() == "tok-new\n"
    assert "tok-" not in env_file.read_text()


def test_environment_wins_and_a_bad_endpoint_is_refused(debs: dict[str, Path],
                                                        root: Path) -> None:
    (root / "etc/teller-guard").mkdir(parents=True)
    (root / "etc/teller-guard/install.env").write_text(f"TELLER_GUARD_ENDPOINT={ENDPOINT}\n")
    dpkg(root, "-i", str(debs["0.1.0"]),
         env={"TELLER_GUARD_ENDPOINT": "https://other.bank.example"})
    assert settings(root)["TELLER_GUARD_ENDPOINT"] == "https://other.bank.example"
    dpkg(root, "-i", str(debs["0.1.0"]), env={"TELLER_GUARD_ENDPOINT": "guard.bank.example"})
    # not a URL: refused (said on stderr), and the settings in place stay as they were
    assert settings(root)["TELLER_GUARD_ENDPOINT"] == "https://other.bank.example"


def test_upgrade_keeps_settings_and_purge_keeps_the_journal(debs: dict[str, Path],
                                                           root: Path) -> None:
    dpkg(root, "-i", str(debs["0.1.0"]), env={"TELLER_GUARD_ENDPOINT": ENDPOINT,
                                              "TELLER_GUARD_BRANCH": "BR042"})
    policy_file = root / "etc/teller-guard/policy.toml"
    policy_file.write_text('[idle]\nlock_after_s = 600\n')  # IT's local change to the conffile
    (root / "var/lib/teller-guard/journal.db").write_bytes(b"audit trail")

    dpkg(root, "--force-confold", "-i", str(debs["0.2.0"]))  # no settings given this time
    status = (root / "var/lib/dpkg/status").read_text()
    assert "Version: 0.2.0" in status
    assert settings(root)["TELLER_GUARD_ENDPOINT"] == ENDPOINT
    assert settings(root)["TELLER_GUARD_BRANCH"] == "BR042"
    assert policy_file.read_text() == '[idle]\nlock_after_s = 600\n'

    dpkg(root, "--purge", "teller-guard")
    assert not (root / "opt/teller-guard/teller-guard").exists()
    assert not (root / "lib/systemd/system/teller-guard.service").exists()
    assert not (root / "etc/teller-guard/service.env").exists()
    assert (root / "var/lib/teller-guard/journal.db").read_bytes() == b"audit trail"


def test_purge_removes_a_token_not_used_yet(debs: dict[str, Path], root: Path) -> None:
    dpkg(root, "-i", str(debs["0.1.0"]), env={"TELLER_GUARD_ENROLL_TOKEN": "tok-unused"})
    assert token_file(root).exists()
    dpkg(root, "--purge", "teller-guard")
    assert not token_file(root).exists()
    assert (root / "var/lib/teller-guard").is_dir()  # the audit trail's place stays
