"""`teller-guard selftest`: check every part of this installation and print a pass/fail report.

Meant for the frozen build and for IT after a deployment: the detectors on a built-in synthetic
sample, OCR (when installed), a journal written and read back in a temporary folder, the secret
store, the platform backends (which capabilities this desktop and machine offer, and why not),
the translations, the packaged and machine policy, and the data directory. Each part is one
`Check`; a part that cannot apply here (OCR not installed, no desktop) is skipped with the
reason, not failed. The exit code is 0 only when nothing failed.

The sample values are synthetic: made of a fixed prefix and a check digit computed here, never a
real person's; the report shows only their masked forms.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1

# The first 16 bytes of every compiled Qt translation (QTranslator's magic number).
QM_MAGIC = bytes.fromhex("3cb86418caef9c95cd211cbf60a1bddd")
LANGUAGES = ("zh_CN", "en")


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class Check:
    """The result of checking one part: its name, the status and one line saying why."""

    name: str
    status: Status
    detail: str


class CheckFailed(Exception):
    """A part does not work; the message says what was expected and what happened."""


class CheckSkipped(Exception):
    """A part cannot be checked here (not installed, no desktop); the message says why."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "selftest",
        help="check every part of this installation and print a pass/fail report",
        description="Check the detectors (on a synthetic sample), OCR when installed, the "
        "journal (in a temporary folder), the secret store, the platform backends, the "
        "translations, the policy and the data directory. Parts that cannot apply here are "
        "skipped with the reason. Exit codes: 0 nothing failed, 1 a part failed.",
    )
    p.add_argument("--data-dir", type=Path, metavar="D",
                   help="data directory to check (default: TELLER_GUARD_DATA_DIR or the "
                        "machine's)")
    p.add_argument("--require-desktop", action="store_true",
                   help="fail, rather than skip, when there is no desktop session backend")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checks = run_checks(data_dir=args.data_dir, require_desktop=args.require_desktop)
    return report(checks, sys.stdout, title="teller-guard selftest")


# ---------------------------------------------------------------------------------------------
# Running and reporting.


def attempt(name: str, check: Callable[[], str]) -> Check:
    """Run one check: its return value is the pass detail; `CheckSkipped` skips, anything else
    fails, so one broken part never hides the others."""
    try:
        return Check(name, Status.PASS, check())
    except CheckSkipped as exc:
        return Check(name, Status.SKIP, str(exc))
    except CheckFailed as exc:
        return Check(name, Status.FAIL, str(exc))
    except Exception as exc:  # a selftest reports a crash in any part as that part's failure
        return Check(name, Status.FAIL, f"unexpected {type(exc).__name__}: {exc}")


def run_checks(*, data_dir: Path | None = None, require_desktop: bool = False) -> list[Check]:
    """Every check of the core, in report order."""
    out = [
        attempt("data directory", lambda: check_data_dir(data_dir)),
        attempt("detectors", check_detectors),
        attempt("bank card table", check_bin_table),
        attempt("ocr", check_ocr),
        attempt("journal", check_journal),
        attempt("secret store", check_secret_store),
        attempt("policy (packaged)", check_packaged_policy),
        attempt("policy (machine)", check_machine_policy),
        attempt("translations", check_translation_files),
    ]
    out.extend(platform_checks(require_desktop=require_desktop))
    return out


def failed(checks: Iterable[Check]) -> bool:
    return any(c.status is Status.FAIL for c in checks)


def report(checks: Sequence[Check], out: TextIO, *, title: str) -> int:
    """Print the report; returns the exit code (0 only when nothing failed)."""
    from guard import __version__

    build = "frozen" if getattr(sys, "frozen", False) else "source"
    print(f"{title} {__version__} ({build}, {sys.platform})", file=out)
    width = max((len(c.name) for c in checks), default=0)
    for c in checks:
        print(f"  {c.status.value}  {c.name:<{width}}  {c.detail}", file=out)
    counts = {s: sum(1 for c in checks if c.status is s) for s in Status}
    verdict = "FAILED" if counts[Status.FAIL] else "OK"
    print(f"result: {verdict}: {counts[Status.PASS]} passed, {counts[Status.SKIP]} skipped, "
          f"{counts[Status.FAIL]} failed", file=out, flush=True)
    return EXIT_FAILED if counts[Status.FAIL] else EXIT_OK


# ---------------------------------------------------------------------------------------------
# The parts.


def synthetic_sample() -> tuple[str, dict[str, str]]:
    """A text with one synthetic resident ID, bank card and mobile number, and the types it must
    give with their masked forms. The check digits are computed, so the values are valid in
    form but made up here."""
    from stdnum import luhn
    from stdnum.cn import ric

    id_body = "11010119900307123"  # Beijing Dongcheng, born 1990-03-07, sequence 123
    resident_id = id_body + ric.calc_check_digit(id_body + "0")  # it ignores the last digit
    card_body = "622848001234567"  # an Agricultural Bank of China BIN, then a made-up account
    card = card_body + luhn.calc_check_digit(card_body)
    mobile = "13912345678"
    text = f"客户身份证号 {resident_id}，银行卡号 {card}，联系手机 {mobile}。"
    return text, {"CN_RESIDENT_ID": resident_id, "BANK_CARD": card, "CN_MOBILE": mobile}


