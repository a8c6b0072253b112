"""The policy document's schema: every section, its defaults and its bounds."""


from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guard.model import Channel

ApprovalName = Literal["none", "supervisor"]
# A verifier the machine service keeps to itself: the policy it hands a teller's agent carries
# this in place of every scrypt hash (`guard.policy.withhold`), so the method stays offered
# while the check is the service's. It never verifies a secret (`verify_secret` refuses it).
WITHHELD = "withheld-by-service"
ActionName = Literal["audit", "notify", "confirm", "justify", "redact", "block", "lock"]
CleanName = Literal["none", "audit", "notify", "confirm", "justify", "redact", "block", "lock"]


class PolicyError(Exception):
    """A policy layer cannot be used; the message says which layer and why."""


def _verifier(v: str) -> str:
    if v and v != WITHHELD and not v.startswith("scrypt$"):
        raise ValueError("must be empty or a hash printed by `teller-guard policy hash-secret`")
    return v


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSection(_Section):
    endpoint: str = ""
    heartbeat_interval_s: float = Field(default=300, ge=10, le=86400)
    policy_poll_interval_s: float = Field(default=600, ge=10, le=86400)
    it_credential_hash: str = ""
    # IT's public key (``x25519:<base64>``, `teller-guard quarantine keygen`): files the teller's
    # own process quarantines are encrypted to it, so the teller cannot read them back.
    quarantine_key: str = ""

    @field_validator("endpoint")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be empty or an http(s) URL such as https://collector.example")
        return v.rstrip("/")

    @field_validator("it_credential_hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        return _verifier(v)

    @field_validator("quarantine_key")
    @classmethod
    def _quarantine_key(cls, v: str) -> str:
        v = v.strip()
        if not v:
            return v
        import base64
        import binascii

        try:
            raw = base64.b64decode(v.removeprefix("x25519:"), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not v.startswith("x25519:") or len(raw) != 32:
            raise ValueError("must be empty or the x25519:... line printed by "
                             "`teller-guard quarantine keygen`")
        return v


class PromptsSection(_Section):
    timeout_s: float = Field(default=60, gt=0, le=3600)
    min_reason_len: int = Field(default=4, ge=0, le=200)
    reasons: tuple[str, ...] = ("业务办理需要", "客户本人要求", "内部审核")


class JournalSection(_Section):
    max_events: int = Field(default=200_000, ge=100)
    max_bytes: int = Field(default=200_000_000, ge=1_000_000)
    max_age_days: int = Field(default=180, ge=1)


class ChannelSection(_Section):
    """What a channel does with customer data (`action`) and without (`clean`).

    `app_allowlist`: executable names whose observations are only audited (silent when clean),
    on any channel that knows its source application."""

    action: ActionName = "audit"
    clean: CleanName = "none"
    app_allowlist: tuple[str, ...] = ()
    # "supervisor": a block, or a refused/timed-out justify, can be approved on the spot by a
    # supervisor (四眼) or with a one-time code from IT.
    approval: ApprovalName = "none"

    def auto_clear_after(self) -> float | None:
        """Seconds after which found customer data is removed again; None: this channel never
        clears (only the clipboard does)."""
        return None


class ClipboardSection(ChannelSection):
    action: ActionName = "notify"
    auto_clear_s: float = Field(default=60, ge=0, le=86400)  # 0: never
    max_text_mb: float = Field(default=8, gt=0, le=1024)
    max_image_pixels: int = Field(default=50_000_000, gt=0)
    max_image_mb: float = Field(default=64, gt=0, le=4096)

    def auto_clear_after(self) -> float | None:
        return self.auto_clear_s or None


class FileSection(ChannelSection):
    """Files at rest (a sweep of a folder or a drive): nobody sits in front of each file, so a
    finding is recorded or shown, never asked about file by file."""

    action: Literal["audit", "notify"] = "audit"
    clean: Literal["none", "audit"] = "none"


class PrintSection(ChannelSection):
    """`[print]`: every spooler queue is guarded (held, scanned, released or cancelled by the
    machine service) except `exempt_queues` (e.g. the receipt printer); with `exempt_clean` a
    job whose document was read and holds no customer data prints without asking."""

    exempt_queues: tuple[str, ...] = ()
    exempt_clean: bool = True
    max_document_mb: float = Field(default=64, gt=0, le=4096)

    def exempts(self, queue: str) -> bool:
        return queue.casefold() in {q.casefold() for q in self.exempt_queues}


class ScreenSection(ChannelSection):
    """Screen captures: the capture hotkeys, and new image files in screenshot folders.

    `folders` are watched besides the platform's screenshot folders (when `default_folders`);
    `~` and environment variables are expanded. A screenshot file whose decision is `block`
    (or a `justify` the teller cancels) is moved to the quarantine."""

    hotkeys: bool = True
    files: bool = True
    default_folders: bool = True
    folders: tuple[str, ...] = ()


class RemoteControlSection(_Section):
    """Remote-control and screen-recording programs, noticed when they start. What is done
    about one is decided like any screen observation of kind ``remote_control`` (the packaged
    policy has a `[[rules]]` entry for it)."""

    enabled: bool = True
    poll_s: float = Field(default=2.0, ge=0.2, le=3600)
    # executable names, compared case-insensitively without ".exe"
    processes: tuple[str, ...] = (
        "ToDesk", "ToDesk_Service", "SunloginClient", "AweSun", "向日葵", "TeamViewer",
        "TeamViewer_Service", "AnyDesk", "obs", "obs64", "obs32", "QQRemote", "QQProtect_remote",
        "rustdesk", "vncserver", "x11vnc")


class SweepSection(_Section):
    """The scheduled sweep of the teller's folders for retained customer files (ID-card images,
    customer lists). What a finding does is `[file]`'s action (audit: report; notify: the teller
    is shown the masked list of files to remove); `quarantine` also moves them away."""

    enabled: bool = False
    interval_h: float = Field(default=24, gt=0, le=24 * 90)
    default_folders: bool = True
    folders: tuple[str, ...] = ()
    quarantine: bool = False
    max_file_mb: float = Field(default=64, gt=0, le=4096)
    cpu_share: float = Field(default=0.25, gt=0, le=1.0)  # the sweep's CPU budget on one core


class WatermarkSection(_Section):
    """A faint, click-through screen watermark (teller login, terminal, time) that deters
    photographing the screen. Off unless a bank turns it on."""

    enabled: bool = False
    opacity: float = Field(default=0.08, ge=0.02, le=0.5)
    refresh_s: float = Field(default=60, ge=5, le=3600)


class UsbSection(ChannelSection):
    """`[usb]`: a removable volume is announced (`action`/`clean` on ``volume_mounted``); after a
    justification it may be used for `allow_window_min` minutes (0: until it is removed); every
    file written to it is scanned (the first `max_scan_mb` of a larger file, said so)."""

    allow_window_min: float = Field(default=30, ge=0, le=1440)
    mount_points: tuple[str, ...] = ()
    read_only_until_justified: bool = False
    delete_on_findings: bool = False
    max_scan_mb: float = Field(default=64, gt=0, le=65536)

    @field_validator("mount_points")
    @classmethod
    def _absolute(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for point in v:
            if not (point.startswith("/") or re.match(r"^[A-Za-z]:[\\/]?$", point)):
                raise ValueError(f"mount point {point!r} must be an absolute path or a drive "
                                 "such as E:\\")
        return v


class IdleSection(_Section):
    warn_after_s: float = Field(default=240, ge=5)
    lock_after_s: float = Field(default=300, ge=10)
    unlock: Literal["auto", "pin"] = "auto"
    backoff_after: int = Field(default=3, ge=1, le=20)
    backoff_base_s: float = Field(default=5, ge=0, le=600)
    backoff_max_s: float = Field(default=300, ge=0, le=86400)

    @model_validator(mode="after")
    def _order(self) -> IdleSection:
        if self.warn_after_s >= self.lock_after_s:
            raise ValueError("warn_after_s must be smaller than lock_after_s")
        return self


class Rule(_Section):
    """An override: the first rule whose conditions all hold decides the action."""

    channel: Channel
    kind: str | None = None
    types: tuple[str, ...] = ()  # any of these finding types present
    min_count: int = Field(default=0, ge=0)  # at least this many relevant findings
    source_app: str | None = None
    action: CleanName
    approval: ApprovalName | None = None  # None: the channel section's `approval`


class Supervisor(_Section):
    """A supervisor (授权人员) who may approve a teller's blocked action or unlock the overlay.

    The credential is `credential_hash` (scrypt, from `teller-guard policy hash-secret`) and/or,
    where the platform can check it, the OS password of `login` (default: `id`) when that login
    is a member of `os_group`."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    name: str = Field(default="", max_length=64)
    credential_hash: str = ""
    os_group: str = Field(default="", max_length=64)
    login: str = Field(default="", max_length=64)

    @field_validator("credential_hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        return _verifier(v)

    @model_validator(mode="after")
    def _some_credential(self) -> Supervisor:
        if not self.credential_hash and not self.os_group:
            raise ValueError(f"supervisor {self.id!r} needs credential_hash or os_group")
        return self

    @property
    def os_login(self) -> str:
        return self.login or self.id

    @property
    def label(self) -> str:
        return self.name or self.id


class Policy(_Section):
    """A whole, validated policy (after layering)."""

    version: str = Field(default="", max_length=128)
    agent: AgentSection = AgentSection()
    thresholds: dict[str, float] = Field(default_factory=lambda: {"default": 0.5})
    prompts: PromptsSection = PromptsSection()
    journal: JournalSection = JournalSection()
    clipboard: ClipboardSection = ClipboardSection()
    print: PrintSection = PrintSection(action="confirm")
    usb: UsbSection = UsbSection(action="justify", clean="justify")
    screen: ScreenSection = ScreenSection(action="justify", clean="justify")
    file: FileSection = FileSection()
    remote_control: RemoteControlSection = RemoteControlSection()
    sweep: SweepSection = SweepSection()
    watermark: WatermarkSection = WatermarkSection()
    idle: IdleSection = IdleSection()
    rules: tuple[Rule, ...] = ()
    supervisors: tuple[Supervisor, ...] = ()

    @field_validator("supervisors")
    @classmethod
    def _unique(cls, v: tuple[Supervisor, ...]) -> tuple[Supervisor, ...]:
        ids = [s.id for s in v]
        for sid in ids:
            if ids.count(sid) > 1:
                raise ValueError(f"supervisor id {sid!r} appears more than once")
        return v

    def supervisor(self, supervisor_id: str) -> Supervisor | None:
        return next((s for s in self.supervisors if s.id == supervisor_id), None)

    def approval_for(self, channel: Channel, rule: str) -> bool:
        """True when the decision made by `rule` (a `Decision.rule` such as ``rules[2]`` or
        ``clipboard.action``) may be approved by a supervisor: the rule's own `approval`,
        else its channel section's."""
        if rule.startswith("rules[") and rule.endswith("]"):
            try:
                chosen = self.rules[int(rule[6:-1])]
            except (ValueError, IndexError):
                chosen = None
            if chosen is not None and chosen.approval is not None:
                return chosen.approval == "supervisor"
        return self.channel(channel).approval == "supervisor"

    @field_validator("thresholds")
    @classmethod
    def _scores(cls, v: dict[str, float]) -> dict[str, float]:
        for name, score in v.items():
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"threshold for {name} must be between 0 and 1")
        return v

    def threshold(self, finding_type: str) -> float:
        return self.thresholds.get(finding_type, self.thresholds.get("default", 0.5))

    def channel(self, channel: Channel) -> ChannelSection:
        """The channel's own action section. Idle (decided by its thresholds, see `[idle]`) and
        system events have none: they get the neutral default (audit, clean: none)."""
        section = {
            Channel.CLIPBOARD: self.clipboard,
            Channel.PRINT: self.print,
            Channel.USB: self.usb,
            Channel.SCREEN: self.screen,
            Channel.FILE: self.file,
        }.get(channel)
        return section if section is not None else ChannelSection()


