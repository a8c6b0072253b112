"""The machine service's `Prompter`: asks the teller's session agent over the local channel."""


from __future__ import annotations

import logging
from typing import Protocol

from guard.pipeline.prompt import PromptAnswer, PromptRequest

log = logging.getLogger(__name__)

TELLER_KEY = "teller"  # PromptRequest.detail key naming whose session to ask
TRANSIT_GRACE_S = 5.0  # the agent times the teller out itself; this covers the way back


class _Asks(Protocol):
    """What `RemotePrompter` needs from the channel (`LocalChannelServer` has it)."""

    def ask(self, request: PromptRequest, *, teller: str | None = None,
            timeout_s: float | None = None) -> PromptAnswer | None: ...

    def notify(self, request: PromptRequest, *, teller: str | None = None) -> bool: ...


def safe_choice() -> PromptAnswer:
    """What the service does when nobody answers: cancel (hold the job, keep the volume shut)."""
    return PromptAnswer(proceed=False, timed_out=True)


class RemotePrompter:
    """Implements `guard.pipeline.prompt.Prompter` for the machine service.

    `ask()` goes to the session agent of the teller named in ``request.detail["teller"]`` (or,
    when the request names none, the most recently active session) and returns its answer;
    with no session connected, a dropped connection or no answer within the request's timeout
    (plus a short transit grace) it returns the safe choice. Called from the service's worker
    threads; blocks at most ``request.timeout_s + grace_s``. `notify()` returns at once.
    """

    def __init__(self, channel: _Asks, *, grace_s: float = TRANSIT_GRACE_S) -> None:
        self.channel = channel
        self.grace_s = grace_s

    def ask(self, request: PromptRequest) -> PromptAnswer:
        teller = request.detail.get(TELLER_KEY) or None
        answer = self.channel.ask(request, teller=teller,
                                  timeout_s=request.timeout_s + self.grace_s)
        if answer is None:
            log.info("no session of %s answered a %s prompt; taking the safe choice",
                     teller or "any teller", request.kind)
            return safe_choice()
        return answer

    def notify(self, request: PromptRequest) -> None:
        if not self.channel.notify(request, teller=request.detail.get(TELLER_KEY) or None):
            log.info("no session to show a %s notification to", request.kind)
