"""`teller-guard quarantine keygen | list | restore`: IT's side of the encrypted quarantine.

    teller-guard quarantine keygen --private-out it-quarantine.pem   # prints the policy line
    teller-guard quarantine list [--dir DIR] [--json]                # masked paths only
    teller-guard quarantine restore --key it-quarantine.pem --out DIR (NAME ... | --all) [--dir DIR]

The private key never goes to a teller's PC: `keygen` writes it (0600) where IT says, and prints
the public ``x25519:…`` line for `agent.quarantine_key` in the machine or central policy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PROG = "teller-guard quarantine"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("quarantine", help="IT: make the quarantine key, list and restore "
                       "quarantined files")
    qsub = p.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    k = qsub.add_parser("keygen", help="make IT's key pair; prints the public line for policy",
                        description="Write a new X25519 private key (PEM, mode 0600) to "
                        "--private-out and print the public key for `agent.quarantine_key`. "
                        "Keep the private key off the teller PCs.")
    k.add_argument("--private-out", type=Path, required=True, metavar="FILE",
                   help="where the private key goes (must not exist)")
    k.set_defaults(func=keygen)
    ls = qsub.add_parser("list", help="the quarantined files, by masked original path")
    ls.add_argument("--dir", type=Path, help="quarantine directory (default: the data "
                    "directory's quarantine)")
    ls.add_argument("--json", action="store_true", help="one JSON object per file")
    ls.set_defaults(func=list_files)
    r = qsub.add_parser("restore", help="write quarantined files back out with IT's private key",
                        description="Decrypt quarantined files into --out under their original "
                        "names. Exit 0 when all were restored, 1 when any failed (wrong key, "
                        "damaged file), 2 on bad arguments.")
    r.add_argument("names", nargs="*", metavar="NAME", help="quarantined file names (see `list`)")
    r.add_argument("--all", action="store_true", help="every quarantined file")
    r.add_argument("--key", type=Path, help="IT's private key (PEM from `keygen`)")
    r.add_argument("--out", type=Path, required=True, help="directory to write the files to")
    r.add_argument("--dir", type=Path, help="quarantine directory (default: the data "
                   "directory's quarantine)")
    r.set_defaults(func=restore)


def _directory(given: Path | None) -> Path:
    if given is not None:
        return given
    from guard.commands.agent_dir import resolve

    return resolve().path / "quarantine"


def keygen(args: argparse.Namespace) -> int:
    from guard.enforce.quarantine import fingerprint, generate_keypair, parse_public_key

    pem, public = generate_keypair()
    path: Path = args.private_out
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"{PROG} keygen: {path} exists; not overwriting a key (files encrypted to it "
              "could no longer be restored)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG} keygen: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    print(f"# private key written to {path} (fingerprint "
          f"{fingerprint(parse_public_key(public))}); keep it off the teller PCs", file=sys.stderr)
    print(f'quarantine_key = "{public}"')
    return 0


def list_files(args: argparse.Namespace) -> int:
    from guard.enforce.quarantine import RestoreError, listing

    directory = _directory(args.dir)
    try:
        found = listing(directory)
    except RestoreError as exc:
        print(f"{PROG} list: {exc}", file=sys.stderr)
        return 2
    for e in found.entries:
        if args.json:
            print(json.dumps({"name": e.name, "from": e.masked_path, "time": e.time,
                              "encrypted": e.encrypted, "key": e.key}, ensure_ascii=False))
        else:
            lock = f"encrypted to {e.key}" if e.encrypted else "NOT encrypted"
            print(f"{e.name}\t{e.time}\t{lock}\t{e.masked_path}")
    if found.problem:
        print(f"{PROG} list: {found.problem}; encrypted files are listed from their own "
              "headers", file=sys.stderr)
    if found.damaged:
        print(f"{PROG} list: {found.damaged} damaged line(s) in the index skipped; the files "
              "themselves are listed", file=sys.stderr)
    if not found.entries and not args.json:
        print(f"no quarantined files in {directory}", file=sys.stderr)
    return 0


def restore(args: argparse.Namespace) -> int:
    from guard.enforce.quarantine import (
        QuarantineKeyError,
        RestoreError,
        listing,
        load_private_key,
    )
    from guard.enforce.quarantine import restore as restore_file

    if bool(args.names) == bool(args.all):
        print(f"{PROG} restore: name the files, or give --all", file=sys.stderr)
        return 2
    key = None
    if args.key is not None:
        try:
            key = load_private_key(args.key)
        except QuarantineKeyError as exc:
            print(f"{PROG} restore: {args.key}: {exc}", file=sys.stderr)
            return 2
    directory = _directory(args.dir)
    try:
        names = [e.name for e in listing(directory).entries] if args.all else list(args.names)
    except RestoreError as exc:
        print(f"{PROG} restore: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        if os.path.basename(name) != name or name in (".", ".."):
            print(f"{PROG} restore: {name!r} is not a quarantined file's name", file=sys.stderr)
            failed += 1
            continue
        try:
            target = restore_file(directory / name, key, args.out)
        except RestoreError as exc:
            print(f"{PROG} restore: {name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        except OSError as exc:
            print(f"{PROG} restore: {name}: cannot write to {args.out}: "
                  f"{exc.strerror or type(exc).__name__}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}\t{target}")
    return 1 if failed else 0
