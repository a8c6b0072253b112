"""`teller-guard scan`: find customer data in files, folders or standard input.

    teller-guard scan [--format text|json] [--recursive] [--min-confidence C] PATH... | -

JSON Lines (one object per input file: `{"source", "findings"}` or `{"source", "error"}`) for
machines, a table for people. The JSON object of a file is written finding by finding as the scan
goes, so a dense 200 MB file never sits in memory as one record; a file that fails part-way
through (damaged late) has both the findings found so far and its "error".

Exit status: 0 nothing found; 1 customer data found; 2 an input could not be read (or the
command line was wrong, or every path was a folder given without --recursive); 3 customer data
found AND some input could not be read (both matter: a caller that only tests "!= 0" still sees
something to act on, one that tests 1 still tells data from failure). A folder given without
--recursive is skipped with a note on standard error, not counted as an unreadable file. Only
masked values and keyed hashes are printed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the engine is imported when the command runs, not when the CLI starts
    from guard.model import Finding
    from guard.scan.engine import Scanner
    from guard.scan.ocr_worker import OcrWorker

EXIT_CLEAN = 0
EXIT_FOUND = 1
EXIT_FAILED = 2
EXIT_FOUND_AND_FAILED = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scan",
        help="find customer data in files",
        description="Find customer data (resident IDs, bank cards, mobiles, e-mails, USCC, "
        "passports, accounts) in text files, CSV/TSV, HTML, JSON, XML, xlsx, docx and pdf. Exit 0 "
        "when nothing is found, 1 when customer data is found, 2 when an input could not be read, "
        "3 when customer data is found and some input could not be read.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders; '-' reads stdin")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: a table for people (default); json: JSON Lines, one object per file")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="scan folders and their subfolders")
    p.add_argument("--min-confidence", type=_confidence, default=0.5, metavar="C",
                   help="report findings with confidence >= C (0..1, default 0.5)")
    p.set_defaults(func=run)


def _confidence(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number between 0 and 1") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{raw} is not between 0 and 1")
    return value


_SKIPPED = "is a folder; add --recursive to scan it"


def _inputs(paths: list[str], recursive: bool) -> Iterator[tuple[str, str | None]]:
    """(source, note) for every input file, in a stable order; folders expand when recursive.

    The note is `_SKIPPED` for a folder given without --recursive.
    """
    for path in paths:
        if path == "-":
            yield path, None
        elif os.path.isdir(path):
            if not recursive:
                yield path, _SKIPPED
                continue
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    yield os.path.join(root, name), None
        else:
            yield path, None


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:  # `teller-guard scan … | head`: the reader has gone, stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FOUND


def _run(args: argparse.Namespace) -> int:
    from guard import identity
    from guard.paths import ConfigError
    from guard.scan.engine import Scanner

    try:
        scanner = Scanner(key=identity.hash_key(), min_confidence=args.min_confidence)
    except ConfigError as exc:
        print(f"teller-guard scan: {exc}", file=sys.stderr)
        return EXIT_FAILED
    inputs = list(_inputs(args.paths, args.recursive))
    progress = args.recursive and sys.stderr.isatty()
    out = sys.stdout
    if isinstance(out, io.TextIOWrapper):
        # JSON Lines are UTF-8 whatever the console's code page; a file name that is not valid
        # Unicode is written back as its own bytes instead of crashing the scan
        if args.format == "json":
            out.reconfigure(encoding="utf-8", errors="surrogateescape")
        else:
            out.reconfigure(errors="backslashreplace")
    found = failed = skipped = 0
    table = _Table(out) if args.format == "text" else None
    images = _Images(scanner)  # one OCR worker per run, started by the first image
    try:
        found, failed, skipped = _each(inputs, scanner, images, out, table, progress)
    finally:
        images.stop()
    if progress:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
    if table is not None:
        table.summary(len(inputs) - skipped, found, failed, skipped)
    if found and failed:
        return EXIT_FOUND_AND_FAILED
    if failed or (skipped and skipped == len(inputs)):
        return EXIT_FAILED
    return EXIT_FOUND if found else EXIT_CLEAN


def _each(inputs: list[tuple[str, str | None]], scanner: Scanner, images: _Images, out: TextIO,
          table: _Table | None, progress: bool) -> tuple[int, int, int]:
    found = failed = skipped = 0
    for n, (source, note) in enumerate(inputs, 1):
        if progress:
            sys.stderr.write(f"\r\x1b[Kscanning {n}/{len(inputs)}: {_short(source)}")
            sys.stderr.flush()
        if note is _SKIPPED:
            skipped += 1
            print(f"teller-guard scan: {source}: {note}", file=sys.stderr)
            continue
        if source != "-" and images.wants(source):
            count, error = images.scan(source, out, table)
        else:
            count, error = _scan_one(scanner, source, out, table)
        if error is not None:
            failed += 1
        if count:
            found += 1
    return found, failed, skipped


class _Images:
    """The image branch: PNG, JPEG, BMP, TIFF, WebP (by their first bytes) and PDFs whose pages
    have no text layer, read through OCR (`guard.scan.images`); JSON findings carry "bbox"."""

    def __init__(self, scanner: Scanner) -> None:
        self._scanner = scanner
        self._ocr: OcrWorker | None = None

    def wants(self, source: str) -> bool:
        from guard.scan.documents import is_image

        try:
            with open(source, "rb") as fh:
                head = fh.read(16)
        except OSError:
            return False  # the text path words the error
        if is_image(head):
            return True
        return head.startswith(b"%PDF-") and _pdf_has_no_text(source)

    def scan(self, source: str, out: TextIO, table: _Table | None) -> tuple[int, str | None]:
        from guard.scan.images import scan_image_file
        from guard.scan.ocr_worker import OcrWorker

        if self._ocr is None:
            self._ocr = OcrWorker()
        result = scan_image_file(source, self._scanner, ocr=self._ocr)
        found = result.as_dicts()
        if table is not None:
            for d in found:
                table.row(source, d["type"], ",".join(str(v) for v in d["bbox"]),
                          f"{d['confidence']:.2f}", d["masked"] or d.get("document", ""))
            if result.error is not None:
                table.error(source, result.error)
        else:
            obj: dict[str, object] = {"source": source}
            if result.error is not None:
                obj["error"] = result.error
            else:
                obj["findings"] = found
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            out.flush()
        return len(found), result.error

    def stop(self) -> None:
        if self._ocr is not None:
            self._ocr.stop()


def _pdf_has_no_text(source: str) -> bool:
    """A scanned PDF: no page has a text layer (mixed PDFs stay on the text path)."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        return False
    try:
        pdf = pdfium.PdfDocument(source)
    except (pdfium.PdfiumError, OSError):
        return False
    try:
        for number in range(min(len(pdf), 50)):
            page = pdf[number]
            textpage = page.get_textpage()
            has_text = bool(textpage.get_text_range().strip())
            textpage.close()
            page.close()
            if has_text:
                return False
        return len(pdf) > 0
    finally:
        pdf.close()


