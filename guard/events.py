"""The event vocabulary: every event type the guard records, the kinds per channel, one factory.

An event type's value is the string that travels in `Event.type` (unchanged from the free strings
it replaces, so nothing on the wire changes). Each type belongs to one channel and carries a
Chinese and an English label for readers that are not Qt (the collector's dashboard); the agent's
UI words them through Qt's translation system (ui/i18n.py EVENT_TYPES), and a test keeps the two
in step. A watcher's `Observation.kind` is one of its channel's kind enums; `event_type(channel,
kind)` names the event an observation becomes, and `new_event()` is the only place an `Event` is
built from a type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from guard.model import Action, Channel, Device, Event, Finding, Outcome, summarise

DetailValue = str | int | float | bool | None


class UnknownEventType(ValueError):
    """An event type or (channel, kind) pair that guard.events does not name."""


class EventType(StrEnum):
    """Every event the guard records. Values are the wire strings."""

    # system: the agent, the machine service and delivery
    AGENT_STARTED = "AGENT_STARTED"
    AGENT_STOPPED = "AGENT_STOPPED"
    SERVICE_STARTED = "SERVICE_STARTED"
    SERVICE_STOPPED = "SERVICE_STOPPED"
    POLICY_APPLIED = "POLICY_APPLIED"
    POLICY_REJECTED = "POLICY_REJECTED"
    PIN_SET = "PIN_SET"
    IT_CREDENTIAL_CHECK = "IT_CREDENTIAL_CHECK"
    HEARTBEAT = "HEARTBEAT"
    EVENTS_DROPPED = "EVENTS_DROPPED"
    BATCH_QUARANTINED = "BATCH_QUARANTINED"
    AGENT_SPOOL_DROPPED = "AGENT_SPOOL_DROPPED"  # a teller's agent spool overflowed
    HASHES_COMPUTED = "HASHES_COMPUTED"  # the service hashed values a teller's agent sent
    LOCAL_EVENTS_THROTTLED = "LOCAL_EVENTS_THROTTLED"  # a local user's events were rate-limited
    JOURNAL_SALVAGED = "JOURNAL_SALVAGED"
    # approvals (四眼): one event with both identities (teller and supervisor), any channel's
    # action; detail names the channel and kind approved
    APPROVAL_SUPERVISOR = "APPROVAL_SUPERVISOR"
    APPROVAL_CODE = "APPROVAL_CODE"
    APPROVAL_FAILED = "APPROVAL_FAILED"
    # recorded where the device key lives when it accepts a one-time code: which code (its id,
    # never the code), so the collector marks it spent and flags a second use
    APPROVAL_CODE_SPENT = "APPROVAL_CODE_SPENT"
    # clipboard
    CLIPBOARD_COPY = "CLIPBOARD_COPY"
    CLIPBOARD_COPY_IMAGE = "CLIPBOARD_COPY_IMAGE"
    CLIPBOARD_COPY_FILES = "CLIPBOARD_COPY_FILES"
    CLIPBOARD_SKIPPED = "CLIPBOARD_SKIPPED"
    CLIPBOARD_CLEARED = "CLIPBOARD_CLEARED"
    CLIPBOARD_ERROR = "CLIPBOARD_ERROR"
    # idle
    IDLE_WARN = "IDLE_WARN"
    IDLE_LOCK = "IDLE_LOCK"
    IDLE_UNLOCK = "IDLE_UNLOCK"
    IDLE_UNLOCK_FAILED = "IDLE_UNLOCK_FAILED"
    IDLE_UNLOCK_SUPERVISOR = "IDLE_UNLOCK_SUPERVISOR"
    IDLE_UNLOCK_IT = "IDLE_UNLOCK_IT"
    IDLE_UNLOCK_CODE = "IDLE_UNLOCK_CODE"
    # the channels whose watchers come next (policy, prompts and labels exist already)
    SCREEN_HOTKEY = "SCREEN_HOTKEY"
    SCREEN_SCREENSHOT_FILE = "SCREEN_SCREENSHOT_FILE"
    SCREEN_REMOTE_CONTROL = "SCREEN_REMOTE_CONTROL"
    SCREEN_WATERMARK = "SCREEN_WATERMARK"
    # files at rest (the sweep)
    FILE_RETAINED = "FILE_RETAINED"
    FILE_SWEEP_DONE = "FILE_SWEEP_DONE"
    PRINT_JOB_HELD = "PRINT_JOB_HELD"
    USB_VOLUME_MOUNTED = "USB_VOLUME_MOUNTED"
    USB_FILE_WRITTEN = "USB_FILE_WRITTEN"

    @property
    def channel(self) -> Channel:
        return _INFO[self].channel

    @property
    def zh(self) -> str:
        """The Chinese label (the dashboard's; the UI's comes from the .ts translation)."""
        return _INFO[self].zh

    @property
    def en(self) -> str:
        """The English label; the UI's source string for this type is the same text."""
        return _INFO[self].en