def check_detectors() -> str:
    from guard.scan.engine import Scanner

    text, expected = synthetic_sample()
    # a throwaway key: the selftest must not need (or create) the install's hash key
    findings = Scanner(key=secrets.token_bytes(32)).scan_text(text)
    found = {f.type: f for f in findings}
    missing = sorted(set(expected) - set(found))
    if missing:
        raise CheckFailed(f"the synthetic sample's {', '.join(missing)} was not found "
                          f"(found: {', '.join(sorted(found)) or 'nothing'})")
    for kind, value in expected.items():
        f = found[kind]
        if value in f.masked or text[f.start:f.end] != value:
            raise CheckFailed(f"{kind}: wrong offsets or an unmasked value")
    return f"{len(findings)} findings in the synthetic sample: " + ", ".join(
        f"{k} {found[k].masked}" for k in expected)


def check_bin_table() -> str:
    from teller_guard_resources import resource

    path = resource("data", "cn-card-bins.csv")
    try:
        with path.open(encoding="utf-8") as fh:
            rows = sum(1 for line in fh if line.strip())
    except OSError as exc:
        raise CheckFailed(f"{path} cannot be read: {exc}") from exc
    if rows < 100:
        raise CheckFailed(f"{path} has only {rows} lines; the packaged table is damaged")
    return f"{rows} lines in {path.name}"


def check_ocr() -> str:
    from importlib import util as importlib_util

    from guard.scan import ocr

    if importlib_util.find_spec(ocr.MODEL_PACKAGE) is None:
        raise CheckSkipped(f"not installed ({ocr.MODEL_PACKAGE}); images are not read")
    try:
        import cv2
        import numpy as np
    except ImportError as exc:
        raise CheckFailed(f"OCR is installed but OpenCV or numpy cannot load "
                          f"({type(exc).__name__}: {exc})") from exc
    try:
        ocr.model_dir()
    except ocr.OcrUnavailableError as exc:
        raise CheckFailed(str(exc)) from exc
    digits = "6228 4800 1234 5671"  # synthetic: drawn here, read back
    image = np.full((80, 640, 3), 255, np.uint8)
    cv2.putText(image, digits, (10, 55), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (0, 0, 0), 3)
    result = ocr.OcrEngine(threads=1).read(image)
    read = "".join(line.text for line in result.lines).replace(" ", "")
    if digits.replace(" ", "") not in read:
        raise CheckFailed(f"the synthetic image was read as {len(read)} characters, not the "
                          f"{len(digits.replace(' ', ''))} digits drawn")
    return f"read a synthetic image in {result.stats.get('total_s', 0):.2f} s"


def check_journal() -> str:
    from guard.delivery.journal import Journal
    from guard.events import EventType, new_event
    from guard.model import Device

    device = Device(id="selftest", hostname="selftest", branch="")
    with tempfile.TemporaryDirectory(prefix="teller-guard-selftest-") as tmp:
        path = Path(tmp) / "journal.db"
        event = new_event(EventType.HEARTBEAT, device=device, detail={"selftest": True})
        with Journal(path, device=device, fallback_dir=Path(tmp) / "fallback") as journal:
            journal.record(event)
            if journal.path != path:
                raise CheckFailed(f"the journal did not open {path} (it fell back to "
                                  f"{journal.path or 'memory'})")
        with Journal(path, device=device, read_only=True) as again:
            rows = again.next_batch()
        if [r.event_id for r in rows] != [str(event.id)] or rows[0].body != event.to_json():
            raise CheckFailed(f"wrote 1 event, read back {len(rows)} different ones")
    return "wrote one event to a temporary journal and read it back after reopening"


def check_secret_store() -> str:
    from guard.secretstore import KEYRING, SecretStore, Slot

    store = SecretStore()
    with tempfile.TemporaryDirectory(prefix="teller-guard-selftest-") as tmp:
        slot = Slot(user=f"selftest-{secrets.token_hex(4)}", file=Path(tmp) / "selftest.secret")
        value = secrets.token_hex(16)
        place = store.put(slot, value, what="selftest secret")
        try:
            got = store.get(slot, what="selftest secret")
            if got is None or got.value != value:
                raise CheckFailed(f"a secret kept in the {place} was not given back")
        finally:
            keyring = store.keyring()
            if keyring is not None:
                keyring.delete(slot)
            store.files.delete(slot)
    where = ("the OS keyring" if place == KEYRING
             else "a private file (mode 0600; no usable OS keyring here)")
    return f"kept and read back a secret in {where}"


