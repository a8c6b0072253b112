"""`teller-guard service setup-cups`: the marked block in cupsd.conf, on a copy of Debian's default
file, accepted by the real cupsd (`cupsd -t`) and by a private cupsd that then guards a queue."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from guard.cli import main
from guard.commands.service_setup import BACKUP_SUFFIX, EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from guard.platforms._linux.cups import (
    CONF_BEGIN,
    CONF_DISABLED,
    CONF_END,
    CupsConfError,
    cupsd_conf_with_guard,
    cupsd_conf_without_guard,
)

DEBIAN_DEFAULT = Path("/usr/share/cups/cupsd.conf.default")  # Debian's cups-daemon ships it
SMALL = "LogLevel warn\nPreserveJobFiles Yes\nListen /run/cups/cups.sock\n"


def _cupsd() -> str | None:
    return shutil.which("cupsd") or ("/usr/sbin/cupsd" if Path("/usr/sbin/cupsd").exists()
                                     else None)


@pytest.fixture
def debian_conf(tmp_path: Path) -> Path:
    if not DEBIAN_DEFAULT.exists():
        pytest.skip("Debian's default cupsd.conf is not here (apt-get install cups-daemon)")
    conf = tmp_path / "cupsd.conf"
    shutil.copyfile(DEBIAN_DEFAULT, conf)
    os.chmod(conf, 0o640)
    return conf


def test_the_block_is_added_once_and_overrides_preserve_job_files() -> None:
    once = cupsd_conf_with_guard(SMALL)
    assert cupsd_conf_with_guard(once) == once  # idempotent
    assert once.startswith(f"LogLevel warn\n{CONF_DISABLED}PreserveJobFiles Yes\n")
    assert once.count(CONF_BEGIN) == 1 and once.rstrip().endswith(CONF_END)
    assert "\nPreserveJobFiles No\n" in once and "<Policy teller-guard>" in once
    live = [ln for ln in once.splitlines() if ln.lower().startswith("preservejobfiles")]
    assert live == ["PreserveJobFiles No"]  # the only one cupsd reads
    assert cupsd_conf_without_guard(once) == SMALL  # removed: exactly as it was


def test_an_admins_lines_after_the_block_stay_and_the_block_stays_in_place() -> None:
    once = cupsd_conf_with_guard("LogLevel warn")  # no final newline
    edited = once + "MaxJobs 50\n"
    again = cupsd_conf_with_guard(edited)
    assert again == edited and again.endswith(f"{CONF_END}\nMaxJobs 50\n")
    assert cupsd_conf_without_guard(edited) == "LogLevel warn\nMaxJobs 50\n"


@pytest.mark.parametrize("text, says", [
    (f"{CONF_BEGIN}\nPreserveJobFiles No\n", "broken"),
    (f"{CONF_END}\n{CONF_BEGIN}\n", "broken"),
    (f"{CONF_BEGIN}\n{CONF_END}\n{CONF_BEGIN}\n{CONF_END}\n", "broken"),
    ("<Policy teller-guard>\n</Policy>\n", "outside Teller Guard's block"),
    ("<policy Teller-Guard >\n</Policy>\n", "outside Teller Guard's block"),
])
def test_a_file_that_cannot_be_edited_safely_is_refused(text: str, says: str) -> None:
    with pytest.raises(CupsConfError, match=says):
        cupsd_conf_with_guard(text)


def test_setup_on_debians_default_file_dry_run_backup_and_remove(
        debian_conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = debian_conf.read_text()
    assert main(["service", "setup-cups", "--conf", str(debian_conf), "--dry-run"]) == EXIT_OK
    diff = capsys.readouterr().out
    assert diff.startswith(f"--- {debian_conf}\n+++ {debian_conf} (after setup-cups)\n")
    assert "+PreserveJobFiles No\n" in diff and "+<Policy teller-guard>\n" in diff
    assert debian_conf.read_text() == original  # a dry run changes nothing
    assert main(["service", "setup-cups", "--conf", str(debian_conf)]) == EXIT_OK
    assert "block written" in capsys.readouterr().out
    written = debian_conf.read_text()
    assert written == cupsd_conf_with_guard(original)
    assert stat.S_IMODE(debian_conf.stat().st_mode) == 0o640  # the file's mode is kept
    backup = debian_conf.with_name(debian_conf.name + BACKUP_SUFFIX)
    assert backup.read_text() == original
    assert not list(debian_conf.parent.glob(".*teller-guard-check"))  # no candidate left
    assert main(["service", "setup-cups", "--conf", str(debian_conf)]) == EXIT_OK
    assert "nothing to change" in capsys.readouterr().out
    assert debian_conf.read_text() == written
    if (cupsd := _cupsd()) is not None:
        checked = subprocess.run([cupsd, "-t", "-c", str(debian_conf)], capture_output=True,
                                 text=True, check=False)
        assert checked.returncode == 0, checked.stderr
    assert main(["service", "setup-cups", "--conf", str(debian_conf), "--remove"]) == EXIT_OK
    assert debian_conf.read_text() == original


def test_cupsd_refusing_the_result_leaves_the_file_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if _cupsd() is None:
        pytest.skip("cupsd is not installed (apt-get install cups-daemon)")
    conf = tmp_path / "cupsd.conf"
    conf.write_text("LogLevel warn\nNoSuchDirective yes\n")
    assert main(["service", "setup-cups", "--conf", str(conf)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "cupsd refuses the result" in err and "left as it was" in err
    assert conf.read_text() == "LogLevel warn\nNoSuchDirective yes\n"
    assert not conf.with_name(conf.name + BACKUP_SUFFIX).exists()


def test_a_missing_or_broken_file_is_a_configuration_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "setup-cups", "--conf", str(tmp_path / "none.conf")]) == EXIT_CONFIG
    assert "does not exist" in capsys.readouterr().err
    conf = tmp_path / "cupsd.conf"
    conf.write_text(f"{CONF_BEGIN}\n")
    assert main(["service", "setup-cups", "--conf", str(conf)]) == EXIT_CONFIG
    assert "broken" in capsys.readouterr().err


GUARD_QUEUE = """
import sys
from guard.platforms._linux.cups import CupsSpooler
from guard.platforms.base import SpoolerError
spooler = CupsSpooler()
try:
    spooler.guard("Office")
