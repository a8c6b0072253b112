"""The value types every part of the guard passes around: observations, findings, decisions, events.

Everything here is immutable. A `Finding` never holds the matched text, only where it was, a
masked form and a keyed hash; an `Event` is the schema-versioned record that travels to the
collector and is validated with pydantic on both sides.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


# ---------------------------------------------------------------------------------------------
# The event that is journaled and shipped.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Device(_Strict):
    id: str = Field(min_length=1, max_length=128)
    hostname: str = Field(max_length=255)
    branch: str = Field(default="", max_length=128)


class FindingSummary(_Strict):
    """All findings of one type in one event: never the values, only masked forms and hashes."""

    type: str = Field(min_length=1, max_length=64)
    count: int = Field(ge=0)
    category: Category = Category.C2
    masked: list[str] = Field(default_factory=list, max_length=50)
    hashes: list[str] = Field(default_factory=list, max_length=50)


def _now() -> datetime:
    return datetime.now(UTC)


def utc_now_iso(timespec: Literal["seconds", "milliseconds"] = "milliseconds") -> str:
    """Now as an RFC 3339 UTC timestamp with a ``Z`` suffix (``2026-01-31T08:15:02.123Z``)."""
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


class Event(_Strict):
    """Schema version 1 of the record that reaches the collector."""

    schema_: Literal[1] = Field(default=1, alias="schema")
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    time: datetime = Field(default_factory=_now)
    type: str = Field(min_length=1, max_length=64)
    device: Device
    teller: str = Field(default="", max_length=128)
    channel: Channel
    action: Action = Action.AUDIT
    decision: str = Field(default="", max_length=128)
    outcome: Outcome = Outcome.RECORDED
    findings: list[FindingSummary] = Field(default_factory=list, max_length=32)
    justification: str = Field(default="", max_length=1000)
    source_app: str = Field(default="", max_length=256)
    agent_version: str = Field(default="", max_length=64)
    policy_version: str = Field(default="", max_length=128)
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("time")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("time must carry a timezone (RFC 3339)")
        return v.astimezone(UTC)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> Event:
        return cls.model_validate_json(data)


def summarise(findings: list[Finding] | tuple[Finding, ...]) -> list[FindingSummary]:
    """Group findings by type into the summaries an event carries (masked forms and hashes only)."""
    by_type: dict[str, list[Finding]] = {}
    for f in findings:
        by_type.setdefault(f.type, []).append(f)
    out = []
    for t, fs in sorted(by_type.items()):
        masked: list[str] = []
        hashes: list[str] = []
        for f in fs:
            if f.hash not in hashes and len(hashes) < 50:
                hashes.append(f.hash)
                masked.append(f.masked)
        out.append(
            FindingSummary(type=t, count=len(fs), category=fs[0].category, masked=masked,
                           hashes=hashes)
        )
    return out
