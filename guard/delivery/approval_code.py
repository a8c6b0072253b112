"""One-time approval codes: derived from the device key, bound to one device, one channel and a
short time window, so a PC can verify them offline (docs/PROTOCOL.md, "One-time approval codes").

The collector issues a code with the key it shares with the enrolled PC; the PC recomputes it
where the device key lives (the machine service, or the agent's own delivery in single-process
mode). A code is 12 digits: two for the number of 5-minute slots it stays valid, two for a
counter that tells codes of the same slot apart, eight of
``HMAC-SHA256(device key, "teller-guard/approval-code/v1|device|channel|slot|slots|counter")``
truncated as HOTP does (RFC 4226 §5.3). Only the pure derivation lives here; both sides share it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

SLOT_S = 300  # one time slot: five minutes
MAX_SLOTS = 96  # a code stays valid at most eight hours
SKEW_SLOTS = 1  # the PC's clock may be this many slots off the collector's
DIGITS = 8
CHANNELS = frozenset({"clipboard", "screen", "print", "usb", "file", "unlock"})
_LABEL = "teller-guard/approval-code/v1"
_CODE = re.compile(r"^\d{12}$")


class CodeError(ValueError):
    """A code request or a typed code that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class CodeId:
    """What makes one issued code unique on its device: recorded once it is used."""

    channel: str
    slot: int
    slots: int
    counter: int

    def key(self) -> str:
        return f"{self.channel}:{self.slot}:{self.slots}:{self.counter}"

    def valid_from(self) -> int:
        """The first Unix second the PC accepts this code (its issue slot, less the skew)."""
        return (self.slot - SKEW_SLOTS) * SLOT_S

    def valid_until(self) -> int:
        """The Unix second from which the PC refuses this code (its last slot, plus the skew)."""
        return (self.slot + self.slots + SKEW_SLOTS) * SLOT_S

    def detail(self) -> dict[str, str | int]:
        """The fields of the `APPROVAL_CODE_SPENT` event that name this code (never the code:
        without the device key they cannot be turned back into it)."""
        return {"code_channel": self.channel, "code_slot": self.slot,
                "code_slots": self.slots, "code_counter": self.counter}

    @classmethod
    def from_detail(cls, detail: Mapping[str, object]) -> CodeId | None:
        """The code an `APPROVAL_CODE_SPENT` event names; None when its fields are not a code
        id (missing, of the wrong type or out of range)."""
        channel, slot = detail.get("code_channel"), detail.get("code_slot")
        slots, counter = detail.get("code_slots"), detail.get("code_counter")
        if not isinstance(channel, str) or channel not in CHANNELS:
            return None
        if not (isinstance(slot, int) and isinstance(slots, int) and isinstance(counter, int)):
            return None
        if any(isinstance(n, bool) for n in (slot, slots, counter)):  # JSON true is no number
            return None
        if not (0 <= slot < 2 ** 40 and 1 <= slots <= MAX_SLOTS and 0 <= counter <= 99):
            return None
        return cls(channel, slot, slots, counter)


def slot_of(unix_s: float) -> int:
    return int(unix_s // SLOT_S)


def slots_for(minutes: float) -> int:
    """How many slots a validity of `minutes` takes (at least one, at most `MAX_SLOTS`)."""
    if not 1 <= minutes <= MAX_SLOTS * SLOT_S / 60:
        raise CodeError(f"minutes must be between 1 and {MAX_SLOTS * SLOT_S // 60}")
    return max(1, -(-int(minutes * 60) // SLOT_S))


def _mac_digits(key: bytes, device_id: str, code: CodeId) -> str:
    msg = f"{_LABEL}|{device_id}|{code.channel}|{code.slot}|{code.slots}|{code.counter}"
    digest = hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 10 ** DIGITS:0{DIGITS}d}"


def check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise CodeError(f"unknown channel {channel!r}: one of {', '.join(sorted(CHANNELS))}")
    return channel


def issue(key: bytes, device_id: str, channel: str, minutes: float, counter: int,
          now: float | None = None) -> str:
    """The code for `device_id` and `channel`, valid from now for about `minutes`."""
    return code_for(key, device_id, code_id(channel, minutes, counter, now))


def code_id(channel: str, minutes: float, counter: int, now: float | None = None) -> CodeId:
    """The id of the code `issue` gives for these arguments (what the collector records)."""
    check_channel(channel)
    if not 0 <= counter <= 99:
        raise CodeError("counter must be between 0 and 99")
    return CodeId(channel, slot_of(time.time() if now is None else now), slots_for(minutes),
                  counter)


def code_for(key: bytes, device_id: str, cid: CodeId) -> str:
    """The 12 digits of code `cid` on `device_id`."""
    return f"{cid.slots:02d}{cid.counter:02d}{_mac_digits(key, device_id, cid)}"


def normalise(typed: str) -> str:
    """A typed code without the spaces and dashes it may be grouped with."""
    return "".join(c for c in typed if c not in " -\u3000")


def match(key: bytes, device_id: str, channel: str, typed: str,
          now: float | None = None) -> CodeId | None:
    """The issued code `typed` is, when it is valid now for this device and channel; else None.

    The slot it was issued in is not in the code: every slot within its validity (and the clock
    skew) is tried, at most `MAX_SLOTS + 2` HMACs."""
    code = normalise(typed)
    if channel not in CHANNELS or not _CODE.match(code):
        return None
    slots, counter, mac = int(code[:2]), int(code[2:4]), code[4:]
    if not 1 <= slots <= MAX_SLOTS:
        return None
    current = slot_of(time.time() if now is None else now)
    for slot in range(current - slots + 1 - SKEW_SLOTS, current + SKEW_SLOTS + 1):
        cid = CodeId(channel, slot, slots, counter)
        if hmac.compare_digest(_mac_digits(key, device_id, cid), mac):
            return cid
    return None


def grouped(code: str) -> str:
    """A code as IT reads it out: ``0301-2345-6789``."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))