except SpoolerError as exc:
    sys.exit(f"refused: {exc}")
attrs = spooler._call("read", "getPrinterAttributes", "Office",
                      requested_attributes=["printer-op-policy"])
print(attrs["printer-op-policy"], sorted(spooler._call("list", "getPrinters")))
"""


@pytest.mark.parametrize("with_block", [True, False])
def test_a_private_cupsd_running_the_block_lets_the_service_guard_a_queue(
        with_block: bool) -> None:
    """The block as written is what the print guard needs: a private cupsd reading it lets
    the service put a queue under the teller-guard policy; without it the service says the
    installer's block is missing."""
    from tests.support.cups import CupsUnavailable, private_cups

    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("a private cupsd runs as root here (CI runs as root)")
    try:
        import cups as _  # noqa: F401
    except ImportError:
        pytest.skip("pycups is not installed (pip install pycups; apt-get install libcups2-dev)")
    try:
        cups_ctx = private_cups(cupsd_conf_with_guard("") if with_block else "")
        cups = cups_ctx.__enter__()
    except CupsUnavailable as exc:
        pytest.skip(str(exc))
    try:
        cups.add_pdf_queue("Office")
        root = Path(__file__).resolve().parents[3]
        run = subprocess.run([sys.executable, "-c", GUARD_QUEUE], capture_output=True,
                             text=True, env={**cups.env, "PYTHONPATH": str(root)}, cwd=root,
                             timeout=60, check=False)
        if with_block:
            assert run.returncode == 0, run.stderr
            assert run.stdout.split()[0] == "teller-guard"
            assert "Office_tg_release" in run.stdout
        else:
            assert run.returncode != 0
            assert "needs Teller Guard's <Policy teller-guard>" in run.stderr
    finally:
        cups_ctx.__exit__(None, None, None)
