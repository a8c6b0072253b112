"""The frozen (PyInstaller) build as IT gets it: its selftests, OCR through the worker child (the
frozen executable started with --ocr-worker), the resources loaded from the bundle, and its size.

Runs on a build made beforehand (`bash installer/ci.sh` or `installer/build.sh` make one): set
TELLER_GUARD_FROZEN to its folder (dist/teller-guard). Building it here would take minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.installer.native_probes import VIDEO_STUBS, check_cv2_stubs, check_qt_icu
from tests.support.xserver import x_env, xvfb

ENV_FROZEN = "TELLER_GUARD_FROZEN"
# Issue 13 aims at 200 MB without the OCR models; the OCR engine alone (OpenCV with its OpenBLAS,
# AVIF codec and FFmpeg stubs, onnxruntime, shapely, pyclipper) is ~178 MB of this build, which
# measured 362 MB without the models (447 MB before ICU was trimmed, FFmpeg stubbed and the
# agent became a link; installer/bundle-size.sh prints both). This ceiling catches what would
# bring back the parts the spec leaves out.
SIZE_CEILING_MB = 372
OCR_MODELS = Path("_internal") / "rapidocr_onnxruntime" / "models"
RESOURCES = Path("_internal") / "teller_guard_resources"


@pytest.fixture(scope="module")
def frozen() -> Path:
    where = os.environ.get(ENV_FROZEN)
    if not where:
        pytest.skip(f"no frozen build given: set {ENV_FROZEN}=dist/teller-guard (installer/ci.sh "
                    f"builds one and runs these tests)")
    folder = Path(where).resolve()
    for exe in ("teller-guard", "teller-guard-agent"):
        if not os.access(folder / exe, os.X_OK):
            pytest.fail(f"{folder / exe} is missing: {where} is not a frozen build")
    return folder


def _env(tmp_path: Path) -> dict[str, str]:
    """No display, no D-Bus session, a fresh data directory, and no source tree on the path: the
    frozen program must find everything inside its own folder."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "PYTHONPATH", "VIRTUAL_ENV")
           and not k.startswith("TELLER_GUARD_")}
    env["DBUS_SESSION_BUS_ADDRESS"] = "disabled:"
    env["TELLER_GUARD_DATA_DIR"] = str(tmp_path / "data")
    env["PATH"] = "/usr/bin:/bin"  # no venv python to fall back on
    return env


def _report(stdout: str) -> dict[str, str]:
    """The selftest report's lines as {part: status}."""
    parts = {}
    for line in stdout.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("PASS", "FAIL", "SKIP"):
            name = line.split(words[0], 1)[1].strip()
            parts[name.split("  ")[0].strip()] = words[0]
    return parts


def _du_mb(path: Path) -> float:
    total = sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return total / (1024 * 1024)


def test_the_bundle_is_lean(frozen: Path) -> None:
    size = _du_mb(frozen)
    models = _du_mb(frozen / OCR_MODELS) if (frozen / OCR_MODELS).is_dir() else 0.0
    print(f"frozen bundle: {size:.0f} MB, OCR models {models:.0f} MB")
    assert size - models <= SIZE_CEILING_MB, f"{size - models:.0f} MB without the OCR models"
    names = {p.name for p in (frozen / "_internal").rglob("*")}
    # Qt stacks and plugins the product does not use, the system GTK the gtk3 theme would
    # bring, a second Qt (non-headless OpenCV), the collector's PostgreSQL driver
    for unused in ("libQt6Qml", "libQt6Quick", "libQt6Pdf", "libQt6OpenGL", "libQt6Wayland",
                   "libQt6Svg", "libQt6VirtualKeyboard", "libqwayland", "libqgtk3", "libgtk-3",
                   "libQt5", "psycopg", "qtbase_zh_CN.qm", "geodata"):
        assert not [n for n in names if n.startswith(unused)], unused
    # the parts it does use: Qt widgets on X11, local sockets (QtNetwork), input methods
    for used in ("libQt6Widgets", "libQt6Gui", "libQt6Core", "libQt6Network", "libqxcb.so",
                 "libibusplatforminputcontextplugin.so", "libonnxruntime_providers_shared.so",
                 "libX11.so.6", "libXrandr.so.2", "libXfixes.so.3"):
        assert used in names or [n for n in names if n.startswith(used)], used


