"""The MSI: its tables as built by wixl, and a real install, upgrade, downgrade and uninstall
under Wine (64-bit registry view) with the Linux test payload."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.installer.conftest import INSTALLER, need, need_full

BUILD = INSTALLER / "windows" / "build-msi.sh"
UPGRADE_CODE = "{93F0EEC8-82E7-4D9C-AD0F-4EAD80298D9D}"
ENDPOINT = "https://guard.bank.example"
RUN_KEY = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run"
POLICY_KEY = r"HKLM\Software\Policies\TellerGuard"
SERVICE_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services\TellerGuard"
TOKEN_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services\TellerGuard\Enrolment"
INSTALL_KEY = r"HKLM\Software\TellerGuard\Install"
ERROR_INSTALL_FAILURE = 1603


def build(version: str, out: Path) -> Path:
    subprocess.run(["bash", str(BUILD), version, "--test-payload", str(out)], check=True,
                   capture_output=True, text=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def msis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need("wixl", "wixl-heat", "msibuild", "msiinfo")
    out = tmp_path_factory.mktemp("msi")
    return {v: build(v, out / f"TellerGuard-{v}.msi") for v in ("0.1.0", "0.2.0")}


def table(msi: Path, name: str) -> list[list[str]]:
    """The rows of one table (msiinfo export: three header lines, then tab-separated rows)."""
    text = subprocess.run(["msiinfo", "export", str(msi), name], check=True,
                          capture_output=True, text=True).stdout
    return [line.split("\t") for line in text.splitlines()[3:]]


def sequence(msi: Path, name: str) -> dict[str, int]:
    return {row[0]: int(row[2]) for row in table(msi, name)}


# ---------------------------------------------------------------------------------------------
# Tables.


def test_properties(msis: dict[str, Path]) -> None:
    props = dict((r[0], r[1]) for r in table(msis["0.1.0"], "Property"))
    assert props["ProductVersion"] == "0.1.0"
    assert props["ALLUSERS"] == "1"  # per machine
    assert props["UpgradeCode"].upper() == UPGRADE_CODE
    secure = props["SecureCustomProperties"].split(";")
    assert {"ENDPOINT_URL", "ENROLL_TOKEN", "BRANCH_ID", "WIX_UPGRADE_DETECTED"} <= set(secure)
    assert props["MsiHiddenProperties"] == "ENROLL_TOKEN"  # kept out of the MSI log


def test_registry_rows_policy_autostart_and_service_environment(msis: dict[str, Path]) -> None:
    rows = {(r[2], r[3]): r for r in table(msis["0.1.0"], "Registry")}
    policy = rows[(r"Software\Policies\TellerGuard", "agent.endpoint")]
    assert policy[1] == "2" and policy[4] == "[ENDPOINT_URL]"  # HKLM, the registry policy layer
    run = rows[(r"Software\Microsoft\Windows\CurrentVersion\Run", "TellerGuard")]
    assert run[1] == "2" and run[4] == '"[INSTALLDIR]teller-guard-agent.exe"'
    env = rows[(r"SYSTEM\CurrentControlSet\Services\TellerGuard", "Environment")]
    assert env[4] == "[~]TELLER_GUARD_BRANCH=[BRANCH_ID][~]"  # a REG_MULTI_SZ, replaced whole
    assert not any("ENROLL_TOKEN" in r[4] for r in rows.values() if r[0] != "EnrolToken")
    # every component is a 64-bit one (msidbComponentAttributes64bit), so no Wow6432Node
    components = table(msis["0.1.0"], "Component")
    assert components and all(int(c[3]) & 256 for c in components)


def test_the_policy_value_names_are_schema_keys(msis: dict[str, Path]) -> None:
    from guard.policy.layers import registry_layer, validate

    class Values:
        source = POLICY_KEY

        def policy_values(self) -> dict[str, str]:
            return {r[3]: ENDPOINT for r in table(msis["0.1.0"], "Registry")
                    if r[2] == r"Software\Policies\TellerGuard"}

    policy = validate(registry_layer(Values()), POLICY_KEY)
    assert policy.agent.endpoint == ENDPOINT


def test_the_token_goes_where_the_service_deletes_it_locked_to_system(
        msis: dict[str, Path]) -> None:
    from guard.app.winservice import ENROL_TOKEN_KEY, ENROL_TOKEN_VALUE

    rows = {r[0]: r for r in table(msis["0.1.0"], "Registry")}
    token = rows["EnrolToken"]
    # HKLM, the key and value guard.app.winservice.RegistryToken reads and deletes
    assert token[1:5] == ["2", ENROL_TOKEN_KEY, ENROL_TOKEN_VALUE, "[ENROLL_TOKEN]"]
    locks = {(r[0], r[1], r[2], r[3]): int(r[4])
             for r in table(msis["0.1.0"], "LockPermissions")}
    generic_all = 0x10000000
    assert locks == {("EnrolToken", "Registry", "", "SYSTEM"): generic_all}  # nobody else
    components = {r[0]: r for r in table(msis["0.1.0"], "Component")}
    assert components["EnrolToken"][5] == "EnrolToken"  # its key path: the value itself
    assert components["EnrolToken"][4] == "ENROLL_TOKEN"  # installed only with a token
    features = {r[1]: r[0] for r in table(msis["0.1.0"], "FeatureComponents")}
    assert features["EnrolToken"] == "Complete"


def test_no_endpoint_no_policy_value(msis: dict[str, Path]) -> None:
    conditions = table(msis["0.1.0"], "Condition")
    assert conditions == [["Endpoint", "0", "NOT ENDPOINT_URL"]]
    features = {r[1]: r[0] for r in table(msis["0.1.0"], "FeatureComponents")}
    assert features["PolicyEndpoint"] == "Endpoint"


def test_upgrade_and_downgrade_rows(msis: dict[str, Path]) -> None:
    rows = table(msis["0.2.0"], "Upgrade")
    by_property = {r[6]: r for r in rows}
    upgrade, downgrade = by_property["WIX_UPGRADE_DETECTED"], by_property["WIX_DOWNGRADE_DETECTED"]
    assert upgrade[0] == downgrade[0] == UPGRADE_CODE
    assert upgrade[2] == "0.2.0" and downgrade[1] == "0.2.0"
    assert int(downgrade[4]) & 2  # msidbUpgradeAttributesOnlyDetect
    conditions = [r[0] for r in table(msis["0.2.0"], "LaunchCondition")]
    assert "NOT WIX_DOWNGRADE_DETECTED" in conditions


def test_service_install_and_control(msis: dict[str, Path]) -> None:
    [svc] = table(msis["0.1.0"], "ServiceInstall")
    assert svc[1] == "TellerGuard"
    assert svc[3] == "16" and svc[4] == "2"  # own process, auto start
    assert svc[8] == "LocalSystem" and svc[10] == "service" and svc[11] == "ServiceExe"
    [ctl] = table(msis["0.1.0"], "ServiceControl")
    # start on install, stop on install and uninstall, delete on uninstall
    assert ctl[1] == "TellerGuard" and int(ctl[2]) == 0x1 | 0x2 | 0x20 | 0x80


def test_files_go_to_program_files_and_nothing_to_program_data(msis: dict[str, Path]) -> None:
    dirs = {r[0]: r for r in table(msis["0.1.0"], "Directory")}
    assert dirs["INSTALLDIR"][1] == "ProgramFiles64Folder"
    assert dirs["INSTALLDIR"][2] == "TellerGuard"
    assert "CommonAppDataFolder" not in dirs  # the journal is the service's; uninstall keeps it
    assert not table(msis["0.1.0"], "RemoveFile")
    files = {r[2] for r in table(msis["0.1.0"], "File")}
    assert {"teller-guard.exe", "teller-guard-agent.exe", "README-TEST-PAYLOAD.txt"} <= files


def test_sequences_are_in_a_working_order(msis: dict[str, Path]) -> None:
    for name in ("InstallExecuteSequence", "InstallUISequence"):
        seq = sequence(msis["0.1.0"], name)
        assert seq["FindRelatedProducts"] < seq["AppSearch"] < seq["KeepEndpoint"] \
            < seq["LaunchConditions"] < seq["CostFinalize"]
        assert seq["KeepBranch"] < seq["CostFinalize"]  # feature conditions see the kept value
    seq = sequence(msis["0.1.0"], "InstallExecuteSequence")
    assert seq["InstallValidate"] < seq["RemoveExistingProducts"] < seq["InstallInitialize"]
    assert seq["InstallFiles"] < seq["InstallServices"] < seq["WriteRegistryValues"] \
        < seq["StartServices"] < seq["InstallFinalize"]
    actions = {r[0]: r for r in table(msis["0.1.0"], "CustomAction")}
    assert int(actions["KeepEndpoint"][1]) & 0x3F == 51  # set a property, immediate
    assert actions["KeepEndpoint"][2:4] == ["ENDPOINT_URL", "[OLD_ENDPOINT_URL]"]
    conditions = {r[0]: r[1] for r in table(msis["0.1.0"], "InstallExecuteSequence")}
    assert conditions["KeepEndpoint"] == "NOT ENDPOINT_URL AND OLD_ENDPOINT_URL"


# ---------------------------------------------------------------------------------------------
# Wine: a fresh 64-bit prefix per test.


class Wine:
    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.env = {**os.environ, "WINEPREFIX": str(prefix), "WINEARCH": "win64",
                    "WINEDEBUG": "-all", "DISPLAY": ""}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["wine", *args], env=self.env, capture_output=True, text=True,
                              timeout=300)

    def msiexec(self, *args: str) -> int:
        return self.run("msiexec", *args).returncode

    def reg(self, key: str, view: str = "64") -> dict[str, str]:
        """The values of `key` in one registry view ({} when the key is missing)."""
        proc = self.run("reg", "query", key, f"/reg:{view}")
        values = {}
        for line in proc.stdout.splitlines():
            parts = line.strip().split(None, 2)
            if len(parts) >= 2 and parts[1].startswith("REG_"):
                values[parts[0]] = parts[2] if len(parts) == 3 else ""
        return values

    def service_state(self) -> str:
        out = self.run("sc", "query", "TellerGuard").stdout
        for line in out.splitlines():
            if "STATE" in line:
                return line.split()[-1]
        return "MISSING"

    @property
    def program_files(self) -> Path:
        return self.prefix / "drive_c" / "Program Files" / "TellerGuard"

    @property
    def program_data(self) -> Path:
        return self.prefix / "drive_c" / "ProgramData" / "TellerGuard"


def wine_code(code: int) -> int:
    return code % 256  # Wine hands back msiexec's exit code modulo 256


@pytest.fixture
def wine(tmp_path: Path) -> Iterator[Wine]:
    need_full("the Wine install test")
    need("wine")
    w = Wine(tmp_path / "prefix")
    yield w
    w.run("wineserver", "-k")


def test_install_under_wine(wine: Wine, msis: dict[str, Path]) -> None:
    rc = wine.msiexec("/i", str(msis["0.1.0"]), "/qn", f"ENDPOINT_URL={ENDPOINT}",
                      "ENROLL_TOKEN=tok-selftest-1", "BRANCH_ID=BR042")
    assert rc == 0
    assert (wine.program_files / "teller-guard.exe").is_file()
    assert (wine.program_files / "teller-guard-agent.exe").is_file()
    assert (wine.program_files / "_internal" / "README-TEST-PAYLOAD.txt").is_file()
    assert wine.reg(POLICY_KEY) == {"agent.endpoint": ENDPOINT}
    assert wine.reg(RUN_KEY)["TellerGuard"] == \
        '"C:\\Program Files\\TellerGuard\\teller-guard-agent.exe"'
    assert "TellerGuard" not in wine.reg(RUN_KEY, view="32")  # not under Wow6432Node
    assert wine.reg(INSTALL_KEY, view="32") == {}
    service = wine.reg(SERVICE_KEY)
    assert service["ImagePath"] == "C:\\Program Files\\TellerGuard\\teller-guard.exe service"
    assert service["Start"] == "0x2"
    assert service["Environment"] == "TELLER_GUARD_BRANCH=BR042"
    assert wine.reg(TOKEN_KEY) == {"Token": "tok-selftest-1"}
    assert "tok-selftest-1" not in str(wine.reg(POLICY_KEY)) + str(wine.reg(INSTALL_KEY)) + \
        str(service)
    assert wine.service_state() == "RUNNING"


def test_install_without_an_endpoint_writes_no_policy_value(wine: Wine,
                                                           msis: dict[str, Path]) -> None:
    assert wine.msiexec("/i", str(msis["0.1.0"]), "/qn") == 0
    assert (wine.program_files / "teller-guard.exe").is_file()
    assert "agent.endpoint" not in wine.reg(POLICY_KEY)
    assert "TellerGuard" in wine.reg(RUN_KEY)
    assert wine.run("reg", "query", TOKEN_KEY, "/reg:64").returncode != 0  # no empty token


def test_upgrade_downgrade_and_uninstall_under_wine(wine: Wine, msis: dict[str, Path]) -> None:
    assert wine.msiexec("/i", str(msis["0.1.0"]), "/qn", f"ENDPOINT_URL={ENDPOINT}",
                        "BRANCH_ID=BR042", "ENROLL_TOKEN=tok-upgrade-1") == 0
    assert wine.reg(INSTALL_KEY)["Version"] == "0.1.0"
    assert wine.reg(TOKEN_KEY) == {"Token": "tok-upgrade-1"}
    # the service enrolled and deleted the token's key (what RegistryToken.delete does)
    assert wine.run("reg", "delete", TOKEN_KEY, "/f", "/reg:64").returncode == 0
    # the service's journal, which the package never owned
    wine.program_data.mkdir(parents=True)
    (wine.program_data / "journal.db").write_bytes(b"audit trail")

    # a major upgrade without the properties: replaces 0.1.0 and keeps endpoint and branch
    assert wine.msiexec("/i", str(msis["0.2.0"]), "/qn") == 0
    assert wine.reg(INSTALL_KEY) == {"BranchId": "BR042", "Version": "0.2.0"}
    assert wine.reg(POLICY_KEY) == {"agent.endpoint": ENDPOINT}
    assert wine.run("reg", "query", TOKEN_KEY, "/reg:64").returncode != 0  # not brought back
    assert wine.reg(SERVICE_KEY)["Environment"] == "TELLER_GUARD_BRANCH=BR042"
    listed = wine.run("reg", "query",
                      r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall",
                      "/s", "/reg:64").stdout
    assert listed.count("DisplayName    REG_SZ    Teller Guard") == 1  # one product, not two
    assert "DisplayVersion    REG_SZ    0.2.0" in listed
    assert wine.service_state() == "RUNNING"

    # a downgrade is refused (ERROR_INSTALL_FAILURE) and changes nothing
    rc = wine.msiexec("/i", str(msis["0.1.0"]), "/qn")
    assert rc == wine_code(ERROR_INSTALL_FAILURE)
    assert wine.reg(INSTALL_KEY)["Version"] == "0.2.0"

    # uninstall: files, registry and service go; the journal stays for audit
    assert wine.msiexec("/x", str(msis["0.2.0"]), "/qn") == 0
    assert not (wine.program_files / "teller-guard.exe").exists()
    assert wine.reg(POLICY_KEY) == {} and wine.reg(INSTALL_KEY) == {}
    assert "TellerGuard" not in wine.reg(RUN_KEY)
    assert wine.service_state() == "MISSING"
    assert (wine.program_data / "journal.db").read_bytes() == b"audit trail"
