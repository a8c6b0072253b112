"""Supervisors by Windows group membership: one network logon checks the password, the logon
token's groups the membership (the Windows security API stood in for at its ctypes boundary),
and the approver lets such a supervisor approve with their OS password."""

from __future__ import annotations

import pytest

from guard.credentials import Backoff
from guard.pipeline.approval import Approver
from guard.platforms._windows.password import WindowsPasswordChecker
from guard.platforms.base import GroupPasswordCheck
from tests.support.core import Core
from tests.support.windows_api import (
    SID_TYPE_ALIAS,
    SID_TYPE_GROUP,
    SID_TYPE_USER,
    FakeAdvapi,
    FakeKernelHandles,
)

GROUPS = {"TG-Supervisors": SID_TYPE_ALIAS, "BANK\\Branch-Managers": SID_TYPE_GROUP,
          "wang.li": SID_TYPE_USER}
ACCOUNTS = {
    (".", "wang.li"): ("Sup3r!", frozenset({"TG-Supervisors"})),
    ("BANK", "zhao.min"): ("Mgr#2026", frozenset({"BANK\\Branch-Managers", "TG-Supervisors"})),
    (".", "teller1"): ("Passw0rd!", frozenset()),
}


def checker() -> tuple[WindowsPasswordChecker, FakeAdvapi, FakeKernelHandles]:
    advapi, kernel = FakeAdvapi(ACCOUNTS, GROUPS), FakeKernelHandles()
    return WindowsPasswordChecker(advapi, kernel), advapi, kernel


@pytest.mark.parametrize(("user", "password", "group", "member"), [
    ("wang.li", "Sup3r!", "TG-Supervisors", True),
    ("BANK\\zhao.min", "Mgr#2026", "BANK\\Branch-Managers", True),
    ("BANK\\zhao.min", "Mgr#2026", "TG-Supervisors", True),  # through a nested group
    ("wang.li", "Sup3r!", "BANK\\Branch-Managers", False),  # not a member
    ("wang.li", "wrong", "TG-Supervisors", False),  # wrong password
    ("teller1", "Passw0rd!", "TG-Supervisors", False),  # right password, no member
    ("wang.li", "Sup3r!", "No-Such-Group", False),  # the group does not exist
    ("wang.li", "Sup3r!", "wang.li", False),  # a user account is no group
    ("", "Sup3r!", "TG-Supervisors", False),
    ("wang.li", "Sup3r!", "", False),
])
def test_membership_decision(user: str, password: str, group: str, member: bool) -> None:
    check, _advapi, _kernel = checker()
    assert check.check_member(user, password, group) is member


def test_one_network_logon_and_its_token_closed() -> None:
    check, advapi, kernel = checker()
    assert check.check_member("BANK\\zhao.min", "Mgr#2026", "TG-Supervisors")
    logons = [c for c in advapi.calls if c[0] == "LogonUserW"]
    assert logons == [("LogonUserW", "zhao.min", "BANK", WindowsPasswordChecker
                       .LOGON32_LOGON_NETWORK)]
    assert kernel.closed == [0x1234]  # the token is never leaked
    # a group that cannot be found costs no logon (no lockout count for a policy typo)
    advapi.calls.clear()
    assert not check.check_member("wang.li", "Sup3r!", "No-Such-Group")
    assert [c[0] for c in advapi.calls] == ["LookupAccountNameW"]
    # the teller's own check stays the interactive logon type
    assert check.check("teller1", "Passw0rd!")
    assert advapi.calls[-1] == ("LogonUserW", "teller1", ".",
                                WindowsPasswordChecker.LOGON32_LOGON_INTERACTIVE)


def test_off_windows_it_says_why_and_approves_nothing() -> None:
    off = WindowsPasswordChecker()
    assert not off.usable and "only on Windows" in off.reason
    assert not off.check_member("wang.li", "Sup3r!", "TG-Supervisors")
    assert isinstance(off, GroupPasswordCheck)


POLICY = """
[clipboard]
action = "block"
approval = "supervisor"
[[supervisors]]
id = "wang.li"
name = "王主管"
os_group = "TG-Supervisors"
[[supervisors]]
id = "zhao"
login = "BANK\\\\zhao.min"
os_group = "BANK\\\\Branch-Managers"
[[supervisors]]
id = "teller1"
os_group = "TG-Supervisors"
"""


def approver(teller: str = "teller1") -> Approver:
    core = Core()
    core.use(POLICY)
    check, _advapi, _kernel = checker()

    def no_listing(group: str) -> frozenset[str] | None:
        raise AssertionError("Windows membership comes from the logon token, not a listing")

    return Approver(policy=lambda: core.policy, teller=teller, password=check,
                    backoff=Backoff(3, 5.0, 60.0), groups=no_listing)


def test_a_windows_group_supervisor_approves_with_the_os_password() -> None:
    a = approver()
    assert [s.id for s in a.supervisors()] == ["wang.li", "zhao", "teller1"]
    ok = a.check("supervisor", "wang.li", "Sup3r!")
    assert (ok.ok, ok.supervisor, ok.supervisor_name) == (True, "wang.li", "王主管")
    assert a.check("supervisor", "zhao", "Mgr#2026").ok  # DOMAIN\login of a domain group
    assert a.check("supervisor", "wang.li", "wrong").message_key == "wrong_credential"
    # the teller is no supervisor of their own action, whatever group policy names
    assert a.check("supervisor", "teller1", "Passw0rd!").message_key == "self_approval"
