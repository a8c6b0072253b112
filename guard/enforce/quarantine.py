"""The quarantine: screenshot files and retained customer files moved out of the teller's reach.

A quarantined file gets a random name (its original path may name a customer) and is listed in
``index.jsonl`` by its masked path only. Where the teller's own process runs the quarantine (single
-process mode, or the session agent beside the service) a 0700 directory owned by the teller is no
protection from the teller, so each file is **encrypted to a public key** whose private half only
IT holds (`agent.quarantine_key` in policy, made by ``teller-guard quarantine keygen``): the
teller's process holds the public key alone and cannot read a quarantined file back; IT restores
one with ``teller-guard quarantine restore --key PRIVATE.pem``. The machine service may run it
unencrypted in its own directory, which the teller cannot open. With no key in policy the file is
still moved (out of the folders chat programs send from) but stays readable by the teller's
account; `Quarantined.encrypted` says which, and a warning is logged once.

File format (``<hex>.tgq``): ``TGQ1``, a 2-byte length and a clear JSON header (masked path, time,
the recipient key's fingerprint; authenticated, so the listing can be rebuilt from the files if the
index is lost), the 32-byte X25519 ephemeral public key, a 4-byte length and the AES-256-GCM sealed
inner header (original path and size), then the content in sealed 1 MiB chunks. The key is
HKDF-SHA256 of the X25519 shared secret (ECIES); each chunk's nonce is its number and a "last"
flag, so a cut, reordered or edited file fails to open instead of giving altered bytes.

The plaintext original is unlinked only after the ciphertext is written, fsynced and renamed into
place. Unlinking does not erase the blocks: on SSDs (wear levelling) and copy-on-write or
journalled filesystems an overwrite would not reach them either, so none is attempted; full-disk
encryption is what protects freed blocks.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import struct
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from guard.model import utc_now_iso

log = logging.getLogger(__name__)

MAGIC: Final = b"TGQ1"
SUFFIX: Final = ".tgq"
INDEX: Final = "index.jsonl"
CHUNK: Final = 1 << 20
TAG: Final = 16
KEY_PREFIX: Final = "x25519:"
_INFO: Final = b"teller-guard quarantine v1"
_HEADER_NO: Final = 0
MAX_CLEAR: Final = 4096
MAX_INNER: Final = 64 * 1024


class QuarantineError(OSError):
    """A file could not be moved to the quarantine; the message says why (never the path)."""


class QuarantineKeyError(ValueError):
    """A quarantine key (public in policy, or IT's private key file) cannot be used."""


class RestoreError(Exception):
    """A quarantined file cannot be restored; the message says why (never its content)."""


class WrongKeyError(RestoreError):
    """The private key given is not the one the file was encrypted to."""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """Where a file went: its random name in the quarantine and its masked original path;
    `encrypted` is False when it was moved without a key (readable by its owner)."""

    name: str
    masked_path: str
    encrypted: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """One quarantined file as listed: its name, masked original path, time, whether it is
    encrypted (and to which key, by fingerprint)."""

    name: str
    masked_path: str
    time: str
    encrypted: bool
    key: str = ""


@dataclass(frozen=True, slots=True)
class Listing:
    """The quarantine's files; `damaged` counts index lines that could not be read and
    `problem` says why the index as a whole could not (the encrypted files themselves are listed
    from their own clear headers either way)."""

    entries: tuple[Entry, ...]
    damaged: int = 0
    problem: str = ""


# -- keys -----------------------------------------------------------------------------------------


def fingerprint(raw_public: bytes) -> str:
    """A short name for a public key (16 hex digits), shown to IT and stored in each file."""
    return hashlib.sha256(b"teller-guard quarantine key\0" + raw_public).hexdigest()[:16]


def parse_public_key(text: str) -> bytes:
    """The 32 raw bytes of an ``x25519:<base64>`` public key; `QuarantineKeyError` otherwise."""
    text = text.strip()
    if not text.startswith(KEY_PREFIX):
        raise QuarantineKeyError(f"a quarantine key starts with {KEY_PREFIX!r}; make one with "
                                 "`teller-guard quarantine keygen`")
    try:
        raw = base64.b64decode(text[len(KEY_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise QuarantineKeyError("the quarantine key is not valid base64") from None
    if len(raw) != 32:
        raise QuarantineKeyError(f"a quarantine key holds 32 bytes, this one {len(raw)}")
    return raw


def generate_keypair() -> tuple[bytes, str]:
    """A new key pair: the private key as PEM (PKCS#8, for IT only) and the public key text
    for policy (``x25519:<base64>``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem, public_text(private.public_key().public_bytes_raw())


def public_text(raw_public: bytes) -> str:
    return KEY_PREFIX + base64.b64encode(raw_public).decode("ascii")


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """IT's private key from a PEM file; `QuarantineKeyError` when it is not one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise QuarantineKeyError(f"cannot read the private key file: "
                                 f"{exc.strerror or type(exc).__name__}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise QuarantineKeyError(f"not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, X25519PrivateKey):
        raise QuarantineKeyError("the private key is not an X25519 key made by "
                                 "`teller-guard quarantine keygen`")
    return PrivateKey(key)


class PrivateKey:
    """IT's private key, loaded (`load_private_key`); never in a teller's process."""

    def __init__(self, key: object) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        if not isinstance(key, X25519PrivateKey):
            raise QuarantineKeyError("the private key is not an X25519 key")
        self._key = key
        self.public = key.public_key().public_bytes_raw()
        self.fingerprint = fingerprint(self.public)

    def shared(self, peer: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        return self._key.exchange(X25519PublicKey.from_public_bytes(peer))

    def __repr__(self) -> str:  # never print the key
        return f"PrivateKey(fingerprint={self.fingerprint})"


def _file_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=_INFO).derive(shared)


def _nonce(number: int, last: bool) -> bytes:
    return number.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


# -- writing --------------------------------------------------------------------------------------


def encrypt_to(src: IO[bytes], dst: IO[bytes], recipient: bytes, *, masked_path: str,
               original: str, time: str) -> None:
    """Write `src`'s bytes to `dst` sealed to the `recipient` public key (the format above)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    aead = AESGCM(_file_key(shared, eph_pub, recipient))
    clear = json.dumps({"from": masked_path, "time": time, "key": fingerprint(recipient)},
                       ensure_ascii=False).encode("utf-8")[:MAX_CLEAR]
    inner = json.dumps({"path": original}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    prefix = MAGIC + struct.pack(">H", len(clear)) + clear + eph_pub
    sealed = aead.encrypt(_nonce(_HEADER_NO, False), inner, prefix)
    dst.write(prefix + struct.pack(">I", len(sealed)) + sealed)
    number = 1
    chunk = src.read(CHUNK)
    while True:
        following = src.read(CHUNK) if len(chunk) == CHUNK else b""
        last = not following
        dst.write(aead.encrypt(_nonce(number, last), chunk, None))
        if last:
            return
        chunk = following
        number += 1


def _read_exact(fh: IO[bytes], n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise RestoreError(f"the quarantined file is cut short (in its {what}); it cannot be "
                           "restored")
    return data


def _clear_header(fh: IO[bytes]) -> tuple[bytes, dict[str, str]]:
    """The clear part of an encrypted file: (its bytes, the parsed header)."""
    if fh.read(len(MAGIC)) != MAGIC:
        raise RestoreError("not a quarantined file (no TGQ1 header)")
    (n,) = struct.unpack(">H", _read_exact(fh, 2, "header"))
    raw = _read_exact(fh, n, "header")
    try:
        clear = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RestoreError("the quarantined file's header is damaged") from None
    if not isinstance(clear, dict):
        raise RestoreError("the quarantined file's header is damaged")
    return MAGIC + struct.pack(">H", n) + raw, {str(k): str(v) for k, v in clear.items()}


def decrypt_from(src: IO[bytes], key: PrivateKey) -> tuple[str, Iterator[bytes]]:
    """The original path and the content (in chunks) of an encrypted quarantined file.

    `WrongKeyError` when the file was encrypted to another key; `RestoreError` when it is
    damaged (raised by the iterator, before a damaged chunk is given out)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    clear_bytes, clear = _clear_header(src)
    if clear.get("key") and clear["key"] != key.fingerprint:
        raise WrongKeyError(f"this file was encrypted to key {clear['key']}, not to the given "
                            f"key {key.fingerprint}; use the private key whose `quarantine "
                            "keygen` printed that fingerprint")
    eph_pub = _read_exact(src, 32, "key")
    prefix = clear_bytes + eph_pub
    (n,) = struct.unpack(">I", _read_exact(src, 4, "header"))
    if n > MAX_INNER:
        raise RestoreError("the quarantined file's header is damaged (too long)")
    sealed = _read_exact(src, n, "header")
    aead = AESGCM(_file_key(key.shared(eph_pub), eph_pub, key.public))
    try:
        inner = json.loads(aead.decrypt(_nonce(_HEADER_NO, False), sealed, prefix))
    except InvalidTag:
        raise WrongKeyError("the given key does not open this file (another key, or the file "
                            "was edited)") from None
    original = str(inner.get("path", "")) if isinstance(inner, dict) else ""

    def chunks() -> Iterator[bytes]:
        number = 1
        block = src.read(CHUNK + TAG)
        while True:
            following = src.read(CHUNK + TAG) if len(block) == CHUNK + TAG else b""
            last = not following
            try:
                yield aead.decrypt(_nonce(number, last), block, None)
            except InvalidTag:
                raise RestoreError(f"the quarantined file is damaged or cut short at chunk "
                                   f"{number}; nothing past it can be restored") from None
            if last:
                return
            block = following
            number += 1

    return original, chunks()


def _fsync_dir(directory: Path) -> None:
    if os.name == "nt":
        return  # directories cannot be opened for fsync on Windows; NTFS journals the rename
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the disk (the original was left where it was)"
    return exc.strerror or exc.__class__.__name__


class Quarantine:
    """Moves files into `directory` (created 0700). `owner` says whose directory it is
    (``service`` or ``single-process``), for the event. `public_key` (an ``x25519:…`` text, or a
    callable giving the current one, e.g. from policy; "" for none) makes each file encrypted."""

    def __init__(self, directory: Path, owner: str = "single-process",
                 public_key: str | Callable[[], str] | None = None) -> None:
        self.directory = Path(directory)
        self.owner = owner
        self._public_key = public_key
        self._lock = threading.Lock()
        self._warned = False

    def _ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.name != "nt":
            os.chmod(self.directory, 0o700)

    def recipient(self) -> bytes | None:
        """The public key files are encrypted to now, or None (moved unencrypted)."""
        text = self._public_key() if callable(self._public_key) else self._public_key
        if not text:
            if self.owner != "service" and not self._warned:
                self._warned = True
                log.warning("quarantine: no agent.quarantine_key in policy; quarantined files "
                            "stay readable by this account (make one with `teller-guard "
                            "quarantine keygen`)")
            return None
        return parse_public_key(text)

    def move(self, path: str | os.PathLike[str], masked_path: str) -> Quarantined:
        """Move `path` into the quarantine; `QuarantineError` when it cannot be moved (the
        original is then left where it was, and nothing of it in the quarantine)."""
        src = Path(path)
        try:
            recipient = self.recipient()
        except QuarantineKeyError as exc:
            raise QuarantineError(f"the quarantine key in policy cannot be used: {exc}") from None
        time = utc_now_iso()
        try:
            with self._lock:
                self._ensure()
                if recipient is None:
                    name = f"{uuid.uuid4().hex}{src.suffix.lower()[:8]}"
                    dest = self.directory / name
                    shutil.move(os.fspath(src), dest)
                    if os.name != "nt":
                        os.chmod(dest, 0o600)
                else:
                    name = uuid.uuid4().hex + SUFFIX
                    self._seal(src, self.directory / name, recipient, masked_path, time)
        except QuarantineError:
            raise
        except OSError as exc:
            raise QuarantineError(f"cannot move the file to the quarantine: "
                                  f"{_reason(exc)}") from None
        self._index({"time": time, "name": name, "from": masked_path,
                     "encrypted": recipient is not None,
                     "key": fingerprint(recipient) if recipient is not None else ""})
        return Quarantined(name, masked_path, recipient is not None)

    def _seal(self, src: Path, dest: Path, recipient: bytes, masked_path: str, time: str) -> None:
        part = dest.with_name(dest.name + ".part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o600)
        try:
            with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
                encrypt_to(fin, fout, recipient, masked_path=masked_path,
                           original=os.fspath(src.absolute()), time=time)
                fout.flush()
                os.fsync(fout.fileno())
            os.replace(part, dest)
            _fsync_dir(self.directory)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        try:
            src.unlink()
        except OSError as exc:
            # Both copies must not exist: the event says "not quarantined", so take ours back.
            dest.unlink(missing_ok=True)
            raise QuarantineError(f"cannot move the file to the quarantine: the original cannot "
                                  f"be removed ({exc.strerror or type(exc).__name__})") from None

    def _index(self, row: dict[str, object]) -> None:
        """Append to the listing. The file itself is already safe: a failure here (disk full)
        only leaves it out of the index, and `listing` still finds it from its own header."""
        try:
            with open(self.directory / INDEX, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            log.warning("quarantine: index not updated (%s); the file is listed from its own "
                        "header", exc.strerror or type(exc).__name__)

    def listing(self) -> Listing:
        return listing(self.directory)


# -- reading (IT's side) --------------------------------------------------------------------------


def listing(directory: Path) -> Listing:
    """The files in a quarantine directory: from its index, plus any encrypted file the index
    lost (from the file's clear header). Damaged index lines are counted, not fatal."""
    directory = Path(directory)
    entries: dict[str, Entry] = {}
    damaged = 0
    problem = ""
    try:
        with open(directory / INDEX, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    name = str(row["name"])
                    entry = Entry(name, str(row.get("from", "")), str(row.get("time", "")),
                                  bool(row.get("encrypted", False)), str(row.get("key", "")))
                except (ValueError, KeyError, TypeError):
                    damaged += 1
                    continue
                if (directory / name).is_file():
                    entries[name] = entry
    except FileNotFoundError:
        pass
    except OSError as exc:  # the files are listed from their own headers below
        problem = f"the index cannot be read ({exc.strerror or type(exc).__name__})"
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        names = []
    except OSError as exc:
        names = []
        problem = f"the directory cannot be read ({exc.strerror or type(exc).__name__})"
    for name in names:
        if name.endswith(SUFFIX) and name not in entries:
            try:
                with open(directory / name, "rb") as fh:
                    _, clear = _clear_header(fh)
            except (OSError, RestoreError):
                clear = {}
            entries[name] = Entry(name, clear.get("from", "?"), clear.get("time", ""), True,
                                  clear.get("key", ""))
    return Listing(tuple(sorted(entries.values(), key=lambda e: (e.time, e.name))), damaged,
                   problem)


def _free_name(out_dir: Path, basename: str) -> Path:
    target = out_dir / basename
    stem, suffix = os.path.splitext(basename)
    n = 1
    while target.exists():
        target = out_dir / f"{stem} ({n}){suffix}"
        n += 1
    return target


def restore(file: Path, key: PrivateKey | None, out_dir: Path) -> Path:
    """Write the original of quarantined `file` into `out_dir` (under its original name, made
    unique) and return where. An unencrypted file is copied. `WrongKeyError` for another key,
    `RestoreError` for a damaged file; nothing partial is left behind."""
    file, out_dir = Path(file), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        fh = open(file, "rb")
    except OSError as exc:
        raise RestoreError(f"cannot open {file.name}: {exc.strerror or type(exc).__name__}") \
            from None
    with fh:
        head = fh.read(len(MAGIC))
        fh.seek(0)
        if head != MAGIC:
            target = _free_name(out_dir, file.name)
            try:
                shutil.copyfile(file, target)
            except OSError as exc:
                raise RestoreError(f"cannot copy {file.name}: "
                                   f"{exc.strerror or type(exc).__name__}") from None
            return target
        if key is None:
            raise RestoreError(f"{file.name} is encrypted: give IT's private key (--key)")
        original, chunks = decrypt_from(fh, key)
        basename = os.path.basename(original.replace("\\", "/")) or file.stem
        target = _free_name(out_dir, basename)
        part = target.with_name(f".{secrets.token_hex(4)}.part")
        try:
            with open(part, "xb") as out:
                if sys.platform != "win32":
                    os.fchmod(out.fileno(), 0o600)
                for block in chunks:
                    out.write(block)
            os.replace(part, target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return target
