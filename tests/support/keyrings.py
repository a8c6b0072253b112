"""Keyring backends for tests: one that keeps secrets in memory, one that looks like keyrings.alt,
and a way to make a backend the active keyring for a while."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

B = TypeVar("B", bound=KeyringBackend)


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps secrets in memory (tests only)."""

    priority = 0  # type: ignore[assignment]  # never chosen by discovery

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.secrets:
            raise PasswordDeleteError(username)
        del self.secrets[(service, username)]


class PlaintextKeyring(MemoryKeyring):
    """Looks like a keyrings.alt backend (those store secrets in plain text)."""


PlaintextKeyring.__module__ = "keyrings.alt.file"


@contextlib.contextmanager
def active_keyring(backend: B) -> Iterator[B]:
    """`backend` is the active keyring inside the block; the one before comes back after."""
    before = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(before)
