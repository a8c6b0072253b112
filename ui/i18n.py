"""Chooses the agent's language (OS locale, or TELLER_GUARD_LANG) and installs its Qt translator.

Source strings are English and wrapped in tr()/translate(); `resources/translations/` holds the
`.ts` sources and the `.qm` files built from them with `pyside6-lrelease`
(`scripts/build_ui_resources.py`). Words the core hands over as codes (finding types, channels,
watcher names, unlock message keys) are translated here, in one table each.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QCoreApplication, QLocale, QTranslator
from teller_guard_resources import resource

from guard.events import EventType
from guard.model import Channel

ENV_LANG = "TELLER_GUARD_LANG"
SUPPORTED = ("zh_CN", "en")

log = logging.getLogger(__name__)


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:
    """Marks `text` for lupdate in `context` and returns it untranslated (typed, unlike Qt's)."""
    return text


class TranslationMissing(FileNotFoundError):
    """A built translation (.qm) is missing; run scripts/build_ui_resources.py."""


def choose_language(system: QLocale | None = None) -> str:
    """`zh_CN` or `en`: TELLER_GUARD_LANG if set, else the OS locale (Chinese → zh_CN)."""
    override = os.environ.get(ENV_LANG, "").strip()
    name = override or (system or QLocale.system()).name()
    if name.lower().startswith("zh"):
        return "zh_CN"
    return "en"


def qm_path(language: str) -> str:
    """Where the built translation of `language` lives."""
    return str(resource("translations", f"teller_guard_{language}.qm"))


def install_translator(app: QCoreApplication, language: str | None = None) -> QTranslator | None:
    """Install the translator for `language` (default: `choose_language()`) on `app`.

    English is the source language and needs none (returns None). Raises `TranslationMissing` when
    the .qm file is absent, so a broken build is noticed instead of silently showing English.
    """
    language = language or choose_language()
    if language == "en":
        return None
    path = qm_path(language)
    if not os.path.exists(path):
        raise TranslationMissing(f"{path} is missing; run scripts/build_ui_resources.py")
    translator = QTranslator(app)
    if not translator.load(path):
        raise TranslationMissing(f"{path} could not be loaded; rebuild it with pyside6-lrelease")
    app.installTranslator(translator)
    return translator


def _t(context: str, text: str) -> str:
    return QCoreApplication.translate(context, text)


FINDING_TYPES = {
    "CN_RESIDENT_ID": QT_TRANSLATE_NOOP("Findings", "Resident ID number"),
    "BANK_CARD": QT_TRANSLATE_NOOP("Findings", "Bank card number"),
    "CN_MOBILE": QT_TRANSLATE_NOOP("Findings", "Mobile number"),
    "EMAIL": QT_TRANSLATE_NOOP("Findings", "E-mail address"),
    "CN_USCC": QT_TRANSLATE_NOOP("Findings", "Unified social credit code"),
    "CN_PASSPORT": QT_TRANSLATE_NOOP("Findings", "Passport number"),
    "CN_BANK_ACCOUNT": QT_TRANSLATE_NOOP("Findings", "Bank account number"),
}

CHANNELS: dict[str, str] = {  # keyed by Channel
    Channel.CLIPBOARD: QT_TRANSLATE_NOOP("Channels", "Clipboard"),
    Channel.SCREEN: QT_TRANSLATE_NOOP("Channels", "Screen capture"),
    Channel.PRINT: QT_TRANSLATE_NOOP("Channels", "Printing"),
    Channel.USB: QT_TRANSLATE_NOOP("Channels", "Removable drive"),
    Channel.IDLE: QT_TRANSLATE_NOOP("Channels", "Idle lock"),
    Channel.FILE: QT_TRANSLATE_NOOP("Channels", "Files"),
    Channel.SYSTEM: QT_TRANSLATE_NOOP("Channels", "System"),
}

WATCHERS = {
    "clipboard": QT_TRANSLATE_NOOP("Watchers", "Clipboard guard"),
    "idle": QT_TRANSLATE_NOOP("Watchers", "Idle lock"),
    "screen": QT_TRANSLATE_NOOP("Watchers", "Screen capture guard"),
    "print": QT_TRANSLATE_NOOP("Watchers", "Print guard"),
    "usb": QT_TRANSLATE_NOOP("Watchers", "Removable drive guard"),
    "hotkey": QT_TRANSLATE_NOOP("Watchers", "Lock hotkey"),
    "shipper": QT_TRANSLATE_NOOP("Watchers", "Event upload"),
}

UNLOCK_MESSAGES = {
    "ok": QT_TRANSLATE_NOOP("Unlock", "Unlocked."),
    "wrong_credential": QT_TRANSLATE_NOOP("Unlock", "Wrong password or PIN."),
    "backoff": QT_TRANSLATE_NOOP("Unlock", "Too many wrong tries."),
    "not_locked": QT_TRANSLATE_NOOP("Unlock", "The screen is not locked."),
    "no_pin": QT_TRANSLATE_NOOP("Unlock", "No PIN is set; ask IT to unlock this PC."),
    "not_offered": QT_TRANSLATE_NOOP("Unlock", "This kind of credential is not accepted here."),
    "unknown_supervisor": QT_TRANSLATE_NOOP("Unlock", "No supervisor has this ID."),
    "self_approval": QT_TRANSLATE_NOOP("Unlock", "A teller cannot approve their own action."),
    "code_refused": QT_TRANSLATE_NOOP(
        "Unlock", "The code is wrong, expired, already used or not for this PC."),
}

# What the overlay and the supervisor dialog accept, by method.
UNLOCK_METHODS = {
    "teller": QT_TRANSLATE_NOOP("Unlock", "&My password or PIN"),
    "supervisor": QT_TRANSLATE_NOOP("Unlock", "&Supervisor's credential"),
    "it": QT_TRANSLATE_NOOP("Unlock", "&IT credential"),
    "code": QT_TRANSLATE_NOOP("Unlock", "One-time recovery &code from IT"),
}

PIN_ERRORS = {
    "pin_too_short": QT_TRANSLATE_NOOP("PinSetupDialog", "The PIN is too short."),
    "pin_not_digits": QT_TRANSLATE_NOOP("PinSetupDialog", "The PIN must be digits only."),
}


# The teller's name for each event type; the same English as guard.events' labels, and a test
# keeps every EventType here with a finished Chinese translation.
EVENT_TYPES: dict[str, str] = {  # keyed by EventType
    EventType.AGENT_STARTED: QT_TRANSLATE_NOOP("Events", "Guard started"),
    EventType.AGENT_STOPPED: QT_TRANSLATE_NOOP("Events", "Guard stopped"),
    EventType.SERVICE_STARTED: QT_TRANSLATE_NOOP("Events", "Guard service started"),
    EventType.SERVICE_STOPPED: QT_TRANSLATE_NOOP("Events", "Guard service stopped"),
    EventType.POLICY_APPLIED: QT_TRANSLATE_NOOP("Events", "Policy applied"),
    EventType.POLICY_REJECTED: QT_TRANSLATE_NOOP("Events", "Policy rejected"),
    EventType.PIN_SET: QT_TRANSLATE_NOOP("Events", "PIN set"),
    EventType.IT_CREDENTIAL_CHECK: QT_TRANSLATE_NOOP("Events", "IT credential checked"),
    EventType.HEARTBEAT: QT_TRANSLATE_NOOP("Events", "Heartbeat"),
    EventType.EVENTS_DROPPED: QT_TRANSLATE_NOOP("Events", "Events dropped"),
    EventType.BATCH_QUARANTINED: QT_TRANSLATE_NOOP("Events", "Event quarantined"),
    EventType.AGENT_SPOOL_DROPPED: QT_TRANSLATE_NOOP("Events", "Agent spool events dropped"),
    EventType.HASHES_COMPUTED: QT_TRANSLATE_NOOP("Events", "Keyed hashes computed"),
    EventType.LOCAL_EVENTS_THROTTLED: QT_TRANSLATE_NOOP("Events", "Local events throttled"),
    EventType.JOURNAL_SALVAGED: QT_TRANSLATE_NOOP("Events", "Damaged journal salvaged"),
    EventType.APPROVAL_SUPERVISOR: QT_TRANSLATE_NOOP("Events", "Approved by a supervisor"),
    EventType.APPROVAL_CODE: QT_TRANSLATE_NOOP("Events", "Approved with a one-time code"),
    EventType.APPROVAL_FAILED: QT_TRANSLATE_NOOP("Events", "Approval refused"),
    EventType.APPROVAL_CODE_SPENT: QT_TRANSLATE_NOOP("Events", "One-time code used"),
    EventType.CLIPBOARD_COPY: QT_TRANSLATE_NOOP("Events", "Copy"),
    EventType.CLIPBOARD_COPY_IMAGE: QT_TRANSLATE_NOOP("Events", "Image copied"),
    EventType.CLIPBOARD_COPY_FILES: QT_TRANSLATE_NOOP("Events", "Files copied"),
    EventType.CLIPBOARD_SKIPPED: QT_TRANSLATE_NOOP("Events", "Clipboard not checked"),
    EventType.CLIPBOARD_CLEARED: QT_TRANSLATE_NOOP("Events", "Clipboard cleared"),
    EventType.CLIPBOARD_ERROR: QT_TRANSLATE_NOOP("Events", "Clipboard check failed"),
    EventType.IDLE_WARN: QT_TRANSLATE_NOOP("Events", "Idle warning"),
    EventType.IDLE_LOCK: QT_TRANSLATE_NOOP("Events", "Screen locked"),
    EventType.IDLE_UNLOCK: QT_TRANSLATE_NOOP("Events", "Screen unlocked"),
    EventType.IDLE_UNLOCK_FAILED: QT_TRANSLATE_NOOP("Events", "Wrong unlock attempt"),
    EventType.IDLE_UNLOCK_SUPERVISOR: QT_TRANSLATE_NOOP("Events", "Unlocked by a supervisor"),
    EventType.IDLE_UNLOCK_IT: QT_TRANSLATE_NOOP("Events", "Unlocked with the IT credential"),
    EventType.IDLE_UNLOCK_CODE: QT_TRANSLATE_NOOP("Events", "Unlocked with a recovery code"),
    EventType.SCREEN_HOTKEY: QT_TRANSLATE_NOOP("Events", "Screen capture"),
    EventType.SCREEN_SCREENSHOT_FILE: QT_TRANSLATE_NOOP("Events", "Screenshot file"),
    EventType.SCREEN_REMOTE_CONTROL: QT_TRANSLATE_NOOP(
        "Events", "Remote-control or screen-recording program"),
    EventType.SCREEN_WATERMARK: QT_TRANSLATE_NOOP("Events", "Screen watermark"),
    EventType.FILE_RETAINED: QT_TRANSLATE_NOOP("Events", "File holding customer data"),
    EventType.FILE_SWEEP_DONE: QT_TRANSLATE_NOOP("Events", "File sweep finished"),
    EventType.PRINT_JOB_HELD: QT_TRANSLATE_NOOP("Events", "Print job"),
    EventType.USB_VOLUME_MOUNTED: QT_TRANSLATE_NOOP("Events", "Removable drive connected"),
    EventType.USB_FILE_WRITTEN: QT_TRANSLATE_NOOP("Events", "File written to a removable drive"),
}

OUTCOMES = {
    "recorded": QT_TRANSLATE_NOOP("Events", "recorded"),
    "notified": QT_TRANSLATE_NOOP("Events", "warned"),
    "acknowledged": QT_TRANSLATE_NOOP("Events", "confirmed"),
    "justified": QT_TRANSLATE_NOOP("Events", "reason given"),
    "cancelled": QT_TRANSLATE_NOOP("Events", "cancelled"),
    "timed_out": QT_TRANSLATE_NOOP("Events", "timed out"),
    "redacted": QT_TRANSLATE_NOOP("Events", "masked"),
    "blocked": QT_TRANSLATE_NOOP("Events", "blocked"),
    "cleared": QT_TRANSLATE_NOOP("Events", "cleared"),
    "locked": QT_TRANSLATE_NOOP("Events", "locked"),
    "unlocked": QT_TRANSLATE_NOOP("Events", "unlocked"),
    "allowed": QT_TRANSLATE_NOOP("Events", "allowed"),
    "skipped": QT_TRANSLATE_NOOP("Events", "skipped"),
    "failed": QT_TRANSLATE_NOOP("Events", "failed"),
}


def last_event(text: str) -> str:
    """The agent's last-event line (``<TYPE> <outcome>``) in the teller's words."""
    kind, _, outcome = text.partition(" ")
    name = _t("Events", EVENT_TYPES[kind]) if kind in EVENT_TYPES else kind
    if not outcome:
        return name
    said = _t("Events", OUTCOMES[outcome]) if outcome in OUTCOMES else outcome
    return _t("Events", QT_TRANSLATE_NOOP("Events", "{event}: {outcome}")).format(
        event=name, outcome=said)


def finding_type(code: str) -> str:
    """The teller's name for a finding type code (the code itself when unknown)."""
    return _t("Findings", FINDING_TYPES[code]) if code in FINDING_TYPES else code


def channel(code: str) -> str:
    """The teller's name for a channel code."""
    return _t("Channels", CHANNELS[code]) if code in CHANNELS else code


def watcher(code: str) -> str:
    """The teller's name for a watcher name."""
    return _t("Watchers", WATCHERS[code]) if code in WATCHERS else code


def unlock_message(key: str) -> str:
    """The sentence for an unlock result's message key."""
    return _t("Unlock", UNLOCK_MESSAGES.get(key, UNLOCK_MESSAGES["wrong_credential"]))


def unlock_method(key: str) -> str:
    """The label of a credential kind the overlay accepts (with its mnemonic)."""
    return _t("Unlock", UNLOCK_METHODS[key]) if key in UNLOCK_METHODS else key


def pin_error(key: str) -> str:
    """The sentence for a PIN rejection key."""
    return _t("PinSetupDialog", PIN_ERRORS.get(key, PIN_ERRORS["pin_too_short"]))
