"""The local channel's wire constants and errors, shared by both ends."""


from __future__ import annotations

import logging

log = logging.getLogger(__name__)

SOCKET_NAME = "agent.sock"
HASH_KEY_REQUEST = b"hash-key"
MAX_LINE = 64 * 1024
_UID_ROOT = 0


class LocalChannelError(Exception):
    """The local channel failed; the message says what and how to fix it."""


class LocalChannelUnavailable(LocalChannelError):
    """The local channel cannot run on this platform or in this configuration."""


class LocalChannelRefused(LocalChannelError):
    """The service refused an event for good (not a valid event, wrong teller, user not allowed)."""


