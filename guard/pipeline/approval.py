"""Supervisor approval (四眼): checks a supervisor's credential or a one-time code for a teller.

A policy section or rule with ``approval = "supervisor"`` lets a blocked (or refused, or
timed-out justify) action go ahead once a supervisor standing at the counter approves it on the
teller's PC, or once the teller types a one-time code IT issued for this device and channel (a
remote supervisor). `Approver` does the checking, always off the Qt thread: the supervisor's
scrypt credential from policy or, where the platform can check it, the OS password of a member
of the supervisor's OS group; the teller's own login or credential never approves (no
self-approval); wrong tries back off like the PIN. The same checks unlock the lock overlay.
Beside the machine service the agent holds no verifier: its approver asks the service
(`remote`), which checks and backs off per teller.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from guard.credentials import Backoff, verify_secret
from guard.pipeline.prompt import PromptRequest
from guard.platforms.base import GroupPasswordCheck, PasswordCheck
from guard.policy.schema import Policy, Supervisor

log = logging.getLogger(__name__)

SUPERVISOR = "supervisor"
CODE = "code"
IT = "it"  # the IT credential (quit dialog, lock overlay), checked by the service for an agent

RemoteCheck = Callable[[str, str, str], "ApprovalResult"]
"""(method ``supervisor`` or ``it``, supervisor id or "", secret) → the machine service's
verdict: how an agent beside the service checks a credential whose verifier it never holds."""


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    """The answer to one approval attempt.

    `ok` True: approved by `method` (``supervisor`` or ``code``), by `supervisor` (its id) when a
    supervisor approved. Otherwise `message_key` says why, for the UI to word through tr():
    ``wrong_credential``, ``unknown_supervisor``, ``self_approval``, ``code_refused``,
    ``backoff`` (still waiting; `retry_after_s` says how long), ``not_offered``."""

    ok: bool
    method: str = SUPERVISOR
    supervisor: str = ""
    supervisor_name: str = ""
    retry_after_s: float = 0.0
    message_key: str = "ok"
    reason: str = ""  # what the supervisor or teller typed as the approval's reason


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """What the supervisor dialog shows: the teller's prompt (what was blocked), the supervisors
    who may approve (id, display name) and whether a one-time code is accepted."""

    prompt: PromptRequest
    supervisors: tuple[tuple[str, str], ...]
    codes: bool


Check = Callable[[str, str, str], ApprovalResult]  # (method, supervisor id or "", secret)


@runtime_checkable
class SupervisorPrompting(Protocol):
    def approve(self, request: ApprovalRequest, check: Check) -> ApprovalResult | None:
        """Show "ask your supervisor" (请授权人员授权) and let a supervisor approve: each try calls
        `check(method, supervisor_id, secret)` off the UI thread. Blocks the calling worker
        thread until approved (the successful result, with the typed reason) or cancelled /
        timed out (None)."""


def os_group_members(group: str) -> frozenset[str] | None:
    """The logins in OS group `group` (listed members and those whose primary group it is);
    None when this platform cannot tell (Windows: its password check tells membership itself,
    `GroupPasswordCheck`)."""
    if sys.platform == "win32":
        return None
    import grp
    import pwd

    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return frozenset()
    members = set(entry.gr_mem)
    members.update(p.pw_name for p in pwd.getpwall() if p.pw_gid == entry.gr_gid)
    return frozenset(members)


class Approver:
    """Checks supervisors' credentials and one-time codes for one teller's session.

    `teller_matches(secret)` is True when `secret` is the teller's own credential (PIN or OS
    password): such a secret never approves. `code_verifier(channel, code)` asks where the
    device key lives (the machine service, or this process's delivery) and records the code as
    used; None when no code can be checked. `remote` (an agent beside the machine service):
    supervisor credentials are checked by the service, never here (the policy this process
    holds has no verifiers); an answer that is not a yes is a refusal. Every method may block
    (scrypt, PAM, a round trip): call them from a worker thread."""

    def __init__(self, *, policy: Callable[[], Policy], teller: str,
                 password: PasswordCheck, backoff: Backoff,
                 teller_matches: Callable[[str], bool] = lambda _s: False,
                 code_verifier: Callable[[str, str], bool] | None = None,
                 groups: Callable[[str], frozenset[str] | None] = os_group_members,
                 remote: RemoteCheck | None = None) -> None:
        self._policy = policy
        self._remote = remote
        self.teller = teller
        self._password = password
        self.backoff = backoff
        self._teller_matches = teller_matches
        self._code_verifier = code_verifier
        self._groups = groups

    # -- what is offered
    def supervisors(self) -> tuple[Supervisor, ...]:
        """The supervisors policy names who could approve here (an OS-group supervisor only
        where the OS password can be checked; beside the service, every one: it checks)."""
        return tuple(s for s in self._policy().supervisors
                     if s.credential_hash or self._password.usable or self._remote is not None)

    def codes(self) -> bool:
        return self._code_verifier is not None

    def offered(self) -> bool:
        return bool(self.supervisors()) or self.codes()

    def request(self, prompt: PromptRequest) -> ApprovalRequest:
        return ApprovalRequest(prompt, tuple((s.id, s.label) for s in self.supervisors()),
                               self.codes())

    # -- checks
    def check(self, method: str, supervisor_id: str, secret: str, *,
              channel: str = "") -> ApprovalResult:
        """One try: a supervisor's credential (`method` ``supervisor``) or a one-time code for
        `channel` (``code``), with back-off after wrong tries."""
        wait = self.backoff.wait_left()
        if wait > 0:
            return ApprovalResult(False, method, supervisor_id, retry_after_s=wait,
                                  message_key="backoff")
        result = self.check_once(method, supervisor_id, secret, channel=channel)
        if result.ok:
            self.backoff.succeeded()
            return result
        if result.message_key == "backoff":  # the service's back-off: no new wrong try
            return result
        state = self.backoff.failed()
        return ApprovalResult(False, method, result.supervisor, result.supervisor_name,
                              max(state.retry_after_s, result.retry_after_s), result.message_key)

    def check_once(self, method: str, supervisor_id: str, secret: str, *,
                   channel: str = "") -> ApprovalResult:
        """One try without this approver's back-off (the lock overlay counts tries in its
        own)."""
        if method == CODE:
            return self._check_code(channel, secret)
        if method == SUPERVISOR:
            return self._check_supervisor(supervisor_id, secret)
        return ApprovalResult(False, method, message_key="not_offered")

    def _check_supervisor(self, supervisor_id: str, secret: str) -> ApprovalResult:
        sup = self._policy().supervisor(supervisor_id.strip())
        if sup is None:
            return ApprovalResult(False, SUPERVISOR, supervisor_id[:64],
                                  message_key="unknown_supervisor")
        refused = ApprovalResult(False, SUPERVISOR, sup.id, sup.label,
                                 message_key="wrong_credential")
        if self.teller and self.teller in (sup.id, sup.os_login):
            return ApprovalResult(False, SUPERVISOR, sup.id, sup.label,
                                  message_key="self_approval")
        if self._remote is not None:
            try:
                verdict = self._remote(SUPERVISOR, sup.id, secret)
            except Exception as exc:  # the check failing is a refusal, never an approval
                log.warning("supervisor credential not checked: %s", exc.__class__.__name__)
                verdict = ApprovalResult(False, SUPERVISOR, message_key="not_offered")
            if not verdict.ok:
                return ApprovalResult(False, SUPERVISOR, sup.id, sup.label,
                                      verdict.retry_after_s, verdict.message_key)
            ok = True
        else:
            ok = self._verify_here(sup, secret)
        if not ok:
            return refused
        if self._teller_matches(secret):
            # The teller knows this secret: it cannot stand for a second person.
            log.warning("approval refused: supervisor %s's credential is the teller's own", sup.id)
            return ApprovalResult(False, SUPERVISOR, sup.id, sup.label,
                                  message_key="self_approval")
        return ApprovalResult(True, SUPERVISOR, sup.id, sup.label)

    def _verify_here(self, sup: Supervisor, secret: str) -> bool:
        ok = bool(sup.credential_hash) and verify_secret(secret, sup.credential_hash)
        if not ok and sup.os_group and self._password.usable:
            if isinstance(self._password, GroupPasswordCheck):  # one logon tells both (Windows)
                ok = self._password.check_member(sup.os_login, secret, sup.os_group)
            else:
                members = self._groups(sup.os_group)
                ok = (members is not None and sup.os_login in members
                      and self._password.check(sup.os_login, secret))
        return ok

    def _check_code(self, channel: str, code: str) -> ApprovalResult:
        if self._code_verifier is None:
            return ApprovalResult(False, CODE, message_key="not_offered")
        try:
            ok = self._code_verifier(channel, code)
        except Exception as exc:  # the check failing is a refusal, never an approval
            log.warning("one-time code not checked: %s", exc.__class__.__name__)
            ok = False
        return ApprovalResult(ok, CODE, message_key="ok" if ok else "code_refused")
