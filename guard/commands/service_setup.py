"""`teller-guard service setup-cups`: put the print guard's CUPS policy into cupsd.conf.

The guarded queues need Teller Guard's ``<Policy teller-guard>`` (release, move and re-timing
of jobs reserved to administrators) and ``PreserveJobFiles No`` in the CUPS server's
configuration; the .deb's postinst runs this. The edit is one marked block
(`cupsd_conf_with_guard`), so running it again changes nothing and ``--remove`` takes it
out. Before the file is replaced, the result is checked with ``cupsd -t`` where cupsd is
installed, and the previous file is kept as ``cupsd.conf.before-teller-guard``.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

DEFAULT_CONF = Path("/etc/cups/cupsd.conf")
BACKUP_SUFFIX = ".before-teller-guard"
EXIT_OK = 0  # set up (or already was; or the dry run's diff printed)
EXIT_FAILED = 1  # cupsd refused the result, or the file could not be written
EXIT_CONFIG = 2  # the file is missing or cannot be edited safely as it is
CHECK_TIMEOUT_S = 30.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "setup-cups",
        help="add the print guard's CUPS policy to cupsd.conf (the installer runs this)",
        description="Add Teller Guard's block to cupsd.conf: PreserveJobFiles No and the "
        "<Policy teller-guard> under which the guarded queues hold each job until the service "
        "releases it. Idempotent; the result is checked with `cupsd -t` before the file is "
        "replaced, and the previous file is kept as cupsd.conf" + BACKUP_SUFFIX + ". Exit "
        "codes: 0 done or nothing to do, 1 cupsd refused the result or the file could not be "
        "written, 2 the file is missing or cannot be edited safely.")
    p.add_argument("--conf", type=Path, default=DEFAULT_CONF, metavar="PATH",
                   help=f"the CUPS server's cupsd.conf (default {DEFAULT_CONF})")
    p.add_argument("--dry-run", action="store_true",
                   help="print the change as a unified diff and change nothing")
    p.add_argument("--remove", action="store_true",
                   help="take Teller Guard's block out again (and restore what it overrode)")
    p.add_argument("--reload", action="store_true",
                   help="after a change, have systemd restart CUPS so it reads the file")
    p.set_defaults(func=run)


def _cupsd() -> str | None:
    return shutil.which("cupsd") or ("/usr/sbin/cupsd" if Path("/usr/sbin/cupsd").exists()
                                     else None)


def check_with_cupsd(conf: Path, text: str) -> str | None:
    """What `cupsd -t` says is wrong with `text` as `conf` (None: it is accepted, or cupsd is
    not installed). The candidate is written beside `conf`, where cupsd finds the same
    cups-files.conf it will use."""
    cupsd = _cupsd()
    if cupsd is None:
        return None
    candidate = conf.with_name(f".{conf.name}.teller-guard-check")
    try:
        candidate.write_text(text, encoding="utf-8")
        result = subprocess.run([cupsd, "-t", "-c", str(candidate)], capture_output=True,
                                text=True, timeout=CHECK_TIMEOUT_S, check=False,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cupsd -t could not run: {exc}"
    finally:
        candidate.unlink(missing_ok=True)
    if result.returncode != 0:
        said = (result.stderr + result.stdout).replace(str(candidate), str(conf)).strip()
        return said[-1000:] or f"cupsd -t exited {result.returncode}"
    return None


def _replace(conf: Path, old: str, new: str) -> None:
    """Keep `old` as the backup, then put `new` in place with the file's mode and owner."""
    from guard.files import write_atomic

    st = conf.stat()
    mode = st.st_mode & 0o7777
    backup = conf.with_name(conf.name + BACKUP_SUFFIX)
    for path, text in ((backup, old), (conf, new)):
        write_atomic(path, text.encode("utf-8"), mode=mode)
        if sys.platform != "win32" and os.geteuid() == 0:
            os.chown(path, st.st_uid, st.st_gid)  # Debian's is root:lp 0640: lp must read it


def _reload() -> str:
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return "systemd is not running: restart cupsd yourself so it reads the new file"
    result = subprocess.run(["systemctl", "try-restart", "cups.service"], capture_output=True,
                            text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        return f"systemctl try-restart cups.service failed: {result.stderr.strip()[:300]}"
    return "CUPS restarted"


def run(args: argparse.Namespace) -> int:
    from guard.platforms._linux.cups import (
        CupsConfError,
        cupsd_conf_with_guard,
        cupsd_conf_without_guard,
    )

    conf: Path = args.conf
    name = "teller-guard service setup-cups"
    try:
        old = conf.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"{name}: {conf} does not exist; is CUPS installed (apt-get install cups)? "
              "Give the file with --conf PATH", file=sys.stderr)
        return EXIT_CONFIG
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{name}: cannot read {conf}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        new = cupsd_conf_without_guard(old) if args.remove else cupsd_conf_with_guard(old)
    except CupsConfError as exc:
        print(f"{name}: {conf}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if new == old:
        print(f"{conf}: nothing to change")
        return EXIT_OK
    if args.dry_run:
        sys.stdout.writelines(difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            fromfile=str(conf), tofile=f"{conf} (after setup-cups)"))
        return EXIT_OK
    problem = check_with_cupsd(conf, new)
    if problem is not None:
        print(f"{name}: cupsd refuses the result, {conf} left as it was:\n{problem}",
              file=sys.stderr)
        return EXIT_FAILED
    try:
        _replace(conf, old, new)
    except OSError as exc:
        print(f"{name}: cannot write {conf}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{conf}: Teller Guard's block {'removed' if args.remove else 'written'} "
          f"(the previous file is {conf.name}{BACKUP_SUFFIX})")
    if args.reload:
        print(_reload())
    return EXIT_OK