# Kinds within a channel: what a watcher noticed (`Observation.kind`), and the prompt kinds the
# pipeline tells the teller about (`PromptRequest.kind`).

NOT_SCANNED = "not_scanned"  # content the pipeline could not scan (no image scanner, binary)


class ClipboardKind(StrEnum):
    COPY = "copy"
    COPY_IMAGE = "copy_image"
    COPY_FILES = "copy_files"
    SKIPPED = "skipped"  # content over the policy's bounds: the teller is told it was not checked
    NOT_SCANNED = NOT_SCANNED  # content the guard cannot read: recorded quietly
    CLEARED = "cleared"
    ERROR = "error"
    # prompt kinds only: what enforcement did
    REDACTED = "redacted"
    BLOCKED = "blocked"


class IdleKind(StrEnum):
    IDLE = "idle"  # a poll: how long nobody touched the PC (meta idle_s)
    WARN = "idle_warn"
    LOCK = "lock"
    UNLOCK = "unlock"
    UNLOCK_FAILED = "unlock_failed"


class ScreenKind(StrEnum):
    HOTKEY = "hotkey"
    SCREENSHOT_FILE = "screenshot_file"
    REMOTE_CONTROL = "remote_control"  # a remote-control or screen-recording program started
    WATERMARK = "watermark"  # the screen watermark was shown or hidden (a report)


class FileKind(StrEnum):
    RETAINED = "retained"  # a file at rest holds customer data (an ID-card image, a list)
    SWEEP_DONE = "sweep_done"  # a sweep finished (a report: counts, no paths)


class PrintKind(StrEnum):
    JOB_HELD = "job_held"


class UsbKind(StrEnum):
    VOLUME_MOUNTED = "volume_mounted"
    FILE_WRITTEN = "file_written"


class SystemKind(StrEnum):
    ALREADY_RUNNING = "already_running"  # prompt kind only: a second agent was started


@dataclass(frozen=True, slots=True)
class _Info:
    channel: Channel
    zh: str
    en: str
    kind: str | None = None  # the observation kind that becomes this event (None: not a watcher's)


