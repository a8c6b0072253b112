"""The value types every part of the guard passes around: observations, findings, decisions, events.

Everything here is immutable. A `Finding` never holds the matched text, only where it was, a
masked form and a keyed hash; an `Event` is the schema-versioned record that travels to the
collector and is validated with pydantic on both sides (`guard.model.schema`).

The pydantic models (`Event`, `Device`, `FindingSummary`, `summarise`) are importable from here
as always, but they are loaded on first use: scanning (`teller-guard scan`, the detectors) needs
only the frozen dataclasses, and importing pydantic would cost it ~70 ms of start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # at run time, `__getattr__` below loads them when first asked for
    from guard.model.schema import Device, Event, FindingSummary, summarise

SCHEMA_VERSION = 1


class Channel(StrEnum):
    """Where a risk was noticed."""

    CLIPBOARD = "clipboard"
    SCREEN = "screen"
    PRINT = "print"
    USB = "usb"
    IDLE = "idle"
    FILE = "file"
    SYSTEM = "system"


class Action(StrEnum):
    """What policy decided to do, from the mildest to the strongest."""

    AUDIT = "audit"
    NOTIFY = "notify"
    CONFIRM = "confirm"
    JUSTIFY = "justify"
    REDACT = "redact"
    BLOCK = "block"
    LOCK = "lock"


class Outcome(StrEnum):
    """What happened after the decision."""

    RECORDED = "recorded"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    JUSTIFIED = "justified"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    REDACTED = "redacted"
    BLOCKED = "blocked"
    CLEARED = "cleared"
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    ALLOWED = "allowed"
    SKIPPED = "skipped"
    FAILED = "failed"


class Category(StrEnum):
    """JR/T 0171-2020 personal financial information categories."""

    C1 = "C1"
    C2 = "C2"
    C3 = "C3"


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of customer data found in some content.

    `start`/`end` are character offsets into the text as given (end exclusive); `box` is
    `(left, top, width, height)` in pixels for a finding in an image. `masked` and `hash` are the
    only forms of the value that may leave the detector.
    """

    type: str
    start: int
    end: int
    score: float
    masked: str
    hash: str
    category: Category = Category.C2
    box: tuple[int, int, int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "masked": self.masked,
            "confidence": round(self.score, 4),
            "category": str(self.category),
            "hash": self.hash,
        }
        if self.box is not None:
            out["box"] = list(self.box)
        return out


@dataclass(frozen=True, slots=True)
class Observation:
    """Something a watcher noticed; watchers produce these and never decide.

    `kind` names the occurrence within the channel (``copy``, ``hotkey``, ``job_held``,
    ``volume_mounted``, ``file_written``, ``idle_warn`` ...). Content is carried in memory only and
    never serialised: `text`, `image` (encoded PNG/BMP bytes) or `paths` (file list).
    """

    channel: Channel
    kind: str
    text: str | None = None
    image: bytes | None = None
    paths: tuple[str, ...] = ()
    source_app: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Decision:
    """What policy decided for one observation: an action plus the rule that chose it."""

    action: Action
    rule: str
    reason: str = ""
    timeout_s: float | None = None
    auto_clear_s: float | None = None
    min_reason_len: int = 0
    reasons: tuple[str, ...] = ()


def utc_now_iso(timespec: Literal["seconds", "milliseconds"] = "milliseconds") -> str:
    """Now as an RFC 3339 UTC timestamp with a ``Z`` suffix (``2026-01-31T08:15:02.123Z``)."""
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


_SCHEMA_NAMES = frozenset({"Device", "Event", "FindingSummary", "summarise"})

__all__ = [
    "SCHEMA_VERSION", "Action", "Category", "Channel", "Decision", "Device", "Event", "Finding",
    "FindingSummary", "Observation", "Outcome", "summarise", "utc_now_iso",
]


def __getattr__(name: str) -> Any:
    """The pydantic models, imported on first use (PEP 562) and then kept as module attributes."""
    if name in _SCHEMA_NAMES:
        from guard.model import schema

        value = getattr(schema, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
