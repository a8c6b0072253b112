"""The machine service's `Prompter`: asks the teller's session agent over the local channel."""


from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from guard.pipeline.approval import ApprovalRequest, ApprovalResult, Check
from guard.pipeline.prompt import PromptAnswer, PromptRequest

log = logging.getLogger(__name__)

TELLER_KEY = "teller"  # PromptRequest.detail key naming whose session to ask
TRANSIT_GRACE_S = 5.0  # the agent times the teller out itself; this covers the way back
# A teller logged in whose agent has not connected yet (it is starting, or reconnecting after
# a service restart) is waited for this long before the safe choice (issue 11).
AGENT_GRACE_S = 5.0

SessionProbe = Callable[[str], "bool | None"]
"""Whether login `teller` has a live login session on this PC (None: cannot tell here)."""


class _Asks(Protocol):
    """What `RemotePrompter` needs from the channel (`LocalChannelServer` has it)."""

    def ask(self, request: PromptRequest, *, teller: str | None = None,
            timeout_s: float | None = None) -> PromptAnswer | None: ...

    def notify(self, request: PromptRequest, *, teller: str | None = None) -> bool: ...

    def approve(self, request: ApprovalRequest, check: Check, *, teller: str | None = None,
                timeout_s: float | None = None) -> ApprovalResult | None: ...

    def has_session(self, teller: str | None) -> bool: ...

    def wait_for_session(self, teller: str | None, timeout_s: float) -> bool: ...


def safe_choice() -> PromptAnswer:
    """What the service does when nobody answers: cancel (hold the job, keep the volume shut)."""
    return PromptAnswer(proceed=False, timed_out=True)


class RemotePrompter:
    """Implements `guard.pipeline.prompt.Prompter` (and `SupervisorPrompting`) for the machine
    service.

    `ask()` goes to the session agent of the teller named in ``request.detail["teller"]`` (or,
    when the request names none, the most recently active session) and returns its answer;
    with no session connected, a dropped connection or no answer within the request's timeout
    (plus a short transit grace) it returns the safe choice. When the named teller has no agent
    connected but `session_live` says they are logged in (or cannot tell), their agent is
    waited for up to `agent_grace_s` first: it may be starting. `approve()` shows the
    supervisor dialog in that session; `check` (the service's own approver) judges every try.
    Called from the service's worker threads; `ask` blocks at most
    ``agent_grace_s + request.timeout_s + grace_s``. `notify()` returns at once.
    """

    def __init__(self, channel: _Asks, *, grace_s: float = TRANSIT_GRACE_S,
                 session_live: SessionProbe | None = None,
                 agent_grace_s: float = AGENT_GRACE_S) -> None:
        self.channel = channel
        self.grace_s = grace_s
        self.session_live = session_live
        self.agent_grace_s = agent_grace_s

    def _await_agent(self, teller: str | None) -> None:
        """Give a logged-in teller's starting agent a moment to connect."""
        if not teller or self.session_live is None or self.channel.has_session(teller):
            return
        try:
            live = self.session_live(teller)
        except Exception:  # the probe failing is "cannot tell"
            log.exception("cannot tell whether %s is logged in", teller)
            live = None
        if live is False:
            return
        log.info("%s has no agent connected yet; waiting up to %.0f s for it", teller,
                 self.agent_grace_s)
        if not self.channel.wait_for_session(teller, self.agent_grace_s):
            log.info("no agent of %s connected within %.0f s", teller, self.agent_grace_s)

    def ask(self, request: PromptRequest) -> PromptAnswer:
        teller = request.detail.get(TELLER_KEY) or None
        self._await_agent(teller)
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

    def approve(self, request: ApprovalRequest, check: Check) -> ApprovalResult | None:
        """Ask the teller's session to show the supervisor dialog; None (the action stays
        blocked) when no session can show it (none connected, an older agent), or nobody
        approved within the request's timeout."""
        teller = request.prompt.detail.get(TELLER_KEY) or None
        self._await_agent(teller)
        result = self.channel.approve(request, check, teller=teller,
                                      timeout_s=request.prompt.timeout_s + self.grace_s)
        if result is None:
            log.info("no supervisor approved the %s of %s; it stays blocked", request.prompt.kind,
                     teller or "any teller")
        return result
