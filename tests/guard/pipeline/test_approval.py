"""Supervisor approval (四眼): the approver refuses self-approval, unknown supervisors and wrong
credentials with back-off; OS-group supervisors; the pipeline records one event with both
identities and lets the action proceed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from guard.credentials import Backoff, hash_secret
from guard.model import Channel, Observation, Outcome
from guard.pipeline.approval import (
    ApprovalRequest,
    ApprovalResult,
    Approver,
    Check,
)
from guard.pipeline.pipeline import Enforcement
from guard.pipeline.prompt import ScriptedPrompter
from tests.support.core import Core

SUP_SECRET = "sup-0420-secret"
TELLER_PIN = "135790"
CARD = "6222021234567890123"
POLICY = f"""
[clipboard]
action = "block"
approval = "supervisor"
[[supervisors]]
id = "sup01"
name = "王主管"
credential_hash = "{hash_secret(SUP_SECRET)}"
[[supervisors]]
id = "t1"
credential_hash = "{hash_secret("teller-own")}"
[[supervisors]]
id = "grp01"
os_group = "tg-supervisors"
[[supervisors]]
id = "shared"
credential_hash = "{hash_secret(TELLER_PIN)}"
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Passwords:
    """An OS password check (the PAM boundary): one known password per login."""

    usable = True
    reason = ""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known

    def check(self, user: str, password: str) -> bool:
        return self.known.get(user) == password


def make_approver(core: Core, clock: Clock | None = None,
                  codes: Callable[[str, str], bool] | None = None) -> Approver:
    return Approver(policy=lambda: core.policy, teller="t1",
                    password=Passwords({"grp01": "os-pass", "t1": "teller-os"}),
                    backoff=Backoff(2, 5.0, 60.0, clock=clock or Clock()),
                    teller_matches=lambda s: s == TELLER_PIN, code_verifier=codes,
                    groups=lambda g: frozenset({"grp01"}) if g == "tg-supervisors" else None)


@pytest.fixture
def core() -> Core:
    c = Core()
    c.use(POLICY)
    return c


def test_a_supervisor_credential_approves(core: Core) -> None:
    result = make_approver(core).check("supervisor", "sup01", SUP_SECRET)
    assert (result.ok, result.supervisor, result.supervisor_name) == (True, "sup01", "王主管")


@pytest.mark.parametrize(("sid", "secret", "key"), [
    ("sup01", "wrong", "wrong_credential"),
    ("nobody", SUP_SECRET, "unknown_supervisor"),
    ("t1", "teller-own", "self_approval"),  # the teller's own login
    ("shared", TELLER_PIN, "self_approval"),  # a secret the teller knows
    ("grp01", "wrong", "wrong_credential"),
])
def test_refusals(core: Core, sid: str, secret: str, key: str) -> None:
    result = make_approver(core).check("supervisor", sid, secret)
    assert (result.ok, result.message_key) == (False, key)


def test_os_group_member_with_the_os_password(core: Core) -> None:
    approver = make_approver(core)
    assert approver.check("supervisor", "grp01", "os-pass").ok
    core.use(POLICY.replace('os_group = "tg-supervisors"', 'os_group = "other-group"'))
    assert approver.check("supervisor", "grp01", "os-pass").message_key == "wrong_credential"


def test_wrong_supervisor_credentials_back_off(core: Core) -> None:
    clock = Clock()
    approver = make_approver(core, clock)
    first, second = (approver.check("supervisor", "sup01", "x") for _ in range(2))
    assert (first.retry_after_s, second.retry_after_s) == (0.0, 5.0)
    waiting = approver.check("supervisor", "sup01", SUP_SECRET)  # even the right one waits
    assert (waiting.ok, waiting.message_key) == (False, "backoff")
    clock.now += 5.0
    assert approver.check("supervisor", "sup01", "y").retry_after_s == 10.0  # doubles
    clock.now += 10.0
    assert approver.check("supervisor", "sup01", SUP_SECRET).ok
    assert approver.backoff.failures == 0