_S, _C, _I = Channel.SYSTEM, Channel.CLIPBOARD, Channel.IDLE
_INFO: dict[EventType, _Info] = {
    EventType.AGENT_STARTED: _Info(_S, "卫士已启动", "Guard started"),
    EventType.AGENT_STOPPED: _Info(_S, "卫士已停止", "Guard stopped"),
    EventType.SERVICE_STARTED: _Info(_S, "后台服务已启动", "Guard service started"),
    EventType.SERVICE_STOPPED: _Info(_S, "后台服务已停止", "Guard service stopped"),
    EventType.POLICY_APPLIED: _Info(_S, "策略已生效", "Policy applied"),
    EventType.POLICY_REJECTED: _Info(_S, "策略被拒绝", "Policy rejected"),
    EventType.PIN_SET: _Info(_S, "设置 PIN 码", "PIN set"),
    EventType.IT_CREDENTIAL_CHECK: _Info(_S, "校验 IT 凭据", "IT credential checked"),
    EventType.HEARTBEAT: _Info(_S, "心跳", "Heartbeat"),
    EventType.EVENTS_DROPPED: _Info(_S, "事件已丢弃", "Events dropped"),
    EventType.BATCH_QUARANTINED: _Info(_S, "事件被隔离", "Event quarantined"),
    EventType.AGENT_SPOOL_DROPPED: _Info(_S, "柜员端缓存事件已丢弃", "Agent spool events dropped"),
    EventType.HASHES_COMPUTED: _Info(_S, "服务计算了哈希", "Keyed hashes computed"),
    EventType.LOCAL_EVENTS_THROTTLED: _Info(_S, "本地事件被限流", "Local events throttled"),
    EventType.JOURNAL_SALVAGED: _Info(_S, "日志损坏已抢救", "Damaged journal salvaged"),
    EventType.APPROVAL_SUPERVISOR: _Info(_S, "授权人员授权", "Approved by a supervisor"),
    EventType.APPROVAL_CODE: _Info(_S, "一次性授权码授权", "Approved with a one-time code"),
    EventType.APPROVAL_FAILED: _Info(_S, "授权未通过", "Approval refused"),
    EventType.APPROVAL_CODE_SPENT: _Info(_S, "一次性授权码已使用", "One-time code used"),
    EventType.CLIPBOARD_COPY: _Info(_C, "复制", "Copy", ClipboardKind.COPY),
    EventType.CLIPBOARD_COPY_IMAGE: _Info(_C, "复制图片", "Image copied", ClipboardKind.COPY_IMAGE),
    EventType.CLIPBOARD_COPY_FILES: _Info(_C, "复制文件", "Files copied", ClipboardKind.COPY_FILES),
    EventType.CLIPBOARD_SKIPPED: _Info(_C, "剪贴板未检查", "Clipboard not checked",
                                       ClipboardKind.SKIPPED),
    EventType.CLIPBOARD_CLEARED: _Info(_C, "剪贴板已清空", "Clipboard cleared",
                                       ClipboardKind.CLEARED),
    EventType.CLIPBOARD_ERROR: _Info(_C, "剪贴板检查出错", "Clipboard check failed",
                                     ClipboardKind.ERROR),
    EventType.IDLE_WARN: _Info(_I, "离开提醒", "Idle warning", IdleKind.WARN),
    EventType.IDLE_LOCK: _Info(_I, "锁屏", "Screen locked", IdleKind.LOCK),
    EventType.IDLE_UNLOCK: _Info(_I, "解锁", "Screen unlocked", IdleKind.UNLOCK),
    EventType.IDLE_UNLOCK_FAILED: _Info(_I, "解锁失败", "Wrong unlock attempt",
                                        IdleKind.UNLOCK_FAILED),
    EventType.IDLE_UNLOCK_SUPERVISOR: _Info(_I, "授权人员解锁", "Unlocked by a supervisor"),
    EventType.IDLE_UNLOCK_IT: _Info(_I, "IT 人员解锁", "Unlocked with the IT credential"),
    EventType.IDLE_UNLOCK_CODE: _Info(_I, "恢复码解锁", "Unlocked with a recovery code"),
    EventType.SCREEN_HOTKEY: _Info(Channel.SCREEN, "截屏", "Screen capture", ScreenKind.HOTKEY),
    EventType.SCREEN_SCREENSHOT_FILE: _Info(Channel.SCREEN, "截图文件", "Screenshot file",
                                            ScreenKind.SCREENSHOT_FILE),
    EventType.SCREEN_REMOTE_CONTROL: _Info(Channel.SCREEN, "远程控制/录屏程序", "Remote-control or "
                                           "screen-recording program", ScreenKind.REMOTE_CONTROL),
    EventType.SCREEN_WATERMARK: _Info(Channel.SCREEN, "屏幕水印", "Screen watermark",
                                      ScreenKind.WATERMARK),
    EventType.FILE_RETAINED: _Info(Channel.FILE, "留存客户资料文件", "File holding customer data",
                                   FileKind.RETAINED),
    EventType.FILE_SWEEP_DONE: _Info(Channel.FILE, "文件检查完成", "File sweep finished",
                                     FileKind.SWEEP_DONE),
    EventType.PRINT_JOB_HELD: _Info(Channel.PRINT, "打印任务", "Print job", PrintKind.JOB_HELD),
    EventType.USB_VOLUME_MOUNTED: _Info(Channel.USB, "接入移动存储", "Removable drive connected",
                                        UsbKind.VOLUME_MOUNTED),
    EventType.USB_FILE_WRITTEN: _Info(Channel.USB, "写入移动存储",
                                      "File written to a removable drive", UsbKind.FILE_WRITTEN),
}

