"""The schema-versioned event record that is journaled and shipped, validated with pydantic.

Kept apart from `guard.model`'s frozen dataclasses so that scanning never imports pydantic;
`guard.model` re-exports every name here, and that is where callers import them from.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from guard.model import Action, Category, Channel, Finding, Outcome


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
