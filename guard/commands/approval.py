"""`teller-guard approval-code`: IT issues a one-time approval code for one PC and one channel."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

ENV_ADMIN_TOKEN = "TELLER_GUARD_ADMIN_TOKEN"
CHANNELS = ("clipboard", "screen", "print", "usb", "file", "unlock")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "approval-code",
        help="issue a one-time approval (or unlock recovery) code for one PC (IT)",
        description="Ask the collector for a one-time code bound to one device, one channel and "
        "a short time window, for a teller whose supervisor is not at the counter. The teller "
        "types it in the supervisor dialog (channel of the blocked action) or on the lock "
        "overlay (channel 'unlock'); the PC checks it offline and accepts it once. The collector "
        "records every code it issues (its id, the issuer and the reason; never the code) and "
        "lists it on its dashboard's codes page until it is spent or expires. The admin "
        f"token is read from --token-file or {ENV_ADMIN_TOKEN}, never the command line.",
    )
    p.add_argument("--collector", required=True, metavar="URL",
                   help="the collector's base URL, e.g. https://guard.bank.example")
    p.add_argument("--device", required=True, metavar="ID",
                   help="the device id (the dashboard's device list, or `teller-guard events "
                        "status` on the PC)")
    p.add_argument("--channel", required=True, choices=CHANNELS,
                   help="what the code approves: a channel's blocked action, or 'unlock'")
    p.add_argument("--minutes", type=int, default=30,
                   help="how long the code stays valid (1-480, rounded up to 5 minutes; "
                        "default 30)")
    p.add_argument("--reason", default="", metavar="TEXT",
                   help="why the code is issued (recorded with it; no customer data)")
    p.add_argument("--issuer", metavar="NAME",
                   help="who issues it, recorded with the code (default: your login)")
    p.add_argument("--token-file", metavar="FILE", type=Path,
                   help=f"file holding the collector's admin token (or set {ENV_ADMIN_TOKEN})")
    p.add_argument("--ca-bundle", metavar="FILE",
                   help="CA bundle that signs the collector's certificate (default: OS store)")
    p.set_defaults(func=run)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        try:
            return str(args.token_file.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError) as exc:
            print(f"teller-guard approval-code: --token-file {args.token_file}: "
                  f"{getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            return None
    return os.environ.get(ENV_ADMIN_TOKEN, "").strip()


def run(args: argparse.Namespace) -> int:
    import httpx

    from guard.delivery.tls import CaBundleError, ssl_context

    token = _token(args)
    if token is None:
        return 2
    if not token:
        print(f"teller-guard approval-code: no admin token: give --token-file FILE or set "
              f"{ENV_ADMIN_TOKEN}", file=sys.stderr)
        return 2
    url = args.collector.rstrip("/") + "/api/v1/approval-codes"
    try:
        verify = ssl_context(args.ca_bundle)
        with httpx.Client(verify=verify, trust_env=True, timeout=15.0) as client:
            response = client.post(url, json={"device_id": args.device, "channel": args.channel,
                                              "minutes": args.minutes, "reason": args.reason,
                                              "issuer": _issuer(args)},
                                   headers={"Authorization": f"Bearer {token}"})
    except (httpx.HTTPError, CaBundleError) as exc:
        print(f"teller-guard approval-code: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "code" not in body:
        why = body.get("error") if isinstance(body, dict) else None
        print(f"teller-guard approval-code: the collector refused ({response.status_code}): "
              f"{why or response.text[:200]}", file=sys.stderr)
        return 1
    print(f"{body['grouped']}")
    print(f"one-time code for device {body['device_id']}, channel {body['channel']}, valid "
          f"about {body['valid_minutes']} minutes from now; it works once", file=sys.stderr)
    if body.get("recorded") is True:
        print(f"recorded at the collector as code #{body.get('id')} (issuer "
              f"{body.get('issuer', '')}); its use shows on the dashboard's codes page",
              file=sys.stderr)
    else:
        # an older collector: it issued the code without keeping any record of it
        print("warning: this code was NOT recorded by the collector (it predates recorded "
              "codes): write down the device, channel, time, your name and the reason in IT's "
              "own log, and upgrade the collector", file=sys.stderr)
    return 0


def _issuer(args: argparse.Namespace) -> str:
    if args.issuer:
        return str(args.issuer)[:128]
    try:
        return getpass.getuser()[:128]
    except (OSError, KeyError):  # no login name here: the collector notes the address
        return ""
