"""Reading the clipboard into ClipboardContent within bounds, and the ClipboardPort over QClipboard
(offscreen: Qt's clipboard is in-process here; the X11 tests cover other processes)."""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QBuffer, QIODevice, QMimeData, QUrl
from PySide6.QtGui import QGuiApplication, QImage
from pytestqt.qtbot import QtBot

from guard.ports import ClipboardContent
from ui.mainthread import MainThread
from ui.qtclipboard import ClipboardFeed, QtClipboard, read_content


def huge_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of the given size, built without ever holding its pixels decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


def test_feed_reports_text_changes(qtbot: QtBot, main_thread: MainThread) -> None:
    got: list[ClipboardContent] = []
    clipboard = QGuiApplication.clipboard()
    feed = ClipboardFeed(got.append, clipboard, owner_app=lambda: "notepad")
    clipboard.setText("卡号 6222 0212 3456 7890 128")
    qtbot.waitUntil(lambda: any(c.text for c in got), timeout=5000)
    content = next(c for c in got if c.text)
    assert content.text == "卡号 6222 0212 3456 7890 128"
    assert "text/plain" in content.formats
    assert content.size == len(content.text.encode())
    assert content.source_app == "notepad"
    assert feed.changes >= 1


def test_huge_image_is_passed_encoded_never_decoded(qapp) -> None:
    png = huge_png(20000, 20000)
    assert len(png) < 2 * 1024 * 1024
    mime = QMimeData()
    mime.setData("image/png", png)
    mime.setData("application/x-teller-binary", b"\x00\x01\x02")
    content = read_content(mime)
    assert content.image == png
    assert content.text is None
    assert "application/x-teller-binary" in content.formats  # listed, not read
    assert content.size == len(png)


def test_non_png_image_over_the_pixel_cap_is_left_out(qapp) -> None:
    # A BMP header claiming 20000x20000 pixels: the size is read from the header, nothing decoded.
    header = b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, 20000, 20000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    mime = QMimeData()
    mime.setData("image/bmp", header)
    content = read_content(mime)
    assert content.image is None
    assert content.formats == ("image/bmp",)


def test_small_non_png_image_is_converted_to_png(qapp) -> None:
    image = QImage(40, 20, QImage.Format.Format_RGB32)
    image.fill(0x336699)
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "BMP")  # type: ignore[call-overload]
    mime = QMimeData()
    mime.setData("image/bmp", buf.data())
    content = read_content(mime)
    assert content.image is not None and content.image[:8] == b"\x89PNG\r\n\x1a\n"


def test_file_list(qapp, tmp_path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "客户名单.xlsx")),
                  QUrl("https://example.com/x")])
    content = read_content(mime)
    assert content.paths == (str(tmp_path / "客户名单.xlsx"),)


def test_port_set_text_clear_and_current_from_a_worker(qtbot: QtBot,
                                                       main_thread: MainThread) -> None:
    port = QtClipboard(main_thread)
    clipboard = QGuiApplication.clipboard()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(port.set_text, "622202******0128").result(timeout=5)
        qtbot.waitUntil(lambda: clipboard.text() == "622202******0128", timeout=5000)
        fut = pool.submit(port.current)
        qtbot.waitUntil(fut.done, timeout=5000)
        current = fut.result()
        assert current is not None and current.text == "622202******0128"
        pool.submit(port.clear).result(timeout=5)
        qtbot.waitUntil(lambda: clipboard.text() == "", timeout=5000)
        # current() gives up after 100 ms when the Qt thread does not answer (it is blocked here)
        assert pool.submit(port.current).result(timeout=5) is None


def test_redaction_never_overwrites_a_newer_copy(qtbot: QtBot, main_thread: MainThread) -> None:
    port = QtClipboard(main_thread)
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("卡号 6222021234567890128")
    redacted = read_content(clipboard.mimeData())
    clipboard.setText("newer copy: 13812345678")  # the teller copied again meanwhile
    with ThreadPoolExecutor(1) as pool:
        pool.submit(port.set_text, "卡号 622202*********0128",
                    replaces=redacted.fingerprint()).result(timeout=5)
        qtbot.waitUntil(lambda: port.stale_skipped == 1, timeout=5000)
        assert clipboard.text() == "newer copy: 13812345678"
        newer = read_content(clipboard.mimeData())
        pool.submit(port.set_text, "newer copy: 138****5678",
                    replaces=newer.fingerprint()).result(timeout=5)
        qtbot.waitUntil(lambda: clipboard.text() == "newer copy: 138****5678", timeout=5000)


def test_the_same_copy_reported_twice_is_delivered_once(qtbot: QtBot,
                                                        main_thread: MainThread) -> None:
    got: list[ClipboardContent] = []
    clipboard = QGuiApplication.clipboard()
    feed = ClipboardFeed(got.append, clipboard)
    clipboard.setText("手机 13812345678")
    qtbot.waitUntil(lambda: len(got) == 1, timeout=5000)
    clipboard.dataChanged.emit()  # what Qt on X11 does when ownership moves
    assert len(got) == 1 and feed.duplicates == 1
    clipboard.setText("手机 13912345678")
    qtbot.waitUntil(lambda: len(got) == 2, timeout=5000)
    assert got[1].text == "手机 13912345678"
