"""``jfrog-rotator emulator`` (serve the bundled JFrog Access API emulator, docs/emulator.md) and
``demo`` (the daemon at work against it and an OpenBao dev server, docs/demo.md).

The emulator and the demo are imported when a command runs: they load ``cryptography``, which
other commands do not need at start-up (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from rotator.cli.errors import EXIT_OK, UsageError

MIN_DURATION = 6.0  # seconds: one rotation, its overlap and the revocation after it


def register_emulator_commands(commands: Any) -> None:
    emu = commands.add_parser(
        "emulator",
        help="run the JFrog Access API emulator (for tests and demos)",
        description="Serve a faithful emulator of the JFrog Access API on a loopback port until "
        "interrupted. The admin token is read from --admin-token-env (default "
        "JFROG_EMULATOR_ADMIN_TOKEN) or generated and printed once.",
    )
    emu.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    emu.add_argument("--port", type=_port, default=0, help="port (default: a free one)")
    emu.add_argument("--admin-token", help="use this string as the admin token (visible in 'ps'; "
                     "prefer --admin-token-env)")
    emu.add_argument("--admin-token-env", default="JFROG_EMULATOR_ADMIN_TOKEN",
                     help="environment variable holding the admin token")
    emu.set_defaults(handler=_cmd_emulator)

    demo = commands.add_parser(
        "demo", help="watch the daemon rotate tokens for ~20 s, against the emulator and OpenBao",
        description="Start the bundled JFrog emulator and an OpenBao dev server (when bao is installed, else the "
        "file store), write a demo config with second-scale schedules into a folder, and run `jfrog-rotator daemon` "
        "on it: each rotation, a consumer reading the secret twice a second, a renewal asked through Vault with a "
        "token that cannot read the secret, and an adopted hand-made secret, one line per event; then the status "
        "table, the metrics that moved and where the files are. Only loopback addresses; no token is printed. "
        "Everything it started is stopped by its PID, also on Ctrl-C. See docs/demo.md.",
        epilog="Exit codes: 0 every step was seen and no consumer read was dead; 1 otherwise (the last line says "
        "what was missing); 2 bad usage; 130 interrupted (Ctrl-C).")
    demo.add_argument("--duration", type=float, default=20.0, metavar="SECONDS",
                      help=f"how long the daemon runs (default 20, at least {MIN_DURATION:g})")
    demo.add_argument("--store", choices=("auto", "vault", "file"), default="auto",
                      help="auto (default): OpenBao when bao is installed, else the file store")
    demo.add_argument("--dir", metavar="DIR", help="folder for the config, logs and files (default: a new "
                      "temporary folder, kept at the end)")
    demo.add_argument("--json", action="store_true", help="one JSON object per event instead of text lines")
    demo.set_defaults(handler=_cmd_demo)


def _cmd_emulator(args: argparse.Namespace) -> int:
    from rotator.emulator import serve_forever

    token = args.admin_token or os.environ.get(args.admin_token_env) or None
    serve_forever(args.host, args.port, admin_token=token)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from rotator.cli.demo import DemoOptions, run_demo

    if not args.duration >= MIN_DURATION:
        raise UsageError(f"--duration must be at least {MIN_DURATION:g} seconds (one rotation, its overlap and "
                         f"the revocation after it), not {args.duration:g}")
    if args.store == "vault":
        from rotator.cli.demo.openbao import bao_binary

        try:
            bao_binary()
        except RuntimeError as exc:
            raise UsageError(f"--store vault: {exc}") from None
    return run_demo(DemoOptions(duration=args.duration, as_json=args.json, store=args.store, directory=args.dir))


def _port(text: str) -> int:
    """``--port``: a TCP port, 0 to 65535 (bind() would raise OverflowError: 'unexpected error')."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not a TCP port (0 to 65535)")
    return port
