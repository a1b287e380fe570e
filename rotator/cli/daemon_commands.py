"""``jfrog-rotator daemon`` (rotate on schedule until stopped) and ``trigger`` (ask a running daemon
for a rotation through the target's Vault store).

See docs/daemon.md and docs/vault-triggers.md. The daemon and the trigger machinery are imported
when a command runs, so other commands do not load APScheduler (start-up time, bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any

from rotator.cli.errors import EXIT_OK, UsageError
from rotator.cli.flags import add_config_flag
from rotator.core.redact import install_log_redaction


def register_daemon_commands(commands: Any) -> None:
    trigger = commands.add_parser(
        "trigger", help="ask for a rotation through the target's Vault store, with your own token",
        description="Request a rotation of TARGET the way Vault-triggered renewal expects: set "
        "rotate_requested=true in the secret's custom_metadata (or, with --request, write a request object "
        "under the request prefix). Uses YOUR Vault token from $VAULT_TOKEN or $BAO_TOKEN, not the daemon's; it "
        "needs patch on <mount>/metadata/<path> (or create on <mount>/<request_prefix>/<target>/*) and no "
        "right to read the token. A running daemon rotates on its next reconcile pass.")
    add_config_flag(trigger)
    trigger.add_argument("target", metavar="TARGET")
    trigger.add_argument("--reason", default="requested with jfrog-rotator trigger",
                         help="recorded with the request (shows up as last_reason)")
    trigger.add_argument("--request", action="store_true",
                         help="write a request object instead of setting the metadata flag")
    trigger.set_defaults(handler=_cmd_trigger)

    daemon = commands.add_parser(
        "daemon", help="rotate every target on its schedule until stopped",
        description="Run the rotation scheduler: each target is rotated when its schedule says it is due "
        "(the store is the truth, so any number of daemons may share a config). SIGTERM/SIGINT finish "
        "in-flight rotations and exit 0; SIGHUP reloads the config (a bad config is refused and the running "
        "one kept). With --listen (or daemon.listen in the config) it serves /healthz, /readyz, /metrics "
        "and /status. With daemon.leader in the config the replicas elect one leader through a lease in the "
        "store, and only the leader rotates, reconciles and sweeps.")
    add_config_flag(daemon)
    daemon.add_argument("--listen", metavar="HOST:PORT", help="operations endpoint address (default: off, or "
                        "daemon.listen of the config); use 127.0.0.1 unless something else must reach it")
    daemon.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="default: json when stderr is not a terminal, text when it is")
    daemon.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="how long a stop waits for rotations in flight (default 30)")
    daemon.add_argument("--replica-id", metavar="NAME", default=None,
                        help="this replica's name in the leader lease, logs and metrics (with daemon.leader; "
                             "default: daemon.leader.replica_id, else the host name)")
    daemon.set_defaults(handler=_cmd_daemon)


def _cmd_trigger(args: argparse.Namespace) -> int:
    from rotator.config import load_config
    from rotator.triggers.request import caller_token, request_rotation

    config = load_config(args.config)
    try:
        result = request_rotation(config, args.target, reason=args.reason, token=caller_token(),
                                  as_request=args.request)
    finally:
        config.close()
    what = "request written to" if result.how == "request" else "rotate_requested=true set on"
    print(f"{result.target}: rotation requested by {result.requested_by}: {what} {result.where}")
    return EXIT_OK


def _cmd_daemon(args: argparse.Namespace) -> int:
    from rotator.core.logs import setup_logging
    from rotator.daemon import RotationDaemon
    from rotator.ops.server import parse_listen

    if args.listen:
        try:
            parse_listen(args.listen)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not 0 <= args.shutdown_timeout < float("inf"):
        raise UsageError(f"--shutdown-timeout must be 0 or more seconds, not {args.shutdown_timeout:g}")
    # Built first, so a config error is reported like any other command's, before logging moves.
    if args.replica_id is not None and not re.fullmatch(r"[A-Za-z0-9._:@-]{1,64}", args.replica_id):
        raise UsageError(f"--replica-id: {args.replica_id!r} is not valid: letters, digits and . _ : @ -, at most 64")
    daemon = RotationDaemon(args.config, listen=args.listen, shutdown_timeout=args.shutdown_timeout,
                            replica_id=args.replica_id)
    setup_logging(args.log_format or daemon.config.daemon.log_format,
                  level=logging.DEBUG if args.debug else logging.INFO)
    install_log_redaction()
    daemon.start()
    return daemon.run_forever()