def test_codes_go_to_the_verifier_with_the_channel(core: Core) -> None:
    asked: list[tuple[str, str]] = []

    def verify(channel: str, code: str) -> bool:
        asked.append((channel, code))
        return code == "good"

    approver = make_approver(core, codes=verify)
    assert approver.check("code", "", "good", channel="clipboard").ok
    assert approver.check("code", "", "bad", channel="clipboard").message_key == "code_refused"
    assert asked == [("clipboard", "good"), ("clipboard", "bad")]
    assert make_approver(core).check("code", "", "x").message_key == "not_offered"


class SupervisorAtTheCounter(ScriptedPrompter):
    """The supervisor dialog: types each (method, id, secret) in turn until one is approved."""

    def __init__(self, tries: list[tuple[str, str, str]], reason: str = "") -> None:
        super().__init__()
        self.tries = tries
        self.reason = reason
        self.requests: list[ApprovalRequest] = []
        self.results: list[ApprovalResult] = []

    def approve(self, request: ApprovalRequest, check: Check) -> ApprovalResult | None:
        self.requests.append(request)
        for method, sid, secret in self.tries:
            result = check(method, sid, secret)
            self.results.append(result)
            if result.ok:
                return ApprovalResult(True, result.method, result.supervisor,
                                      result.supervisor_name, reason=self.reason)
        return None


def test_blocked_copy_approved_by_a_supervisor_is_one_event_with_both_identities() -> None:
    prompter = SupervisorAtTheCounter([("supervisor", "sup01", "wrong"),
                                       ("supervisor", "sup01", SUP_SECRET)],
                                      reason=f"客户 {CARD} 本人办理")
    core = Core(prompter)
    core.use(POLICY)
    core.pipeline.approver = make_approver(core)
    done: list[str] = []
    handled = core.pipeline.handle(
        Observation(Channel.CLIPBOARD, "copy", text=f"卡号 {CARD}"),
        Enforcement(block=lambda: done.append("block") is None,
                    allow=lambda: done.append("allow") is None))
    assert done == ["block", "allow"]
    assert handled.outcome is Outcome.ALLOWED
    assert core.types() == ["APPROVAL_FAILED", "APPROVAL_SUPERVISOR"]
    failed, event = core.sink.events
    assert failed.detail["why"] == "wrong_credential" and failed.detail["supervisor"] == "sup01"
    assert event.teller == "t1" and event.detail["supervisor"] == "sup01"
    assert event.detail["approved_channel"] == "clipboard" and event.action.value == "block"
    assert CARD not in event.to_json() and "本人办理" in event.justification  # masked reason
    (request,) = prompter.requests
    assert ("sup01", "王主管") in request.supervisors and not request.codes


def test_cancelled_approval_keeps_the_block(core: Core) -> None:
    prompter = SupervisorAtTheCounter([("supervisor", "t1", "teller-own")])
    core2 = Core(prompter)
    core2.use(POLICY)
    core2.pipeline.approver = make_approver(core2)
    done: list[str] = []
    handled = core2.pipeline.handle(
        Observation(Channel.CLIPBOARD, "copy", text=f"卡号 {CARD}"),
        Enforcement(block=lambda: done.append("block") is None,
                    allow=lambda: done.append("allow") is None))
    assert done == ["block"] and handled.outcome is Outcome.BLOCKED
    assert core2.types() == ["APPROVAL_FAILED", "CLIPBOARD_COPY"]
    assert core2.sink.events[0].detail["why"] == "self_approval"


def test_no_approval_without_the_policy_saying_so() -> None:
    prompter = SupervisorAtTheCounter([("supervisor", "sup01", SUP_SECRET)])
    core = Core(prompter)
    core.use(POLICY.replace('approval = "supervisor"\n', "", 1))
    core.pipeline.approver = make_approver(core)
    handled = core.pipeline.handle(Observation(Channel.CLIPBOARD, "copy", text=CARD),
                                   Enforcement(block=lambda: True, allow=lambda: True))
    assert handled.outcome is Outcome.BLOCKED and not prompter.requests


def test_a_rule_can_make_its_action_overridable() -> None:
    core = Core()
    core.use(POLICY.replace('approval = "supervisor"\n', "", 1)
             + '[[rules]]\nchannel = "clipboard"\naction = "block"\napproval = "supervisor"\n')
    assert core.policy.approval_for(Channel.CLIPBOARD, "rules[0]")
    assert not core.policy.approval_for(Channel.CLIPBOARD, "clipboard.action")
