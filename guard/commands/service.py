"""`teller-guard service`: run the machine service in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from guard.commands import service_setup

EXIT_STOPPED = 0  # stopped on SIGTERM/SIGINT, cleanly
EXIT_FAILED = 1  # failed while running
EXIT_CONFIG = 2  # cannot start as configured (option, data directory, socket, endpoint)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "service",
        help="run the machine service (journal, shipper, policy, local channel for agents)",
        description="Run the machine service in the foreground until SIGTERM or SIGINT (systemd "
        "runs it as root). It journals the events session agents hand over on a Unix socket, "
        "ships them to the collector (--endpoint, TELLER_GUARD_ENDPOINT or the policy's "
        "agent.endpoint; an embedded local collector when none is set) and downloads the "
        "central policy. SIGHUP re-reads the policy. On Windows, started by the Service Control "
        "Manager, it runs as the TellerGuard service (STOP and SHUTDOWN stop it). Logs go to "
        "stderr. Exit codes: 0 stopped "
        "on request, 1 failed while running, 2 cannot start as configured.",
    )
    p.add_argument("--data-dir", type=Path, metavar="D",
                   help="data directory (default: TELLER_GUARD_DATA_DIR or the machine's)")
    p.add_argument("--socket", type=Path, metavar="PATH",
                   help="Unix socket for session agents (default: TELLER_GUARD_SOCKET, "
                        "/run/teller-guard/agent.sock as root, else agent.sock in the data dir)")
    p.add_argument("--endpoint", metavar="URL",
                   help="collector base URL (default: TELLER_GUARD_ENDPOINT or the policy's)")
    p.add_argument("--enroll-token-file", metavar="FILE", type=Path, default=None,
                   help="file holding IT's enrolment token: enrol at the endpoint on start if "
                        "this PC is not enrolled there (default: TELLER_GUARD_ENROLL_TOKEN, "
                        "then the installer's: enrol-token in the data directory on Linux, "
                        "the MSI's registry value on Windows; deleted once enrolled)")
    # A token on the command line is visible to every user in ps: refused, with the way to go.
    p.add_argument("--enroll-token", metavar="T", default=None, help=argparse.SUPPRESS)
    p.add_argument("--policy", metavar="FILE",
                   help="policy file in place of the machine policy (tests, demos)")
    p.add_argument("--ca-bundle", metavar="FILE",
                   help="CA bundle that signs the collector's certificate (default: OS store)")
    p.add_argument("--allow-uid", type=int, action="append", metavar="UID",
                   help="accept events only from these users (repeatable; default: any local "
                        "user, each bound to its own login)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")
    p.set_defaults(func=run)
    # Set-up steps the installer runs (root), e.g. `teller-guard service setup-cups`.
    service_setup.register(p.add_subparsers(dest="setup", metavar="SETUP", required=False))


def sd_notify(message: str) -> bool:
    """Tell systemd (Type=notify) about our state: ``READY=1``, ``STOPPING=1``, ``STATUS=...``.

    A no-op (False) when not started by systemd (no NOTIFY_SOCKET).
    """
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or sys.platform == "win32":
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode("utf-8"))
    except OSError as exc:
        logging.getLogger("guard.app.machine").warning("systemd notification failed: %s", exc)
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from guard import paths
    from guard.app.enrol_token import (
        TOKEN_FILE_NAME,
        FileToken,
        OneTimeToken,
        Service,
        TokenStore,
    )
    from guard.app.machine import (
        ENV_ENROLL_TOKEN,
        ChannelFactory,
        MachineService,
        ServiceError,
    )
    from guard.app.machine import ServiceSettings as Settings
    from guard.ipc.agent_side import ENV_SOCKET
    from guard.ipc.unix import default_socket_path

    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("guard.app.machine")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per batch is noise
    try:
        data_dir = Path(args.data_dir) if args.data_dir is not None else paths.data_dir()
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"teller-guard service: cannot use the data directory: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.enroll_token is not None:
        print("teller-guard service: an enrolment token on the command line is visible to every "
              f"user (ps): give --enroll-token-file FILE or set {ENV_ENROLL_TOKEN}",
              file=sys.stderr)
        return EXIT_CONFIG
    token = os.environ.get(ENV_ENROLL_TOKEN) or None
    if args.enroll_token_file is not None:
        try:
            token = args.enroll_token_file.read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            print(f"teller-guard service: cannot read the enrolment token file: {exc}",
                  file=sys.stderr)
            return EXIT_CONFIG
    # The installer's token (the MSI's registry value, the .deb's root-only file in the data
    # directory), deleted once this PC is enrolled; a token given here is the caller's to keep.
    installer_token: TokenStore | None = None
    if token is None:
        if sys.platform == "win32":
            from guard.app.winservice import RegistryToken

            installer_token = RegistryToken()
        else:
            installer_token = FileToken(data_dir / TOKEN_FILE_NAME)
        try:
            token = installer_token.read()
        except OSError as exc:  # not SYSTEM/root (a console run), or a damaged value
            log.warning("cannot read the enrolment token the installer left: %s", exc)

    def with_token(service: MachineService) -> Service:
        """The service, deleting the installer's token once it has enrolled with it."""
        if installer_token is None or token is None:
            return service
        return OneTimeToken(service, installer_token)

    socket_path = args.socket or (Path(os.environ[ENV_SOCKET]) if os.environ.get(ENV_SOCKET)
                                  else default_socket_path())
    settings = Settings(
        data_dir=data_dir,
        socket_path=socket_path,
        endpoint=args.endpoint,
        enroll_token=token,
        policy_file=args.policy,
        ca_bundle=args.ca_bundle,
        allowed_uids=frozenset(args.allow_uid) if args.allow_uid else None,
    )

    from guard import platforms
    from guard.watchers.print_hold import print_channel
    from guard.watchers.usb import usb_channel

    # The channels the service enforces itself (both platforms have a backend for each).
    channels: list[ChannelFactory] = [print_channel(platforms.print_spooler),
                                      usb_channel(platforms.removable_volumes)]

    if sys.platform == "win32":
        from guard.app.winservice import NotUnderScm, ServiceHost

        host = ServiceHost(lambda: with_token(MachineService(settings, channels=channels)),
                           start_errors=(ServiceError,))
        try:
            return host.run()  # started by the Service Control Manager: it owns the lifetime
        except NotUnderScm:
            log.info("not started by the Service Control Manager; running in the foreground")

    stop = threading.Event()
    reload = threading.Event()

    def on_stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    def on_hup(_signum: int, _frame: object) -> None:
        reload.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    if sys.platform != "win32":
        signal.signal(signal.SIGHUP, on_hup)

    service = MachineService(settings, channels=channels)
    runner = with_token(service)
    try:
        runner.start()
    except ServiceError as exc:
        print(f"teller-guard service: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    sd_notify("READY=1\nSTATUS=journaling; agents may connect")
    log.info("ready (pid %d)", os.getpid())
    try:
        while not stop.wait(1.0):
            if reload.is_set():
                reload.clear()
                log.info("SIGHUP: re-reading the policy")
                service.reload_policy()
    except Exception:
        log.exception("service failed")
        sd_notify("STOPPING=1")
        runner.stop()
        return EXIT_FAILED
    sd_notify("STOPPING=1")
    runner.stop()
    return EXIT_STOPPED