def test_qt_works_with_the_bundle_s_trimmed_icu_data(frozen: Path) -> None:
    """installer/trim_icu.py keeps what Qt and the product use (native_probes.check_qt_icu)."""
    pytest.importorskip("PySide6.QtCore")
    [lib] = (frozen / "_internal" / "PySide6" / "Qt" / "lib").glob("libicudata.so.*")
    assert lib.stat().st_size < 8 * 2**20, "the ICU data library is not trimmed (31 MB in full)"
    check_qt_icu(lib)


def test_opencv_works_with_the_bundle_s_video_stubs(frozen: Path) -> None:
    """installer/stub_video.py: FFmpeg is stubbed; what only it needed is gone; the image
    processing and codecs work; a video stops the process saying why (check_cv2_stubs)."""
    pytest.importorskip("cv2")
    libs = frozen / "_internal" / "opencv_python_headless.libs"
    stubs = sorted(p for p in libs.iterdir() if VIDEO_STUBS.fullmatch(p.name))
    assert len(stubs) == 4 and all(p.stat().st_size < 100_000 for p in stubs), stubs
    left = {p.name.split("-")[0] for p in libs.iterdir()}
    assert not left & {"libvpx", "libswresample", "libssl", "libcrypto", "libdrm"}, left
    assert {"libopenblasp", "libavif", "libaom", "libpng16"} <= left  # what the images need
    check_cv2_stubs(stubs)