def _scan_one(
    scanner: Scanner, source: str, out: TextIO, table: _Table | None
) -> tuple[int, str | None]:
    """Scan one input and write its findings as they come; (findings written, error or None)."""
    from guard.scan import documents
    from guard.scan.engine import read_error

    text = _stdin_text() if source == "-" else _file_text(source)
    count = 0
    error: str | None = None
    json_out = _JsonFile(out, source) if table is None else None
    try:
        if json_out is not None:
            # the compiled core writes the JSON of a piece's findings itself; the reference
            # engine's findings are written here, the same bytes
            encoded = scanner.json_batches(text, _json_parts())
            if encoded is not None:
                for n, joined in encoded:
                    json_out.joined(joined)
                    count += n
            else:
                for found in scanner.scan_chunk_batches(text):
                    json_out.findings(found)
                    count += len(found)
        elif table is not None:
            for found in scanner.scan_chunk_batches(text):
                for f in found:
                    table.finding(source, f)
                count += len(found)
    except _StdinError as exc:
        error = str(exc)
    except (documents.UnreadableFileError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        error = read_error(exc, "input" if source == "-" else "file")
    if json_out is not None:
        json_out.close(error)
    elif table is not None and error is not None:
        table.error(source, error)
    return count, error


class _StdinError(Exception):
    """Standard input could not be read to its end (the message is the reason shown)."""


def _file_text(source: str) -> Iterator[str]:
    from guard.scan.engine import text_chunks

    with open(source, "rb") as fh:
        yield from text_chunks(fh)


def _stdin_text() -> Iterator[str]:
    # spooled so that the content decides how it is read, exactly as for a file; the text
    # streams from the spool as a file's does
    from guard.scan.engine import text_chunks

    with tempfile.TemporaryFile() as spool:
        try:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        except OSError as exc:
            raise _StdinError(f"cannot read standard input: {exc.strerror}") from exc
        spool.seek(0)
        yield from text_chunks(spool)


_encode = encode_basestring  # json.dumps' own string encoder (in C), the ensure_ascii=False one


def _head_json(finding_type: str) -> str:
    """What a finding's JSON object starts with, up to its start offset."""
    return '{"type": ' + _encode(finding_type) + ', "start": '


def _category_json(category: object) -> str:
    """The part of a finding's JSON object between its confidence and its hash."""
    return ', "category": ' + _encode(str(category)) + ', "hash": '


def _json_parts() -> dict[str, tuple[str, str]]:
    """Per finding type, the two constant parts of its JSON object as `finding_json` writes
    them (`_head_json`, `_category_json`), for the compiled core to write the same."""
    from guard.scan.detectors import CATEGORIES

    return {t: (_head_json(t), _category_json(c)) for t, c in CATEGORIES.items()}


_HEADS: dict[str, str] = {}
_CATEGORIES: dict[object, str] = {}
_CONFIDENCES: dict[float, str] = {}


def finding_json(
    f: Finding, *, _head: Callable[[str], str | None] = _HEADS.get,
    _category: Callable[[object], str | None] = _CATEGORIES.get,
    _confidence: Callable[[float], str | None] = _CONFIDENCES.get,
    _enc: Callable[[str], str] = encode_basestring,
) -> str:
    """`json.dumps(f.as_dict(), ensure_ascii=False)`, byte for byte, at a fraction of its cost
    (no dict, no encoder object per finding): the JSON output cost as much as the scan before.

    The parts that repeat from finding to finding (the type, the category, the few confidence
    values the detectors give) are encoded once and kept. The keyword defaults are not for
    callers: they bind the caches' lookups and the encoder as locals, a sixth of this function's
    time at ~90 000 findings per 50 MB teller log.
    """
    head = _head(f.type)
    if head is None:
        head = _HEADS[f.type] = _head_json(f.type)
    category = _category(f.category)
    if category is None:
        category = _CATEGORIES[f.category] = _category_json(f.category)
    confidence = _confidence(f.score)
    if confidence is None:
        confidence = repr(round(f.score, 4))  # json.dumps writes a float as its repr
        if len(_CONFIDENCES) < 4096:
            _CONFIDENCES[f.score] = confidence
    if f.box is None:
        return (f'{head}{f.start:d}, "end": {f.end:d}, "masked": {_enc(f.masked)}, '
                f'"confidence": {confidence}{category}{_enc(f.hash)}}}')
    return (f'{head}{f.start:d}, "end": {f.end:d}, "masked": {_enc(f.masked)}, '
            f'"confidence": {confidence}{category}{_enc(f.hash)}, "box": ['
            + ", ".join(f"{v:d}" for v in f.box) + "]}")


class _JsonFile:
    """One input's JSON Lines object, written piece by piece as the scan goes.

    The engine hands over the findings of each scanned piece of the file as one list; they are
    written `BATCH` at a time (one write, not one per finding: with PYTHONUNBUFFERED each write is
    a system call), so memory stays bounded by a piece and a batch, never by the file. With the
    compiled core a piece's findings come already written as JSON (`joined`), one write a piece.
    """

    BATCH = 256

    def __init__(self, out: TextIO, source: str) -> None:
        self._out = out
        self._source = source
        self._opened = False

    def findings(self, found: list[Finding]) -> None:
        """Writes `found` (the findings of one scanned piece), `BATCH` findings per write."""
        for i in range(0, len(found), self.BATCH):
            self._write(", ".join(map(finding_json, found[i:i + self.BATCH])))

    def joined(self, text: str) -> None:
        """Writes findings already encoded as `finding_json` does and joined by ", " (the
        compiled core's `Scanner.json_batches`), in one write."""
        if text:
            self._write(text)

    def _write(self, text: str) -> None:
        if self._opened:
            self._out.write(", " + text)
        else:
            self._opened = True
            self._out.write(f'{{"source": {_encode(self._source)}, "findings": [' + text)

    def close(self, error: str | None) -> None:
        """Ends the object: its findings (maybe none) and, when it failed, its "error"."""
        if not self._opened:
            if error is not None:
                self._out.write(f'{{"source": {_encode(self._source)}, "error": '
                                f'{_encode(error)}}}\n')
            else:
                self._out.write(f'{{"source": {_encode(self._source)}, "findings": []}}\n')
        elif error is not None:
            self._out.write(f'], "error": {_encode(error)}}}\n')
        else:
            self._out.write("]}\n")
        self._out.flush()


def _short(source: str, width: int = 60) -> str:
    return source if len(source) <= width else "…" + source[-(width - 1):]


class _Table:
    """The people's format: one row per finding, errors in place, a summary line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._total = 0
        self._header = False

    def finding(self, source: str, f: Finding) -> None:
        self._total += 1
        self._row(source, f.type, f"{f.start}-{f.end}", f"{f.score:.2f}", f.masked)

    def error(self, source: str, error: str) -> None:
        self._row(source, "ERROR", "", "", error)

    def row(self, source: str, kind: str, where: str, conf: str, what: str) -> None:
        """A finding given by its box (images) rather than its span."""
        self._total += 1
        self._row(source, kind, where, conf, what)

    def _row(self, source: str, kind: str, span: str, conf: str, what: str) -> None:
        if not self._header:
            self._out.write(f"{'SOURCE':<40} {'TYPE':<16} {'SPAN':>13} {'CONF':>5}  MASKED\n")
            self._header = True
        self._out.write(f"{_short(source, 40):<40} {kind:<16} {span:>13} {conf:>5}  {what}\n")

    def summary(self, files: int, found: int, failed: int, skipped: int = 0) -> None:
        folders = f", {skipped} folder(s) skipped (add --recursive)" if skipped else ""
        self._out.write(
            f"{files} file(s) scanned: {found} with customer data ({self._total} finding(s)), "
            f"{failed} could not be read{folders}\n"
        )
