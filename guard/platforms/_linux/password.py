"""The OS password check on Linux: PAM through libpam (ctypes), service ``teller-guard``."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

# PAM ABI (Linux-PAM, _pam_types.h)
_PAM_SUCCESS = 0
_PAM_PROMPT_ECHO_OFF = 1
_PAM_PROMPT_ECHO_ON = 2


class _PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class _PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


_CONV_FUNC = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(_PamMessage)),
    ctypes.POINTER(ctypes.POINTER(_PamResponse)), ctypes.c_void_p,
)


class _PamConv(ctypes.Structure):
    _fields_ = [("conv", _CONV_FUNC), ("appdata_ptr", ctypes.c_void_p)]


class PamPasswordChecker:
    """Linux PAM (libpam via ctypes), service `teller-guard` (falls back to PAM's `other`).

    `confdir` makes PAM read the service file from that directory instead of /etc/pam.d
    (pam_start_confdir, Linux-PAM ≥ 1.4), for a dedicated configuration or tests.
    """

    def __init__(self, service: str = "teller-guard", confdir: str | None = None) -> None:
        self.service = service
        self.confdir = confdir
        self.usable = False
        self.reason = ""
        self._pam: Any = None
        self._libc: Any = None
        name = ctypes.util.find_library("pam") or "libpam.so.0"
        try:
            self._pam = ctypes.CDLL(name)
            self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError as exc:
            self.reason = f"libpam not found ({exc}); install libpam0g"
            return
        self._pam.pam_start.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.POINTER(_PamConv), ctypes.POINTER(ctypes.c_void_p)]
        self._pam.pam_start.restype = ctypes.c_int
        if confdir is not None:
            if not hasattr(self._pam, "pam_start_confdir"):
                self.reason = "this libpam has no pam_start_confdir (needs Linux-PAM 1.4)"
                return
            self._pam.pam_start_confdir.argtypes = [
                ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_PamConv), ctypes.c_char_p,
                ctypes.POINTER(ctypes.c_void_p)]
            self._pam.pam_start_confdir.restype = ctypes.c_int
        self._pam.pam_authenticate.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._pam.pam_authenticate.restype = ctypes.c_int
        self._pam.pam_acct_mgmt.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._pam.pam_acct_mgmt.restype = ctypes.c_int
        self._pam.pam_end.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._pam.pam_end.restype = ctypes.c_int
        self._libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
        self._libc.calloc.restype = ctypes.c_void_p
        self._libc.strdup.argtypes = [ctypes.c_char_p]
        self._libc.strdup.restype = ctypes.c_void_p
        self.usable = True

    def check(self, user: str, password: str) -> bool:
        if not self.usable or not user:
            return False
        secret = password.encode("utf-8")
        libc = self._libc

        def conv(n_messages: int, messages: Any, response: Any, _data: Any) -> int:
            # PAM frees the responses with free(): allocate them with the C allocator.
            block = libc.calloc(n_messages, ctypes.sizeof(_PamResponse))
            if not block:
                return 5  # PAM_BUF_ERR
            replies = ctypes.cast(block, ctypes.POINTER(_PamResponse))
            for i in range(n_messages):
                if messages[i].contents.msg_style in (_PAM_PROMPT_ECHO_OFF, _PAM_PROMPT_ECHO_ON):
                    replies[i].resp = libc.strdup(secret)
                    replies[i].resp_retcode = 0
            response[0] = replies
            return _PAM_SUCCESS

        callback = _CONV_FUNC(conv)
        conversation = _PamConv(callback, None)
        handle = ctypes.c_void_p()
        if self.confdir is not None:
            rc = self._pam.pam_start_confdir(self.service.encode(), user.encode("utf-8"),
                                             ctypes.byref(conversation), self.confdir.encode(),
                                             ctypes.byref(handle))
        else:
            rc = self._pam.pam_start(self.service.encode(), user.encode("utf-8"),
                                     ctypes.byref(conversation), ctypes.byref(handle))
        if rc != _PAM_SUCCESS:
            return False
        try:
            rc = self._pam.pam_authenticate(handle, 0)
            if rc == _PAM_SUCCESS:
                rc = self._pam.pam_acct_mgmt(handle, 0)
            return rc == _PAM_SUCCESS
        finally:
            self._pam.pam_end(handle, rc)
