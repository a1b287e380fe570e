"""``jfrog-rotator emulator`` (serve the bundled JFrog Access API emulator) and ``demo`` (the
product on embedded defaults against it). See docs/emulator.md.

The emulator is imported when a command runs: it loads ``cryptography``, which other commands do
not need at start-up (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from rotator.cli.errors import EXIT_OK


def register_emulator_commands(commands: Any) -> None:
    emu = commands.add_parser(
        "emulator",
        help="run the JFrog Access API emulator (for tests and demos)",
        description="Serve a faithful emulator of the JFrog Access API on a loopback port until "
        "interrupted. The admin token is read from --admin-token-env (default "
        "JFROG_EMULATOR_ADMIN_TOKEN) or generated and printed once.",
    )
    emu.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    emu.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    emu.add_argument("--admin-token", help="use this string as the admin token (visible in 'ps'; "
                     "prefer --admin-token-env)")
    emu.add_argument("--admin-token-env", default="JFROG_EMULATOR_ADMIN_TOKEN",
                     help="environment variable holding the admin token")
    emu.set_defaults(handler=_cmd_emulator)

    demo = commands.add_parser("demo", help="run the product on embedded defaults against the emulator",
                               description="Start the bundled JFrog emulator on a free loopback port and "
                               "show the commands working. Nothing leaves the machine.")
    demo.set_defaults(handler=_cmd_demo)


def _cmd_emulator(args: argparse.Namespace) -> int:
    from rotator.emulator import serve_forever

    token = args.admin_token or os.environ.get(args.admin_token_env) or None
    serve_forever(args.host, args.port, admin_token=token)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from rotator.cli.demo import run_demo

    return run_demo()
