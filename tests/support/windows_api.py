"""Stand-ins for the Windows security API at its ctypes boundary (advapi32, kernel32 handles),
shared by every test of Windows code that logs a user on: LogonUserW, LookupAccountNameW and
CheckTokenMembership behave as documented for the accounts and groups each stand-in is given."""

from __future__ import annotations

import ctypes
from typing import Any

# SID_NAME_USE
SID_TYPE_USER = 1
SID_TYPE_GROUP = 2
SID_TYPE_ALIAS = 4


class FakeAdvapi:
    """advapi32: `accounts` maps (domain, user) to (password, the groups its token holds);
    `groups` maps a group name to its SID type. Logons hand back a token handle; each call is
    recorded in `calls` as (function, user or group, domain, logon type)."""

    def __init__(self, accounts: dict[tuple[str, str], tuple[str, frozenset[str]]] | None = None,
                 groups: dict[str, int] | None = None) -> None:
        self.accounts = accounts if accounts is not None else {
            (".", "teller1"): ("Passw0rd!", frozenset())}
        self.groups = groups if groups is not None else {}
        self.calls: list[tuple[str, str, str, int]] = []
        self._tokens: dict[int, frozenset[str]] = {}

    @staticmethod
    def _sid(group: str) -> bytes:
        return ("S-" + group.lower()).encode()[:60]

    def LogonUserW(self, user: str, domain: str, password: str, logon_type: int, provider: int,
                   token_ref: Any) -> int:
        self.calls.append(("LogonUserW", user, domain, logon_type))
        known = self.accounts.get((domain, user))
        if known is None or known[0] != password:
            return 0
        handle = 0x1234 + len(self._tokens)
        self._tokens[handle] = known[1]
        token_ref._obj.value = handle
        return 1

    def LookupAccountNameW(self, system: None, name: str, sid: Any, sid_size: Any, domain: Any,
                           domain_size: Any, use: Any) -> int:
        self.calls.append(("LookupAccountNameW", name, "", 0))
        kind = self.groups.get(name)
        if kind is None:
            return 0
        value = self._sid(name)
        ctypes.memmove(sid, value, len(value))
        use._obj.value = kind
        return 1

    def CheckTokenMembership(self, token: ctypes.c_void_p, sid: Any, member: Any) -> int:
        held = self._tokens.get(int(token.value or 0))
        if held is None:
            return 0  # not a token this stand-in handed out
        wanted = bytes(sid.raw).rstrip(b"\0")
        member._obj.value = int(any(self._sid(g) == wanted for g in held))
        return 1


class FakeKernelHandles:
    """kernel32's CloseHandle: records every handle closed."""

    def __init__(self) -> None:
        self.closed: list[int] = []

    def CloseHandle(self, handle: ctypes.c_void_p) -> int:
        self.closed.append(int(handle.value or 0))
        return 1
