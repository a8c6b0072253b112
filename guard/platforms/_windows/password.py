"""The OS password check on Windows, and OS-group membership for supervisors, through ctypes.

A teller's password is checked with LogonUserW's interactive logon type (the way the teller logs
on at this PC). A supervisor of an OS group is checked with one network logon (LogonUserW,
``LOGON32_LOGON_NETWORK``: no profile, no session, no "log on locally" right needed at a teller's
PC): the password is right when the logon succeeds, and the supervisor is a member when the token
it returns holds the group's SID (CheckTokenMembership, so nested and domain groups count as the
OS counts them). The group's SID comes from LookupAccountNameW.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

SECURITY_MAX_SID_SIZE = 68
# SID_NAME_USE values that name a group: SidTypeGroup, SidTypeAlias (a local group such as
# BUILTIN\Administrators), SidTypeWellKnownGroup
_GROUP_SID_TYPES = frozenset({2, 4, 5})


def _split(login: str) -> tuple[str, str]:
    """(domain, user) of ``DOMAIN\\user``; ``.`` (this PC's accounts) without a domain."""
    if "\\" in login:
        domain, user = login.split("\\", 1)
        return domain, user
    return ".", login


class WindowsPasswordChecker:
    """Windows LogonUserW via ctypes: the teller's password, and a supervisor's password with
    membership of an OS group (`check_member`). `advapi32` and `kernel32` are the DLLs (loaded
    here on Windows; tests pass stand-ins)."""

    LOGON32_LOGON_INTERACTIVE = 2
    LOGON32_LOGON_NETWORK = 3
    LOGON32_PROVIDER_DEFAULT = 0

    def __init__(self, advapi32: Any = None, kernel32: Any = None) -> None:
        self.usable = False
        self.reason = ""
        self._advapi32 = advapi32
        self._kernel32 = kernel32
        if advapi32 is None and sys.platform == "win32":
            self._advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
            self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        if self._advapi32 is None:
            self.reason = "LogonUserW exists only on Windows"
            return
        self.usable = True

    def _logon(self, login: str, password: str, logon_type: int) -> ctypes.c_void_p | None:
        """The token of a successful logon (the caller closes it), or None."""
        domain, user = _split(login)
        token = ctypes.c_void_p()
        ok = self._advapi32.LogonUserW(user, domain, password, logon_type,
                                       self.LOGON32_PROVIDER_DEFAULT, ctypes.byref(token))
        if not ok:
            return None
        return token

    def _close(self, token: ctypes.c_void_p) -> None:
        if token.value and self._kernel32 is not None:
            self._kernel32.CloseHandle(token)

    def check(self, user: str, password: str) -> bool:
        if not self.usable or not user:
            return False
        token = self._logon(user, password, self.LOGON32_LOGON_INTERACTIVE)
        if token is None:
            return False
        self._close(token)
        return True

    def group_sid(self, group: str) -> ctypes.Array[ctypes.c_char] | None:
        """The SID of OS group `group` (``NAME`` or ``DOMAIN\\NAME``), or None when no group
        has that name (an account of another kind is no group)."""
        sid = ctypes.create_string_buffer(SECURITY_MAX_SID_SIZE)
        sid_size = ctypes.c_ulong(SECURITY_MAX_SID_SIZE)
        domain = ctypes.create_unicode_buffer(256)
        domain_size = ctypes.c_ulong(256)
        use = ctypes.c_int(0)
        ok = self._advapi32.LookupAccountNameW(None, group, sid, ctypes.byref(sid_size), domain,
                                               ctypes.byref(domain_size), ctypes.byref(use))
        if not ok:
            log.warning("supervisor group %r not found on this PC or its domain", group)
            return None
        if use.value not in _GROUP_SID_TYPES:
            log.warning("supervisor group %r names an account that is no group (type %d)",
                        group, use.value)
            return None
        return sid

    def check_member(self, user: str, password: str, group: str) -> bool:
        """True when `password` is OS user `user`'s and `user` is a member of OS group `group`
        (directly or through nested groups, as the logon token says). Blocks for as long as
        the OS takes to refuse a wrong password: call it off the UI thread."""
        if not self.usable or not user or not group:
            return False
        sid = self.group_sid(group)
        if sid is None:
            return False
        token = self._logon(user, password, self.LOGON32_LOGON_NETWORK)
        if token is None:
            return False
        try:
            member = ctypes.c_int(0)
            if not self._advapi32.CheckTokenMembership(token, sid, ctypes.byref(member)):
                log.warning("group membership of %s could not be checked", user)
                return False
            return bool(member.value)
        finally:
            self._close(token)
