"""Trims the ICU data library Qt Core links (PySide6's libicudata.so.73, 31 MB) to the items Qt
and the product use: a library with the same name, symbol and layout, about a tenth the size.

Qt Core calls ICU for five things only (its imports: `nm -D --undefined-only libQt6Core.so.6`):
case mapping (u_strToUpper/Lower: their data is compiled into libicuuc, the locale rules are in
code), text codecs (ucnv_*: QStringConverter's non-UTF codecs), collation (ucol_*: QCollator),
time-zone names (ucal_*: QTimeZone) and nothing else (no break iterators, no IDNA, no number or
date formatting: Qt formats with its own CLDR tables). Kept (`KEEP`): the converter alias table
and the Chinese and Western code pages (GB18030, GBK, GB2312, Big5, Windows and ISO 8859, DOS,
KOI8-R, Mac Roman); the root, English and Chinese locale bundles with the shared pool, the
likely-subtags, metadata, key-type, calendar and week data those resolve through; the time-zone
database, its metazone mapping and the root/English/Chinese zone names; the root collation
(UCA), Chinese collation (pinyin, stroke, zhuyin) and English; NFKC normalisation. Dropped:
every other locale and its zone names and collation, Japanese, Korean, EBCDIC and other code
pages, break-iterator rules and dictionaries (CJK, Thai, Khmer …), currency, language, region
and unit display names, number spell-out, transliteration, StringPrep/IDNA profiles, confusables,
character names, emoji and layout properties.

    python installer/trim_icu.py SRC_LIBICUDATA DEST_LIBICUDATA [WORKDIR]

Needs icupkg and genccode (Debian icu-devtools) and a C compiler; `TrimError` says which is
missing. The data package's own format does not depend on the tools' ICU version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

LOCALES = r"(root|pool|res_index|en|en_US|en_US_POSIX|en_001|en_150|en_GB|zh(_\w+)?|tzdbNames)"
KEEP = tuple(re.compile(p) for p in (
    # codecs
    r"cnvalias\.icu",
    r"(gb18030|windows-936-2000|ibm-1386_P100-2001|ibm-5478_P100-1995|ibm-1383_P110-1999"
    r"|windows-950-2000|ibm-950_P110-1999|ibm-1373_P100-2002|ibm-1375_P100-2008)\.cnv",
    r"ibm-(534[6-9]|535[0-4])_P100-199\d\.cnv",  # windows-1250 … 1258
    r"ibm-(912|913|914|915|916|920|923|813|437|850|858|878)_P1\d\d-\d{4}\.cnv",  # ISO 8859, DOS
    r"macos-0_2-10\.2\.cnv",
    # locales and what they resolve through
    LOCALES + r"\.res",
    r"(likelySubtags|metadata|keyTypeData|supplementalData|numberingSystems|icuver|icustd"
    r"|timezoneTypes|metaZones|windowsZones|zoneinfo64)\.res",
    r"zone/" + LOCALES + r"\.res",
    r"coll/" + LOCALES + r"\.res", r"coll/ucadata\.icu",
    r"nfkc\.nrm", r"nfkc_cf\.nrm",
))
SYMBOL = re.compile(r"\b(icudt\d+)_dat\b")


class TrimError(Exception):
    """The ICU data library cannot be trimmed here; the message says what is missing."""


def kept(item: str) -> bool:
    return any(p.fullmatch(item) for p in KEEP)


def _run(*argv: str) -> str:
    tool = shutil.which(argv[0])
    if tool is None:
        raise TrimError(f"{argv[0]} is not installed (apt-get install icu-devtools gcc)")
    done = subprocess.run([tool, *argv[1:]], capture_output=True, text=True)
    if done.returncode:
        raise TrimError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _data_symbol(lib: str) -> tuple[str, int, int]:
    """(name, file offset, size) of the data package the library exports (icudtNN_dat)."""
    symbols = _run("readelf", "-s", "-W", "-S", lib)
    match = re.search(r"\s+\d+: ([0-9a-f]+) +(0x[0-9a-f]+|\d+) OBJECT +GLOBAL +\w+ +(\d+) "
                      r"(icudt\d+_dat)\n", symbols)
    if match is None:
        raise TrimError(f"{lib} exports no icudtNN_dat symbol: not an ICU data library")
    address, size = int(match[1], 16), int(match[2], 0)
    section = re.search(rf"\[ *{match[3]}\] \S+ +\w+ +([0-9a-f]+) ([0-9a-f]+)", symbols)
    if section is None:
        raise TrimError(f"{lib}: no section {match[3]}")
    return match[4], address - int(section[1], 16) + int(section[2], 16), size


def trim(src: str, dest: str, workdir: str | None = None) -> tuple[int, int]:
    """Writes the trimmed copy of `src` to `dest`; the items (kept, dropped)."""
    symbol, offset, size = _data_symbol(src)
    soname = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", _run("readelf", "-d", src))
    work = tempfile.mkdtemp(dir=workdir)
    try:
        name = symbol[:-len("_dat")] + "l"  # icudt73l: little-endian ASCII, as the package is
        full = os.path.join(work, f"{name}.dat")
        with open(src, "rb") as fh:
            fh.seek(offset)
            data = fh.read(size)
        with open(full, "wb") as fh:
            fh.write(data)
        items = _run("icupkg", "-l", full).split()
        dropped = [i for i in items if not kept(i)]
        listing = os.path.join(work, "dropped.txt")
        with open(listing, "w", encoding="ascii") as fh:
            fh.write("\n".join(dropped) + "\n")
        lean = os.path.join(work, "lean", f"{name}.dat")
        os.makedirs(os.path.dirname(lean))
        _run("icupkg", "-r", listing, full, lean)
        _run("genccode", "-a", "gcc", "-e", symbol[:-len("_dat")], "-d", work, lean)
        asm = os.path.join(work, f"{name}_dat.S")
        _run("gcc", "-shared", "-nostdlib", "-s", "-Wl,-z,noexecstack", "-Wl,--build-id",
             *([f"-Wl,-soname,{soname[1]}"] if soname else []), "-o", dest + ".tmp", asm)
        os.replace(dest + ".tmp", dest)
        return len(items) - len(dropped), len(dropped)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__.split("\n\n")[2])
    try:
        kept_n, dropped_n = trim(*sys.argv[1:])
    except (TrimError, OSError) as exc:
        sys.exit(f"trim_icu: {exc}")
    before, after = (os.path.getsize(p) / 2**20 for p in sys.argv[1:3])
    print(f"trim_icu: {sys.argv[2]}: kept {kept_n} items, dropped {dropped_n}; "
          f"{before:.1f} MB -> {after:.1f} MB")
