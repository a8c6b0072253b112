"""`teller-guard selftest`: every part reported, skips with a reason, a broken part exits 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guard import cli
from guard.commands import selftest
from guard.commands.selftest import Check, CheckFailed, CheckSkipped, Status, attempt

PARTS = ["data directory", "detectors", "bank card table", "ocr", "journal", "secret store",
         "policy (packaged)", "policy (machine)", "translations", "machine backend",
         "desktop backend"]


@pytest.fixture(autouse=True)
def _no_keyring_or_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "disabled:")
    monkeypatch.delenv("DISPLAY", raising=False)


def lines_by_part(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        for status in ("PASS", "FAIL", "SKIP"):
            if line.startswith(f"  {status}  "):
                name = line[8:].strip().split("  ")[0]
                found[name] = status
    return found


def test_selftest_passes_on_a_working_install(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["selftest", "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr().out
    parts = lines_by_part(out)
    assert rc == 0, out
    assert set(PARTS) <= set(parts), out
    for name in ("data directory", "detectors", "bank card table", "journal", "secret store",
                 "policy (packaged)", "translations", "machine backend"):
        assert parts[name] == "PASS", out
    assert "result: OK" in out
    # no desktop here: its capabilities are skipped with the reason, not failed
    assert parts["idle clock"] == "SKIP"
    assert "DISPLAY is not set" in out


def test_the_report_shows_only_masked_sample_values(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["selftest", "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    _, values = selftest.synthetic_sample()
    assert set(values) == {"CN_RESIDENT_ID", "BANK_CARD", "CN_MOBILE"}
    for value in values.values():
        assert value not in out
    assert "110***********1233" in out


def test_the_synthetic_sample_is_valid_in_form() -> None:
    from stdnum import luhn
    from stdnum.cn import ric

    _, values = selftest.synthetic_sample()
    assert ric.is_valid(values["CN_RESIDENT_ID"])
    assert luhn.is_valid(values["BANK_CARD"])


def test_a_broken_data_dir_fails_with_exit_1(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "data"
    broken.write_text("a file where the data directory should be")
    rc = cli.main(["selftest", "--data-dir", str(broken)])
    out = capsys.readouterr().out
    assert rc == 1
    assert lines_by_part(out)["data directory"] == "FAIL"
    assert "cannot write in the data directory" in out
    assert "result: FAILED" in out
    assert lines_by_part(out)["detectors"] == "PASS"  # one broken part hides no other


def test_the_frozen_entry_point_exits_1_on_a_broken_data_dir(tmp_path: Path) -> None:
    broken = tmp_path / "data"
    broken.write_text("x")
    env = {**os.environ, "TELLER_GUARD_DATA_DIR": str(broken)}
    env.pop("DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "guard.cli", "selftest"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  data directory" in proc.stdout


def test_a_detector_that_misses_the_sample_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def sample() -> tuple[str, dict[str, str]]:
        return "nothing here", {"CN_MOBILE": "13912345678"}

    monkeypatch.setattr(selftest, "synthetic_sample", sample)
    result = attempt("detectors", selftest.check_detectors)
    assert result.status is Status.FAIL
    assert "CN_MOBILE was not found" in result.detail


def test_ocr_not_installed_is_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import util

    real = util.find_spec
    monkeypatch.setattr(util, "find_spec",
                        lambda name, *a: None if name == "rapidocr_onnxruntime" else real(name, *a))
    result = attempt("ocr", selftest.check_ocr)
    assert result.status is Status.SKIP
    assert "not installed" in result.detail


def test_a_damaged_translation_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import teller_guard_resources

    (tmp_path / "translations").mkdir()
    for lang in selftest.LANGUAGES:
        (tmp_path / "translations" / f"teller_guard_{lang}.qm").write_bytes(b"not a qm file")
    monkeypatch.setattr(teller_guard_resources, "resource",
                        lambda *parts: tmp_path.joinpath(*parts))
    result = attempt("translations", selftest.check_translation_files)
    assert result.status is Status.FAIL
    assert "not a compiled Qt translation" in result.detail


def test_a_bad_machine_policy_file_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from guard.policy import layers

    bad = tmp_path / "policy.toml"
    bad.write_text('[idle]\nlock_after_s = "soon"\n')
    monkeypatch.setattr(layers, "machine_layers",
                        lambda: [(str(bad), lambda: layers.read_file_layer(bad))])
    result = attempt("policy (machine)", selftest.check_machine_policy)
    assert result.status is Status.FAIL
    assert "lock_after_s" in result.detail


def test_require_desktop_turns_missing_capabilities_into_failures() -> None:
    checks = {c.name.strip(): c for c in selftest.platform_checks(require_desktop=True)}
    assert checks["idle clock"].status is Status.FAIL
    assert "DISPLAY" in checks["idle clock"].detail


def test_attempt_and_report_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    def skip() -> str:
        raise CheckSkipped("not here")

    def fail() -> str:
        raise CheckFailed("broken")

    def crash() -> str:
        raise ZeroDivisionError("boom")

    checks = [attempt("a", lambda: "fine"), attempt("b", skip)]
    assert [c.status for c in checks] == [Status.PASS, Status.SKIP]
    assert selftest.report(checks, sys.stdout, title="t") == 0
    crashed = attempt("d", crash)
    assert crashed == Check("d", Status.FAIL, "unexpected ZeroDivisionError: boom")
    assert selftest.report([*checks, attempt("c", fail)], sys.stdout, title="t") == 1
    out = capsys.readouterr().out
    assert "result: OK: 1 passed, 1 skipped, 0 failed" in out
    assert "result: FAILED: 1 passed, 1 skipped, 1 failed" in out