def check_packaged_policy() -> str:
    from guard.policy import layers

    policy = layers.validate(layers.parse_toml(layers.packaged_text(), "packaged policy"),
                             "packaged policy")
    return f"valid (version {policy.version or 'unset'})"


def check_machine_policy() -> str:
    from guard.policy import layers
    from guard.policy.schema import PolicyError

    doc = layers.parse_toml(layers.packaged_text(), "packaged policy")
    sources = []
    try:
        machine_layers = layers.machine_layers()
    except Exception as exc:
        raise CheckFailed(f"the machine policy layers cannot be listed: {exc}") from exc
    for source, load in machine_layers:
        try:
            doc = layers.merge(doc, load())
            layers.validate(doc, source)
        except PolicyError as exc:
            raise CheckFailed(f"{exc} (this layer would be skipped)") from exc
        sources.append(source)
    if not sources:
        return "none set (no machine policy file, no registry values): the packaged default"
    policy = layers.validate(doc, "merged policy")
    endpoint = policy.agent.endpoint or "none (embedded collector)"
    return f"valid: {', '.join(sources)}; endpoint {endpoint}"


def check_translation_files() -> str:
    import teller_guard_resources

    sizes = []
    for language in LANGUAGES:
        path = teller_guard_resources.resource("translations", f"teller_guard_{language}.qm")
        try:
            head = path.read_bytes()
        except OSError as exc:
            raise CheckFailed(f"{path} cannot be read: {exc}") from exc
        if not head.startswith(QM_MAGIC):
            raise CheckFailed(f"{path} is not a compiled Qt translation")
        sizes.append(f"{language} {len(head)} bytes")
    return "compiled translations present: " + ", ".join(sizes)


def check_data_dir(data_dir: Path | None) -> str:
    from guard import paths

    try:
        where = data_dir if data_dir is not None else paths.data_dir()
        where.mkdir(parents=True, exist_ok=True)
        probe = where / f".selftest-{secrets.token_hex(4)}"
        probe.write_bytes(b"selftest")
        probe.unlink()
    except (OSError, paths.ConfigError) as exc:
        raise CheckFailed(f"cannot write in the data directory: {exc}") from exc
    return f"{where} is writable"


# ---------------------------------------------------------------------------------------------
# Platform backends: which capabilities are usable here, and why not.


def platform_checks(*, require_desktop: bool) -> list[Check]:
    from guard import platforms

    out = [attempt("machine backend", check_machine)]
    try:
        session = platforms.current_session()
    except platforms.PlatformUnavailable as exc:
        status = Status.FAIL if require_desktop else Status.SKIP
        return [*out, Check("desktop backend", status, str(exc))]
    out.append(Check("desktop backend", Status.PASS, f"{session.name}"))

    def usable(call: Callable[[], str]) -> Callable[[], str]:
        def wrapped() -> str:
            try:
                return call()
            except platforms.PlatformUnavailable as exc:
                if require_desktop:
                    raise CheckFailed(str(exc)) from exc
                raise CheckSkipped(str(exc)) from exc
        return wrapped

    def idle() -> str:
        return f"idle for {session.idle_seconds():.0f} s"

    def lock() -> str:
        state = session.is_os_locked()
        if state is None:
            raise CheckSkipped("this desktop cannot tell whether it is locked (the guard's own "
                               "lock overlay still works)")
        return "the OS lock state can be read" + (" (locked now)" if state else "")

    def password() -> str:
        if not session.password.usable:
            raise CheckSkipped(f"OS password unlock unavailable: {session.password.reason}; "
                               f"only the PIN unlocks")
        return "OS password checks available"

    def keyboard() -> str:
        hook = session.keyboard_hook()
        hook.start()
        try:
            hook.check()
        finally:
            hook.stop()
        return "the global keyboard hook started"

    out += [
        attempt("  idle clock", usable(idle)),
        attempt("  os lock state", usable(lock)),
        attempt("  desktop name", usable(lambda: session.desktop_name())),
        attempt("  locale", usable(lambda: f"OS locale {session.os_locale()}")),
        attempt("  clipboard owner", usable(
            lambda: f"owner {session.clipboard_owner_app() or 'not known now'}")),
        attempt("  password check", usable(password)),
        attempt("  keyboard hook", usable(keyboard)),
    ]
    return out


def check_machine() -> str:
    from guard import platforms

    machine = platforms.current_machine()
    parts = [machine.name, f"data {machine.paths.machine_data_dir()}",
             f"policy file {machine.paths.machine_policy_file()}"]
    if machine.registry.source is not None:
        values = machine.registry.policy_values()
        parts.append(f"{len(values)} values in {machine.registry.source}")
    if not machine.processes.process_exists(os.getpid()):
        raise CheckFailed("the process table does not see this process")
    with tempfile.TemporaryDirectory(prefix="teller-guard-selftest-") as tmp:
        machine.data_lock.hold(Path(tmp)).release()
    parts.append("process table and data lock work")
    return "; ".join(parts)
