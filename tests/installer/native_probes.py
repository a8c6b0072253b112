"""Native checks of the frozen build's stand-ins (installer/trim_icu.py, installer/stub_video.py),
run in a child of the venv's Python with the stand-in libraries preloaded: the dynamic linker
then binds the venv's Qt and OpenCV to them (same file names, same symbols) instead of the
originals. Shared by the frozen-build tests and the tests of the tools themselves."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# Qt's ICU calls (collation, time-zone names, codecs, case mapping) through the venv's PySide6
# (the Qt the bundle carries).
QT_ICU_PROBE = r"""
import functools, json
from PySide6.QtCore import QCollator, QCoreApplication, QLocale, QStringDecoder, QTimeZone
app = QCoreApplication([])
zh = QCollator(QLocale("zh_CN"))
tz = QTimeZone(b"Asia/Shanghai")
std, long_ = QTimeZone.TimeType.StandardTime, QTimeZone.NameType.LongName
print(json.dumps({
    "pinyin": sorted(["张三", "李四", "王五", "赵六", "阿明"],
                     key=functools.cmp_to_key(zh.compare)),
    "zone_zh": tz.displayName(std, long_, QLocale("zh_CN")),
    "zone_en": tz.displayName(std, long_, QLocale("en_US")),
    "codecs": {n: QStringDecoder(n).isValid() for n in
               ("GB18030", "GBK", "GB2312", "Big5", "windows-1252", "ISO-8859-15", "Shift_JIS")},
    "upper": QLocale("tr_TR").toUpper("istanbul"),
    "icudata": sorted({l.split()[-1] for l in open("/proc/self/maps") if "libicudata" in l}),
}, ensure_ascii=False))
"""


def check_qt_icu(lib: Path) -> None:
    """Qt with the ICU data library `lib`: Chinese (pinyin) collation, Chinese and English
    time-zone names, the Chinese and Western codecs, Turkish case mapping."""
    env = {**os.environ, "LD_PRELOAD": str(lib), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", QT_ICU_PROBE], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["icudata"] == [str(lib)]  # the one given, not the venv's full one
    assert got["pinyin"] == ["阿明", "李四", "王五", "张三", "赵六"]
    assert (got["zone_zh"], got["zone_en"]) == ("中国标准时间", "China Standard Time")
    assert got["codecs"] == {"GB18030": True, "GBK": True, "GB2312": True, "Big5": True,
                             "windows-1252": True, "ISO-8859-15": True,
                             "Shift_JIS": False}  # Japanese code pages are dropped
    assert got["upper"] == "İSTANBUL"


# What the OCR asks of OpenCV (guard.scan.ocr, rapidocr), its image codecs, and a video.
CV2_PROBE = r"""
import sys, cv2, numpy as np
img = np.zeros((120, 400, 3), np.uint8)
cv2.putText(img, "12345", (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
gray = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (400, 120))
_, bw = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
n = cv2.connectedComponentsWithStats(bw)[0]
contours, _ = cv2.findContours(bw, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
box = cv2.boxPoints(cv2.minAreaRect(contours[0]))
m = cv2.getPerspectiveTransform(np.float32([[0, 0], [1, 0], [1, 1], [0, 1]]),
                                np.float32([[0, 0], [2, 0], [2, 2], [0, 2]]))
warped = cv2.warpPerspective(img, m, (100, 100))
ok, png = cv2.imencode(".png", img)
back = cv2.imdecode(png, cv2.IMREAD_COLOR)
print(n, len(contours), float(m[0][0]), ok, back.shape == img.shape)
if sys.argv[1:] == ["video"]:
    cv2.VideoCapture("/nonexistent.mp4")
    print("video opened")
"""
VIDEO_STUBS = re.compile(r"lib(avcodec|avformat|avutil|swscale)-[0-9a-f]{8}\.so[.\d]*")


def check_cv2_stubs(stubs: list[Path]) -> None:
    """The venv's OpenCV with the FFmpeg `stubs`: the OCR's operations and the image codecs
    work; opening a video stops the process with the stub's message."""
    import cv2

    [ext] = Path(cv2.__file__).parent.glob("cv2*.so")
    needed = subprocess.run(["readelf", "-d", str(ext)], capture_output=True, text=True,
                            check=True).stdout
    if not all(p.name in needed for p in stubs):
        pytest.skip(f"{ext} is another OpenCV build than the stubs'")
    env = {**os.environ, "LD_PRELOAD": ":".join(map(str, stubs))}
    proc = subprocess.run([sys.executable, "-c", CV2_PROBE], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[2:] == ["2.0", "True", "True"], proc.stdout
    proc = subprocess.run([sys.executable, "-c", CV2_PROBE, "video"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGABRT and "video opened" not in proc.stdout
    assert re.search(r"teller-guard: av\w+ is not in this build", proc.stderr), proc.stderr
