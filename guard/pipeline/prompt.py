"""The protocol by which the core asks the teller something; `ui/` implements it with Qt.

The core never composes user-facing sentences: it hands the UI a `PromptRequest` with the
channel, what was found (types, counts, masked values) and what policy requires, and the UI words
it through Qt's translation system. Every method is called from a worker thread and blocks until
the teller answers or the timeout takes the safe choice.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from guard.model import Action, Channel, FindingSummary


@dataclass(frozen=True, slots=True)
class PromptRequest:
    """What to ask. `action` is NOTIFY, CONFIRM or JUSTIFY (or LOCK for the idle countdown)."""

    action: Action
    channel: Channel
    kind: str  # the observation kind: copy, hotkey, job_held, volume_mounted, idle_warn ...
    findings: tuple[FindingSummary, ...] = ()
    timeout_s: float = 30.0
    min_reason_len: int = 0
    reasons: tuple[str, ...] = ()  # reason choices offered by policy, in the policy's language
    detail: dict[str, str] = field(default_factory=dict)  # e.g. {"printer": ..., "volume": ...}


@dataclass(frozen=True, slots=True)
class PromptAnswer:
    """The teller's answer. `proceed` False means cancel (the safe choice)."""

    proceed: bool
    reason: str = ""
    timed_out: bool = False


class Prompter(Protocol):
    def notify(self, request: PromptRequest) -> None:
        """Show a toast; returns at once (called from any thread)."""

    def ask(self, request: PromptRequest) -> PromptAnswer:
        """Show a modal confirm/justify dialog; blocks the calling worker thread until answered
        or until `request.timeout_s` passes (then `PromptAnswer(False, timed_out=True)`)."""


class ScriptedPrompter:
    """A prompter for tests and headless runs: answers from a script, records what was asked."""

    def __init__(self, answers: Iterable[PromptAnswer] = (), default: PromptAnswer | None = None):
        self._answers: deque[PromptAnswer] = deque(answers)
        self._default = default or PromptAnswer(proceed=False, timed_out=True)
        self._lock = threading.Lock()
        self.asked: list[PromptRequest] = []
        self.notified: list[PromptRequest] = []

    def notify(self, request: PromptRequest) -> None:
        with self._lock:
            self.notified.append(request)

    def ask(self, request: PromptRequest) -> PromptAnswer:
        with self._lock:
            self.asked.append(request)
            return self._answers.popleft() if self._answers else self._default