# What only the machine service (or the shipper in its process) records: a teller's process that
# sends one of these over the local channel is refused (issue 8 item 14), so these events in the
# journal are the service's word. The agent's own counterparts (AGENT_STARTED, POLICY_REJECTED,
# AGENT_SPOOL_DROPPED …) stay the teller's to send.
SERVICE_ONLY: frozenset[EventType] = frozenset({
    EventType.SERVICE_STARTED, EventType.SERVICE_STOPPED, EventType.POLICY_APPLIED,
    EventType.HEARTBEAT, EventType.EVENTS_DROPPED, EventType.BATCH_QUARANTINED,
    EventType.HASHES_COMPUTED, EventType.LOCAL_EVENTS_THROTTLED, EventType.APPROVAL_CODE_SPENT,
})


def service_only(value: str) -> bool:
    """True when only the machine service may record events of type `value`."""
    return value in SERVICE_ONLY


# (channel, observation kind) -> event type. Content the pipeline could not scan is recorded
# under the channel's SKIPPED type, like content over the policy's bounds.
_BY_KIND: dict[tuple[Channel, str], EventType] = {
    (info.channel, info.kind): t for t, info in _INFO.items() if info.kind is not None
}
_BY_KIND[(Channel.CLIPBOARD, ClipboardKind.NOT_SCANNED)] = EventType.CLIPBOARD_SKIPPED

KINDS: dict[Channel, type[StrEnum]] = {
    Channel.CLIPBOARD: ClipboardKind,
    Channel.IDLE: IdleKind,
    Channel.SCREEN: ScreenKind,
    Channel.PRINT: PrintKind,
    Channel.USB: UsbKind,
    Channel.FILE: FileKind,
    Channel.SYSTEM: SystemKind,
}


def event_type(channel: Channel, kind: str) -> EventType:
    """The event type an observation of `kind` on `channel` becomes, e.g. USB_VOLUME_MOUNTED."""
    try:
        return _BY_KIND[(channel, kind)]
    except KeyError:
        raise UnknownEventType(
            f"no event type for {channel.value} observation kind {kind!r}: add it to "
            "guard.events.EventType with its labels") from None


def parse_event_type(value: str) -> EventType:
    """`value` as an EventType, or UnknownEventType naming where to add it."""
    try:
        return EventType(value)
    except ValueError:
        raise UnknownEventType(
            f"unknown event type {value!r}: add it to guard.events.EventType with its labels"
        ) from None


def new_event(type_: EventType | str, *, device: Device, channel: Channel | None = None,
              action: Action = Action.AUDIT, outcome: Outcome = Outcome.RECORDED,
              findings: Sequence[Finding] = (), decision: str = "", teller: str = "",
              source_app: str = "", justification: str = "", agent_version: str = "",
              policy_version: str = "",
              detail: Mapping[str, DetailValue] | None = None) -> Event:
    """The one way to build an event: a known type on its own channel, findings summarised
    (masked values and keyed hashes only), every text cut to the schema's bounds."""
    kind = parse_event_type(type_) if not isinstance(type_, EventType) else type_
    if channel is not None and channel is not kind.channel:
        raise UnknownEventType(f"{kind.value} belongs to channel {kind.channel.value}, "
                               f"not {channel.value}")
    return Event(
        type=kind.value, device=device, teller=teller[:128], channel=kind.channel,
        action=action, decision=decision[:128], outcome=outcome,
        findings=summarise(list(findings))[:32], justification=justification[:1000],
        source_app=source_app[:256], agent_version=agent_version[:64],
        policy_version=policy_version[:128], detail=dict(detail or {}),
    )
