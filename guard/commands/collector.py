"""`teller-guard collector`: run the reference central endpoint (enrolment, events, dashboard)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

ENV_ENROLL_TOKEN = "TELLER_GUARD_ENROLL_TOKEN"
ENV_ADMIN_TOKEN = "TELLER_GUARD_ADMIN_TOKEN"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "collector",
        help="run the central collector (enrolment, signed events, policy, dashboard)",
        description="Run the reference collector. Tokens come from a file (--enroll-token-file, "
        f"--admin-token-file) or the environment ({ENV_ENROLL_TOKEN}, {ENV_ADMIN_TOKEN}), never "
        "the command line (visible to every user in ps); a missing one is generated and printed "
        "once. Tokens need at least 16 random characters.",
    )
    p.add_argument("--db", metavar="URL",
                   help="SQLAlchemy URL: sqlite:///path.db (default: collector.db in the data "
                        "directory) or postgresql+psycopg://user:pw@host/db")
    p.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:8470",
                   help="address to serve on (default 127.0.0.1:8470)")
    p.add_argument("--enroll-token-file", metavar="FILE", type=Path,
                   help="file holding the token IT gives to devices to enrol")
    p.add_argument("--admin-token-file", metavar="FILE", type=Path,
                   help="file holding the bearer token for the query API and the dashboard")
    # refused with a message saying how instead (a token in argv is visible in ps)
    p.add_argument("--enroll-token", metavar="T", help=argparse.SUPPRESS)
    p.add_argument("--admin-token", metavar="T", help=argparse.SUPPRESS)
    p.add_argument("--key-file", metavar="FILE", type=Path,
                   help="server key that encrypts device keys at rest (default: <db>.key beside "
                        "a SQLite file, else collector.key in the data directory; or "
                        "TELLER_GUARD_COLLECTOR_KEY); keep it out of database backups")
    p.add_argument("--policy", metavar="FILE", type=Path,
                   help="policy TOML served to agents (default: the packaged policy.toml)")
    p.add_argument("--syslog", metavar="URL",
                   help="forward every stored event to a SIEM: tcp://host:port or tls://host:port")
    p.add_argument("--syslog-ca", metavar="FILE",
                   help="CA bundle that signs the SIEM's TLS certificate (default: system store)")
    p.add_argument("--heartbeat-window", metavar="SECONDS", type=int, default=900,
                   help="a terminal without a heartbeat for this long is listed as silent")
    p.add_argument("--max-body", metavar="BYTES", type=int, default=4 * 1024 * 1024,
                   help="largest event batch accepted, compressed or not (default 4 MiB)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate chain")
    p.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert")
    p.set_defaults(func=run)


class TokenSourceError(Exception):
    """A token was given where others can read it, or its file cannot be read."""


def _token(args: argparse.Namespace, name: str, env: str) -> str | None:
    flag = f"--{name}-token"
    if getattr(args, f"{name}_token") is not None:
        raise TokenSourceError(f"{flag} on the command line is refused (every user sees it in "
                               f"ps): put it in a file readable only by the collector's user "
                               f"and give {flag}-file FILE, or set {env}")
    path: Path | None = getattr(args, f"{name}_token_file")
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenSourceError(f"{flag}-file {path}: {getattr(exc, 'strerror', None) or exc}"
                                   ) from None
        if not token:
            raise TokenSourceError(f"{flag}-file {path} is empty")
        return token
    return os.environ.get(env) or None


def _default_key_file(db_url: str) -> Path | None:
    """None for a SQLite file (its key sits beside it); else `collector.key` in the data
    directory, shared by the collector processes of this machine."""
    if db_url.startswith("sqlite"):
        return None
    from guard import paths

    return paths.data_dir() / "collector.key"


def run(args: argparse.Namespace) -> int:
    from guard.collector.app import Settings, WeakTokenError, check_token, create_app, new_token
    from guard.collector.keywrap import KeyFileError
    from guard.collector.limits import limit_log_volume
    from guard.collector.serve import ServeError, check_tls, config, parse_listen, run_foreground
    from guard.collector.siem import SiemError, SyslogForwarder
    from guard.collector.store import StoreKeyError, StoreUnavailable

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limit_log_volume()
    log = logging.getLogger("guard.collector")
    try:
        host, port = parse_listen(args.listen)
        check_tls(args.tls_cert, args.tls_key)
        given_enroll = _token(args, "enroll", ENV_ENROLL_TOKEN)
        given_admin = _token(args, "admin", ENV_ADMIN_TOKEN)
        for what, token in (("enrolment", given_enroll), ("admin", given_admin)):
            if token is not None:
                check_token(what, token)
    except (ServeError, TokenSourceError, WeakTokenError) as exc:
        print(f"teller-guard collector: {exc}", file=sys.stderr)
        return 2
    if args.policy is not None and not args.policy.is_file():
        print(f"teller-guard collector: --policy {args.policy}: no such file", file=sys.stderr)
        return 2
    db = args.db
    if not db:
        from guard.paths import data_dir

        db = f"sqlite:///{data_dir() / 'collector.db'}"
    forwarder = None
    if args.syslog:
        try:
            forwarder = SyslogForwarder.from_url(args.syslog, ca_file=args.syslog_ca)
        except SiemError as exc:
            print(f"teller-guard collector: {exc}", file=sys.stderr)
            return 2
    enroll_token = given_enroll or new_token()
    admin_token = given_admin or new_token()
    if not given_enroll:
        print(f"enrolment token (give it to IT, set {ENV_ENROLL_TOKEN} to keep one): "
              f"{enroll_token}", file=sys.stderr)
    if not given_admin:
        print(f"admin token (dashboard and query API, set {ENV_ADMIN_TOKEN} to keep one): "
              f"{admin_token}", file=sys.stderr)
    settings = Settings(
        db_url=db,
        enroll_token=enroll_token,
        admin_token=admin_token,
        policy_file=args.policy,
        max_body_bytes=args.max_body,
        heartbeat_window_s=args.heartbeat_window,
        key_file=args.key_file or _default_key_file(db),
    )
    try:
        app = create_app(settings, forwarder=forwarder)
    except (ValueError, StoreUnavailable, StoreKeyError, KeyFileError) as exc:
        print(f"teller-guard collector: {exc}", file=sys.stderr)
        return 2
    scheme = "https" if args.tls_cert else "http"
    log.info("collector on %s://%s:%d (dashboard at /), database %s", scheme, host, port,
             _safe_url(db))
    try:
        run_foreground(config(app, host, port, tls_cert=args.tls_cert, tls_key=args.tls_key))
    except ServeError as exc:
        print(f"teller-guard collector: {exc}", file=sys.stderr)
        return 1
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # only for the log line; the store reports bad URLs itself
        return "<unparsable URL>"
