"""`teller-guard enroll URL --token-file F`: enrol this PC at a collector, keep its key safe."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

ENV_ENROLL_TOKEN = "TELLER_GUARD_ENROLL_TOKEN"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "enroll",
        help="enrol this PC at the central collector (IT gives the URL and a token)",
        description="Enrol this PC at a collector with the enrolment token set by IT, read from "
        f"--token-file or {ENV_ENROLL_TOKEN} (never the command line: every user sees it in ps). "
        "The device key goes to the OS keyring (a 0600 file in the data directory when there is "
        "none).",
    )
    p.add_argument("url", help="the collector's base URL, e.g. https://guard.bank.example")
    # refused with a message saying how instead
    p.add_argument("token", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--token-file", metavar="FILE", type=Path,
                   help=f"file holding the enrolment token set by IT (or set {ENV_ENROLL_TOKEN})")
    p.add_argument("--branch", default=None, help="this PC's branch code (default: configured)")
    p.add_argument("--ca-bundle", metavar="FILE",
                   help="CA bundle that signs the collector's certificate (default: OS store)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from guard import identity, paths
    from guard.delivery.enrolment import DeviceKeyError, DeviceKeyStore, enroll

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.token is not None:
        print("teller-guard enroll: a token on the command line is refused (every user sees it "
              f"in ps): give --token-file FILE or set {ENV_ENROLL_TOKEN}", file=sys.stderr)
        return 2
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            print(f"teller-guard enroll: --token-file {args.token_file}: "
                  f"{getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            return 2
    else:
        token = os.environ.get(ENV_ENROLL_TOKEN, "").strip()
    if not token:
        print(f"teller-guard enroll: no enrolment token: give --token-file FILE or set "
              f"{ENV_ENROLL_TOKEN}", file=sys.stderr)
        return 2
    try:
        device = identity.device()
        result = enroll(args.url, token, hostname=device.hostname,
                        branch=args.branch if args.branch is not None else device.branch,
                        device_id=device.id, store=DeviceKeyStore(paths.data_dir()),
                        ca_bundle=args.ca_bundle)
    except (DeviceKeyError, paths.ConfigError) as exc:
        print(f"teller-guard enroll: {exc}", file=sys.stderr)
        return 1
    where = ("the OS keyring" if result.key_store == "keyring"
             else "a file readable only by its owner (mode 0600; no OS keyring here)")
    print(f"enrolled at {result.endpoint} as device {result.device_id}; key kept in {where}")
    if result.device_id != device.id:
        print(f"note: the collector assigned id {result.device_id} (this PC used {device.id})",
              file=sys.stderr)
    return 0
