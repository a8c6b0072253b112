"""`teller-guard scan` run as a real subprocess: formats, exit codes, stdin, folders, progress."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

ID = "11010519491231002X"
CARD = "6222021234567890128"
MOBILE = "13812345678"


def run(args: list[str], tmp_path: Path, stdin: bytes | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TELLER_GUARD_DATA_DIR=str(tmp_path / "data"))
    env.pop("TELLER_GUARD_HASH_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "guard.cli", "scan", *args], input=stdin, capture_output=True,
        env=env, cwd=cwd or tmp_path, timeout=120,
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode(errors="surrogateescape"),
                                       proc.stderr.decode(errors="surrogateescape"))


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    (root / "sub").mkdir(parents=True)
    (root / "customers.csv").write_text(f"姓名,身份证号,手机\n张三,{ID},{MOBILE}\n", "utf-8")
    (root / "sub" / "cards.txt").write_bytes(f"卡号：{CARD}\r\n".encode("gbk"))
    (root / "sub" / "clean.log").write_text("2026-11-24 10:35:12 柜员签到\n", "utf-8")
    return root


def test_json_lines_one_object_per_file(files: Path, tmp_path: Path) -> None:
    proc = run(["--format", "json", "export/customers.csv", "export/sub/clean.log"], tmp_path)
    assert proc.returncode == 1
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["source"] for x in lines] == ["export/customers.csv", "export/sub/clean.log"]
    first = lines[0]["findings"][0]
    assert set(first) == {"type", "start", "end", "masked", "confidence", "category", "hash"}
    assert (first["type"], first["start"], first["end"], first["masked"], first["category"]) == (
        "CN_RESIDENT_ID", 14, 32, "110***********002X", "C2")
    assert 0.5 <= first["confidence"] <= 1 and len(first["hash"]) == 64
    assert lines[1] == {"source": "export/sub/clean.log", "findings": []}
    assert ID not in proc.stdout + proc.stderr and MOBILE not in proc.stdout + proc.stderr


def test_exit_codes(files: Path, tmp_path: Path) -> None:
    assert run(["export/sub/clean.log"], tmp_path).returncode == 0
    assert run(["export/sub/cards.txt"], tmp_path).returncode == 1
    assert run(["export/sub/clean.log", "missing.txt"], tmp_path).returncode == 2
    # found and failed together: 3, so data found is not hidden behind the failure
    assert run(["export/sub/cards.txt", "missing.txt"], tmp_path).returncode == 3


def test_unreadable_file_reported_and_scan_goes_on(files: Path, tmp_path: Path) -> None:
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    proc = run(["--format", "json", "image.png", "export/sub/cards.txt"], tmp_path)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines[0] == {"source": "image.png", "error": "not a PNG, JPEG, BMP, TIFF or WebP image "
                                                     "(unknown or damaged header)"}
    assert lines[1]["findings"][0]["type"] == "BANK_CARD"
    assert proc.returncode == 3


def test_stdin(tmp_path: Path) -> None:
    proc = run(["--format", "json", "-"], tmp_path, stdin=f"手机 {MOBILE}".encode())
    assert proc.returncode == 1
    obj = json.loads(proc.stdout)
    assert obj["source"] == "-" and obj["findings"][0]["masked"] == "138****5678"
    assert run(["-"], tmp_path, stdin=b"nothing here").returncode == 0


def test_recursive_folder(files: Path, tmp_path: Path) -> None:
    proc = run(["--format", "json", "--recursive", "export"], tmp_path)
    sources = [json.loads(x)["source"] for x in proc.stdout.splitlines()]
    assert sources == [
        os.path.join("export", "customers.csv"), os.path.join("export", "sub", "cards.txt"),
        os.path.join("export", "sub", "clean.log"),
    ]
    assert proc.returncode == 1
    # a folder without --recursive is skipped with a note, not reported as an unreadable file
    no_r = run(["--format", "json", "export"], tmp_path)
    assert no_r.returncode == 2 and no_r.stdout == ""
    assert "is a folder; add --recursive" in no_r.stderr
    with_file = run(["--format", "json", "export", "export/sub/cards.txt"], tmp_path)
    assert with_file.returncode == 1 and "add --recursive" in with_file.stderr
    assert [json.loads(x)["source"] for x in with_file.stdout.splitlines()] == [
        "export/sub/cards.txt"]
    table = run(["export", "export/sub/clean.log"], tmp_path)
    assert table.returncode == 0 and "1 folder(s) skipped (add --recursive)" in table.stdout


def test_text_table(files: Path, tmp_path: Path) -> None:
    proc = run(["-r", "export"], tmp_path)
    out = proc.stdout
    assert "SOURCE" in out and "CN_RESIDENT_ID" in out and "110***********002X" in out
    assert "622202*********0128" in out and "3 file(s) scanned: 2 with customer data" in out
    assert CARD not in out and proc.returncode == 1


def test_min_confidence(tmp_path: Path) -> None:
    (tmp_path / "weak.txt").write_text("借记卡号：6222021234567890120", "utf-8")  # fails Luhn
    assert run(["weak.txt"], tmp_path).returncode == 1
    assert run(["--min-confidence", "0.9", "weak.txt"], tmp_path).returncode == 0
    bad = run(["--min-confidence", "2", "weak.txt"], tmp_path)
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr


def test_progress_on_a_terminal_only(files: Path, tmp_path: Path) -> None:
    env = dict(os.environ, TELLER_GUARD_DATA_DIR=str(tmp_path / "data"))
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "guard.cli", "scan", "-r", "--format", "json", "export"],
            stdout=subprocess.PIPE, stderr=slave, env=env, cwd=tmp_path, timeout=120,
        )
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert b"scanning 3/3" in seen
    assert proc.returncode == 1 and b"scanning" not in proc.stdout
    assert "scanning" not in run(["-r", "export"], tmp_path).stderr  # not a terminal: quiet


def test_file_name_that_is_not_unicode(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / os.fsdecode(b"bad\xff.txt")).write_text(f"手机{MOBILE}", "utf-8")
    for fmt in ("json", "text"):
        proc = run(["--format", fmt, "-r", "odd"], tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert "138****5678" in proc.stdout


def test_json_streamed_per_finding_matches_the_engine(tmp_path: Path) -> None:
    from guard.scan.engine import Scanner

    rows = "".join(f"客户{i},{ID},{MOBILE}\n" for i in range(3000))
    path = tmp_path / "dense.csv"
    path.write_text("姓名,身份证号,手机\n" + rows, "utf-8")
    proc = run(["--format", "json", "dense.csv"], tmp_path)
    assert proc.returncode == 1
    (obj,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert set(obj) == {"source", "findings"} and len(obj["findings"]) == 6000
    ours = Scanner(key=b"k").scan_file(path).findings
    assert [(f["type"], f["start"], f["end"]) for f in obj["findings"]] == [
        (f.type, f.start, f.end) for f in ours]


def test_file_damaged_late_keeps_its_findings_and_says_why(tmp_path: Path) -> None:
    # valid text past the first 1 MiB read, then bytes neither UTF-8 nor GB18030 can decode
    data = f"卡号：{CARD}\n".encode() + (b"x" * 99 + b"\n") * 11_000 + b"\xff\xff\xff\n"
    (tmp_path / "late.txt").write_bytes(data)
    proc = run(["--format", "json", "late.txt"], tmp_path)
    (obj,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert obj["findings"][0]["type"] == "BANK_CARD"
    assert "cannot decode" in obj["error"]
    assert proc.returncode == 3
