"""`teller-guard scan`: find customer data in files, folders or standard input.

    teller-guard scan [--format text|json] [--recursive] [--min-confidence C] PATH... | -

JSON Lines (one object per input file: `{"source", "findings"}` or `{"source", "error"}`) for
machines, a table for people. Exit status: 0 nothing found, 1 customer data found, 2 an input
could not be read (or the command line was wrong). Only masked values and keyed hashes are printed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the engine is imported when the command runs, not when the CLI starts
    from guard.scan.engine import FileResult, Scanner

EXIT_CLEAN = 0
EXIT_FOUND = 1
EXIT_FAILED = 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scan",
        help="find customer data in files",
        description="Find customer data (resident IDs, bank cards, mobiles, e-mails, USCC, "
        "passports, accounts) in text files, CSV/TSV, xlsx, docx and pdf. Exit 0 when nothing is "
        "found, 1 when customer data is found, 2 when an input could not be read.",
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


def _inputs(paths: list[str], recursive: bool) -> Iterator[tuple[str, str | None]]:
    """(source, error) for every input file, in a stable order; folders expand when recursive."""
    for path in paths:
        if path == "-":
            yield path, None
        elif os.path.isdir(path):
            if not recursive:
                yield path, "is a folder; add --recursive to scan it"
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
    from guard.paths import ConfigError
    from guard.scan.engine import FileResult, Scanner

    try:
        scanner = Scanner(min_confidence=args.min_confidence)
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
    found = failed = 0
    table = _Table(out) if args.format == "text" else None
    for n, (source, error) in enumerate(inputs, 1):
        if progress:
            sys.stderr.write(f"\r\x1b[Kscanning {n}/{len(inputs)}: {_short(source)}")
            sys.stderr.flush()
        if error is not None:
            result = FileResult(source, [], error)
        elif source == "-":
            result = _scan_stdin(scanner)
        else:
            result = scanner.scan_file(source)
        if result.error is not None:
            failed += 1
        elif result.findings:
            found += 1
        if table is not None:
            table.add(result)
        else:
            obj: dict[str, object] = {"source": result.source}
            if result.error is not None:
                obj["error"] = result.error
            else:
                obj["findings"] = [f.as_dict() for f in result.findings]
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            out.flush()
    if progress:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
    if table is not None:
        table.summary(len(inputs), found, failed)
    if failed:
        return EXIT_FAILED
    return EXIT_FOUND if found else EXIT_CLEAN


def _scan_stdin(scanner: Scanner) -> FileResult:
    from guard.scan.engine import FileResult

    # spooled so that the content decides how it is read, exactly as for a file
    with tempfile.TemporaryFile() as spool:
        try:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        except OSError as exc:
            return FileResult("-", [], f"cannot read standard input: {exc.strerror}")
        spool.seek(0)
        return scanner.scan_stream(spool, "-")


def _short(source: str, width: int = 60) -> str:
    return source if len(source) <= width else "…" + source[-(width - 1):]


class _Table:
    """The people's format: one row per finding, errors in place, a summary line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._total = 0
        self._header = False

    def add(self, result: FileResult) -> None:
        if result.error is not None:
            self._row(result.source, "ERROR", "", "", result.error)
            return
        for f in result.findings:
            self._total += 1
            self._row(result.source, f.type, f"{f.start}-{f.end}", f"{f.score:.2f}", f.masked)

    def _row(self, source: str, kind: str, span: str, conf: str, what: str) -> None:
        if not self._header:
            self._out.write(f"{'SOURCE':<40} {'TYPE':<16} {'SPAN':>13} {'CONF':>5}  MASKED\n")
            self._header = True
        self._out.write(f"{_short(source, 40):<40} {kind:<16} {span:>13} {conf:>5}  {what}\n")

    def summary(self, files: int, found: int, failed: int) -> None:
        self._out.write(
            f"{files} file(s) scanned: {found} with customer data ({self._total} finding(s)), "
            f"{failed} could not be read\n"
        )
