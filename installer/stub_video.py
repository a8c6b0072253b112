"""Replaces the video libraries OpenCV links (FFmpeg's avcodec, avformat, avutil and swscale,
with what only they need: libvpx, swresample, an OpenSSL 1.1 and libdrm; 31 MB of
opencv_python_headless.libs) by stubs: libraries with the same names that export the symbols
cv2.abi3.so imports from them, under the same symbol versions, each a function that stops the
process with a message saying so.

The product uses OpenCV for image processing only (guard.scan.ocr and rapidocr: colour
conversion, resizing, thresholds, morphology, contours, perspective transforms); it never opens
a video (cv2.VideoCapture/VideoWriter, the only callers of FFmpeg). The dynamic linker still
needs the libraries and the symbols to load cv2 at all; nothing calls them. Should a later change
open a video, the OCR worker (its own process) exits with "teller-guard: <function> is not in
this build" on stderr instead of doing something undefined. libavif (and libaom) stay: OpenCV
creates its AVIF encoder and decoder whenever any image codec is first used (cv2.imdecode of a
PNG calls avifEncoderCreate), so a stub there would stop cv2.imread/imdecode/imencode too.

    python installer/stub_video.py CV2_SO LIBS_DIR OUT_DIR

writes one stub per library cv2 needs from LIBS_DIR that `STUBBED` names, to OUT_DIR under the
library's own file name. Needs readelf, nm and gcc; `StubError` says what failed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

STUBBED = re.compile(r"lib(avcodec|avformat|avutil|swscale)-[0-9a-f]{8}\.so(\.\d+)+")

ABORT = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noreturn, visibility("hidden"))) void tg_not_bundled(const char *name) {
    fprintf(stderr, "teller-guard: %s is not in this build (OpenCV's video "
                    "libraries are stubs: installer/stub_video.py)\n", name);
    abort();
}
"""


class StubError(Exception):
    """A stub cannot be made here; the message says why."""


def _run(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    except OSError as exc:
        raise StubError(f"{argv[0]} cannot run ({exc}): apt-get install binutils gcc") from exc
    if done.returncode:
        raise StubError(f"{' '.join(argv[:3])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def needed(lib: str) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _run("readelf", "-d", lib))


def _imports(cv2_so: str) -> dict[str, str]:
    """cv2's undefined dynamic symbols: name -> version ("" when unversioned)."""
    out: dict[str, str] = {}
    for line in _run("nm", "-D", "--undefined-only", cv2_so).splitlines():
        name = line.split()[-1]
        base, _, version = name.partition("@")
        out[base] = version.lstrip("@")
    return out


def _exports(lib: str) -> dict[str, tuple[str, int, str]]:
    """The library's defined dynamic symbols: name -> (FUNC/OBJECT/…, size, version)."""
    out: dict[str, tuple[str, int, str]] = {}
    for line in _run("readelf", "--dyn-syms", "-W", lib).splitlines():
        f = line.split()
        if len(f) >= 8 and f[0][:-1].isdigit() and f[6] != "UND":
            name, _, version = f[7].partition("@")
            out[name] = (f[3], int(f[2], 0), version.lstrip("@"))
    return out


def make_stub(cv2_so: str, lib: str, out: str) -> int:
    """Writes the stub of `lib` (for what `cv2_so` imports from it) to `out`; its symbol count."""
    imports, exports = _imports(cv2_so), _exports(lib)
    wanted = sorted(s for s in imports if s in exports and exports[s][2] == imports[s])
    if not wanted:
        raise StubError(f"{cv2_so} imports nothing from {lib}")
    soname = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", _run("readelf", "-d", lib))
    versions: dict[str, list[str]] = {}
    lines = [ABORT]
    for sym in wanted:
        kind, size, _version = exports[sym]
        versions.setdefault(imports[sym], []).append(sym)
        if kind == "FUNC" or kind == "IFUNC":
            lines.append(f'void {sym}(void) {{ tg_not_bundled("{sym}"); }}')
        else:  # data cv2 reads (copy relocation): zeroes of the same size
            lines.append(f"__attribute__((aligned(16))) char {sym}[{max(size, 1)}];")
    with tempfile.TemporaryDirectory() as work:
        src = os.path.join(work, "stub.c")
        with open(src, "w", encoding="ascii") as fh:
            fh.write("\n".join(lines) + "\n")
        args = ["gcc", "-shared", "-fPIC", "-O1", "-s", "-o", out + ".tmp", src]
        if soname:
            args.append(f"-Wl,-soname,{soname[1]}")
        named = sorted(v for v in versions if v)
        if named:  # one node per version cv2 asks for; unversioned names go in the first
            script = os.path.join(work, "versions.map")
            with open(script, "w", encoding="ascii") as fh:
                for i, version in enumerate(named):
                    syms = versions[version] + (versions.get("", []) if i == 0 else [])
                    local = " local: *;" if i == len(named) - 1 else ""
                    fh.write(f"{version} {{ global: {' '.join(s + ';' for s in syms)}{local} }};\n")
            args.append(f"-Wl,--version-script={script}")
        _run(*args)
        os.replace(out + ".tmp", out)
    return len(wanted)


def stubs(cv2_so: str, libs_dir: str, out_dir: str) -> dict[str, int]:
    """A stub in `out_dir` for each library `cv2_so` needs from `libs_dir` that `STUBBED`
    names; file name -> symbols stubbed."""
    os.makedirs(out_dir, exist_ok=True)
    made = {}
    for name in needed(cv2_so):
        if STUBBED.fullmatch(name):
            made[name] = make_stub(cv2_so, os.path.join(libs_dir, name),
                                   os.path.join(out_dir, name))
    return made


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[3])
    try:
        for lib, n in stubs(*sys.argv[1:]).items():
            print(f"stub_video: {lib}: {n} symbols")
    except (StubError, OSError) as exc:
        sys.exit(f"stub_video: {exc}")