@pytest.mark.skipif(sys.platform != "linux", reason="Windows builds two executables")
def test_the_agent_is_the_cli_s_program_under_its_own_name(frozen: Path, tmp_path: Path) -> None:
    """One executable carries the module archive once (16 MB); the agent is a link to it, and
    the name it is started as picks the program."""
    agent = frozen / "teller-guard-agent"
    assert agent.is_symlink() and os.readlink(agent) == "teller-guard"
    for exe, usage in ((agent, "usage: teller-guard-agent "), (frozen / "teller-guard",
                                                                "usage: teller-guard ")):
        proc = subprocess.run([str(exe), "--help"], env=_env(tmp_path), capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout.startswith(usage), proc.stdout + proc.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_the_machine_service_loads_no_qt(frozen: Path, tmp_path: Path) -> None:
    """The Qt run-time hook runs for the agent only, not for the CLI's commands."""
    from tests.support.waiting import eventually

    sock = tmp_path / "s.sock"
    proc = subprocess.Popen([str(frozen / "teller-guard"), "service", "--data-dir",
                             str(tmp_path / "data"), "--socket", str(sock)],
                            env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        eventually("the service's socket", lambda: sock.exists() or proc.poll() is not None,
                   120)
        assert proc.poll() is None, proc.communicate()[1]
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert "libQt6" not in maps and "libicu" not in maps


def test_the_resources_are_in_the_bundle_as_their_package(frozen: Path) -> None:
    res = frozen / RESOURCES
    assert (res / "policy.toml").is_file()
    assert (res / "data" / "cn-card-bins.csv").is_file()
    assert {p.name for p in (res / "translations").glob("*.qm")} >= \
        {"teller_guard_zh_CN.qm", "teller_guard_en.qm"}
    for rel in ("det", "cls", "rec"):
        assert list((frozen / OCR_MODELS).glob(f"*{rel}*.onnx")), rel


def test_the_cli_selftest_passes_with_ocr(frozen: Path, tmp_path: Path) -> None:
    proc = subprocess.run([str(frozen / "teller-guard"), "selftest"], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(frozen, linux)" in proc.stdout.splitlines()[0]
    parts = _report(proc.stdout)
    for part in ("detectors", "bank card table", "ocr", "journal", "policy (packaged)",
                 "translations"):
        assert parts.get(part) == "PASS", (part, proc.stdout)


def test_the_agent_selftest_passes_under_x(frozen: Path, tmp_path: Path) -> None:
    with xvfb() as display:
        env = {**_env(tmp_path), **{k: v for k, v in x_env(display).items()
                                    if k in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}}
        proc = subprocess.run([str(frozen / "teller-guard-agent"), "--selftest"], env=env,
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    parts = _report(proc.stdout)
    for part in ("ocr", "translations", "qt translations", "qt platform"):
        assert parts.get(part) == "PASS", (part, proc.stdout + proc.stderr)
    assert parts.get("system tray") == "SKIP"  # bare Xvfb has no tray host (ci.sh starts one)


def _id_image(path: Path) -> str:
    """A PNG showing a synthetic resident ID (valid check digit, made up here); its masked form."""
    import cv2
    import numpy as np
    from stdnum.cn import ric

    body = "11010119900307123"
    resident_id = body + ric.calc_check_digit(body + "0")
    image = np.full((120, 900, 3), 255, np.uint8)
    cv2.putText(image, f"ID: {resident_id}", (20, 75), cv2.FONT_HERSHEY_SIMPLEX, 1.5,
                (0, 0, 0), 3)
    assert cv2.imwrite(str(path), image)
    return resident_id[:3] + "*" * 11 + resident_id[-4:]


def test_the_frozen_scan_finds_an_id_on_an_image(frozen: Path, tmp_path: Path) -> None:
    image = tmp_path / "capture.png"
    masked = _id_image(image)
    # the OCR worker is a child: in a frozen build the same executable with --ocr-worker
    proc = subprocess.run([str(frozen / "teller-guard"), "scan", "--format", "json", str(image)],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # 1: customer data found
    [result] = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    found = {(f["type"], f["masked"]) for f in result["findings"]}
    assert ("CN_RESIDENT_ID", masked) in found, result
    assert masked.replace("*", "") not in proc.stderr  # nothing raw in the logs either


def test_the_agent_executable_is_an_ocr_worker_with_the_flag(
        frozen: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent reads screen captures through a worker started as `teller-guard-agent
    --ocr-worker` (its sys.executable): this test's `OcrWorker` drives that frozen child over
    the real protocol."""
    from guard.scan import ocr_worker
    from guard.scan.ocr_worker import OcrWorker

    agent = frozen / "teller-guard-agent"
    monkeypatch.setattr(ocr_worker, "worker_command", lambda: [str(agent), "--ocr-worker"])
    for key in ("DISPLAY", "PYTHONPATH"):  # a worker needs neither; Qt must not load
        monkeypatch.delenv(key, raising=False)
    image = tmp_path / "capture.png"
    masked = _id_image(image)
    with OcrWorker(idle_s=30, timeout_s=240) as worker:
        pong = worker.ping()
        child = Path(f"/proc/{pong['pid']}/exe").resolve()
        assert child == agent.resolve()  # the frozen agent, not a Python interpreter
        maps = Path(f"/proc/{pong['pid']}/maps").read_text()
        assert "libQt6" not in maps  # the flag is handled before ui.app is imported
        result, size = worker.read_encoded(image.read_bytes())
    assert size == (900, 120)
    text = "".join(line.text for line in result.lines).replace(" ", "")
    assert masked[:3] in text and masked[-4:] in text and len(text) >= 18


def test_the_deb_of_the_frozen_build_installs_a_working_guard(frozen: Path,
                                                              tmp_path: Path) -> None:
    deb = os.environ.get("TELLER_GUARD_FROZEN_DEB")
    if not deb:
        pytest.skip("no .deb of the frozen build given: set TELLER_GUARD_FROZEN_DEB "
                    "(installer/ci.sh does)")
    listing = subprocess.run(["dpkg-deb", "-c", deb], check=True, capture_output=True,
                             text=True).stdout
    for path in ("./opt/teller-guard/teller-guard", "./opt/teller-guard/teller-guard-agent",
                 f"./opt/teller-guard/{RESOURCES}/policy.toml",
                 f"./opt/teller-guard/{OCR_MODELS}/ch_PP-OCRv4_rec_infer.onnx",
                 "./lib/systemd/system/teller-guard.service",
                 "./etc/xdg/autostart/teller-guard-agent.desktop",
                 "./etc/teller-guard/policy.toml"):
        assert path in listing, path
    assert "TEST PAYLOAD" not in subprocess.run(["dpkg-deb", "-f", deb], check=True,
                                                capture_output=True, text=True).stdout
    root = tmp_path / "root"
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    (root / "var/lib/dpkg/updates").mkdir()
    (root / "var/lib/dpkg/status").touch()
    base = {k: v for k, v in os.environ.items() if not k.startswith("TELLER_GUARD_")}
    subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends",
                    "--force-not-root", "--log=/dev/null", "-i", deb],
                   env={**base, "TELLER_GUARD_BRANCH": "BR042"}, check=True,
                   capture_output=True, text=True, timeout=300)
    installed = root / "opt/teller-guard/teller-guard"
    proc = subprocess.run([str(installed), "selftest"], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _report(proc.stdout).get("ocr") == "PASS", proc.stdout


def test_the_deb_s_service_enrols_with_its_token_and_deletes_it(
        frozen: Path, tmp_path: Path) -> None:
    """The .deb leaves IT's token in /var/lib/teller-guard/enrol-token (root only), not in
    service.env; the installed service (its unit's data directory) enrols with it at a real
    collector on loopback and deletes it."""
    from guard.ipc.status import read_status
    from tests.support.servers import run_collector
    from tests.support.waiting import eventually

    deb = os.environ.get("TELLER_GUARD_FROZEN_DEB")
    if not deb:
        pytest.skip("no .deb of the frozen build given: set TELLER_GUARD_FROZEN_DEB "
                    "(installer/ci.sh does)")
    root = tmp_path / "root"
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    (root / "var/lib/dpkg/updates").mkdir()
    (root / "var/lib/dpkg/status").touch()
    base = {k: v for k, v in os.environ.items() if not k.startswith("TELLER_GUARD_")}
    with run_collector(f"sqlite:///{tmp_path / 'collector.db'}",
                       enroll_token="tok-frozen-deb-5e1f") as collector:
        subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless",
                        "--force-depends", "--force-not-root", "--log=/dev/null", "-i", deb],
                       env={**base, "TELLER_GUARD_ENDPOINT": str(collector),
                            "TELLER_GUARD_ENROLL_TOKEN": "tok-frozen-deb-5e1f"},
                       check=True, capture_output=True, text=True, timeout=300)
        state = root / "var/lib/teller-guard"
        token = state / "enrol-token"
        assert token.read_text() == "tok-frozen-deb-5e1f\n"
        assert "tok-frozen" not in (root / "etc/teller-guard/service.env").read_text()
        # as the unit runs it: service.env's settings, the data directory it names
        settings = dict(line.split("=", 1) for line in
                        (root / "etc/teller-guard/service.env").read_text().splitlines()
                        if line and not line.startswith("#"))
        env = {**_env(tmp_path), **settings, "TELLER_GUARD_DATA_DIR": str(state)}
        log = tmp_path / "service.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(root / "opt/teller-guard/teller-guard"), "service",
                                     "--socket", str(tmp_path / "s.sock")], env=env,
                                    cwd=tmp_path, stdout=out, stderr=out)
        try:
            eventually("the token file to go", lambda: not token.exists() or
                       proc.poll() is not None, 120)
            assert proc.poll() is None, log.read_text()
            status = eventually("the enrolled status", lambda: (
                st if (st := read_status(state)) and st.enrolled else None), 60)
            assert not status.embedded and status.endpoint == str(collector)
        finally:
            proc.terminate()
            proc.wait(60)
    assert not token.exists()
    assert "tok-frozen-deb-5e1f" not in log.read_text()
