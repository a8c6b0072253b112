"""The frozen build's stand-ins, made here from the venv's own libraries (no build needed):
installer/trim_icu.py's ICU data library and installer/stub_video.py's FFmpeg stubs, each
checked with the venv's Qt or OpenCV bound to it (tests/installer/native_probes.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.installer.conftest import INSTALLER
from tests.installer.native_probes import VIDEO_STUBS, check_cv2_stubs, check_qt_icu

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="ELF libraries")

sys.path.insert(0, str(INSTALLER))
import stub_video  # noqa: E402 (installer/ is no package)
import trim_icu  # noqa: E402


def _tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: apt-get install icu-devtools gcc binutils")


def test_the_trimmed_icu_data_serves_qt(tmp_path: Path) -> None:
    qtcore = pytest.importorskip("PySide6.QtCore")
    _tools("icupkg", "genccode", "gcc", "readelf")
    [full] = (Path(qtcore.__file__).parent / "Qt" / "lib").glob("libicudata.so.*")
    lean = tmp_path / full.name
    kept, dropped = trim_icu.trim(str(full), str(lean), str(tmp_path))
    assert 50 < kept < 200 and dropped > 3000
    assert lean.stat().st_size < full.stat().st_size / 5
    soname = subprocess.run(["readelf", "-d", str(lean)], capture_output=True, text=True,
                            check=True).stdout
    assert f"Library soname: [{full.name}]" in soname
    check_qt_icu(lean)


def test_the_keep_list() -> None:
    for item in ("cnvalias.icu", "gb18030.cnv", "windows-936-2000.cnv", "ibm-5348_P100-1997.cnv",
                 "root.res", "pool.res", "zh_Hans_CN.res", "en.res", "zoneinfo64.res",
                 "zone/zh.res", "coll/zh.res", "coll/ucadata.icu", "supplementalData.res"):
        assert trim_icu.kept(item), item
    for item in ("ja.res", "coll/ja.res", "zone/de.res", "brkitr/cjdict.dict", "curr/zh.res",
                 "lang/zh.res", "ibm-943_P15A-2003.cnv", "ibm-37_P100-1995.cnv", "unames.icu",
                 "translit/root.res", "rfc3491.spp"):
        assert not trim_icu.kept(item), item


def test_a_library_that_is_no_icu_data_is_a_clear_error(tmp_path: Path) -> None:
    _tools("readelf")
    not_icu = tmp_path / "libnot.so"
    not_icu.write_bytes(Path(sys.executable).resolve().read_bytes()[:4096])
    with pytest.raises(trim_icu.TrimError):
        trim_icu.trim(str(not_icu), str(tmp_path / "out.so"), str(tmp_path))
    assert not (tmp_path / "out.so").exists()


def test_the_video_stubs_serve_opencv_s_image_work(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    _tools("gcc", "readelf", "nm")
    [ext] = Path(cv2.__file__).parent.glob("cv2*.so")
    libs = Path(cv2.__file__).parent.parent / "opencv_python_headless.libs"
    made = stub_video.stubs(str(ext), str(libs), str(tmp_path))
    assert set(made) == {n for n in stub_video.needed(str(ext)) if VIDEO_STUBS.fullmatch(n)}
    assert len(made) == 4 and all(n > 0 for n in made.values()), made
    stubs = sorted(tmp_path / n for n in made)
    for stub in stubs:  # nothing of FFmpeg's own dependencies is needed any more
        assert set(stub_video.needed(str(stub))) <= {"libc.so.6"}, stub
    check_cv2_stubs(stubs)
