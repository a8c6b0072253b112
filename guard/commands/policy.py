"""`teller-guard policy`: check a policy file line by line, show the policy in force, and hash the
IT credential that quitting the agent requires."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "policy",
        help="check a policy file, show the policy in force, hash the IT credential",
        description="Policy tools. A machine or central policy is a layer on the packaged "
        "default: it only needs the keys it changes.",
    )
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    check = psub.add_parser("check", help="explain what is wrong with a policy file, line by line "
                                          "(exit 0 when it is good, 1 when not)")
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--standalone", action="store_true",
                       help="check the file as a whole policy, not as a layer on the default")
    check.set_defaults(func=run_check)

    show = psub.add_parser("show", help="print the policy in force (after all layers) as JSON")
    show.add_argument("--policy", metavar="FILE", help="use FILE instead of the machine policy")
    show.set_defaults(func=run_show)

    hs = psub.add_parser(
        "hash-secret",
        help="hash the IT credential for agent.it_credential_hash",
        description="Asks for the secret twice (or reads one line from stdin with --stdin) and "
        "prints the salted scrypt hash to put into agent.it_credential_hash of the machine or "
        "central policy. The secret itself is never stored.",
    )
    hs.add_argument("--stdin", action="store_true", help="read the secret from standard input")
    hs.set_defaults(func=run_hash_secret)


def run_check(args: argparse.Namespace) -> int:
    from guard.policy.explain import explain
    from guard.scan.detectors import TYPES

    path: Path = args.file
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot be read: {exc}", file=sys.stderr)
        return 1
    problems = explain(text, layer=not args.standalone, known_types=TYPES)
    if not problems:
        print(f"{path}: OK")
        return 0
    for problem in problems:
        print(f"{path}:{problem}")
    print(f"{path}: {len(problems)} problem(s); the agent would keep its last good policy",
          file=sys.stderr)
    return 1


def run_show(args: argparse.Namespace) -> int:
    from guard.policy.store import PolicyStore

    store = PolicyStore(override_file=args.policy)
    policy = store.reload()
    for r in store.rejections:
        print(f"rejected: {r.source}: {r.reason}", file=sys.stderr)
    print(json.dumps(policy.model_dump(mode="json"), ensure_ascii=False, indent=2))
    return 1 if store.rejections else 0


def run_hash_secret(args: argparse.Namespace) -> int:
    from guard.credentials import hash_secret

    if args.stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = getpass.getpass("IT secret: ")
        if getpass.getpass("again: ") != secret:
            print("the two entries differ; nothing printed", file=sys.stderr)
            return 1
    if len(secret) < 8:
        print("the secret must have at least 8 characters", file=sys.stderr)
        return 1
    print(hash_secret(secret))
    return 0
