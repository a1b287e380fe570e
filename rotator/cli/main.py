"""``main()``: parse the command line, run the command's handler, turn any failure into one line
on stderr and an exit code (:mod:`rotator.cli.errors`).

Each ``*_commands`` module registers its commands on the parser and holds their handlers; the
order of :data:`COMMANDS` is the order ``--help`` lists them in.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from rotator import __version__
from rotator.cli.atc_commands import register_token_commands
from rotator.cli.config_commands import register_config_commands
from rotator.cli.daemon_commands import register_daemon_commands
from rotator.cli.emulator_commands import register_emulator_commands
from rotator.cli.errors import EXIT_OK, EXIT_REMOTE, EXIT_USAGE, exit_code_for, print_error
from rotator.cli.flags import CommandParser, normalise_bool_flags
from rotator.cli.rotation_commands import register_rotation_commands
from rotator.core.redact import install_log_redaction, scrub

COMMANDS: list[Callable[[Any], None]] = [register_token_commands, register_rotation_commands,
                                         register_config_commands, register_daemon_commands,
                                         register_emulator_commands]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``jfrog-rotator`` console script: ``sys.argv`` unless ``argv`` is given; returns the exit code."""
    return run(list(sys.argv[1:] if argv is None else argv))


def run(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    install_log_redaction()
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(normalise_bool_flags(argv))
        if args.debug:
            logging.getLogger().setLevel(logging.DEBUG)
        if args.handler is None:  # a command group alone ('jfrog-rotator token'): say what it holds
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return int(args.handler(args) or EXIT_OK)
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
    except Exception as exc:  # every error ends here: one line, right exit code, no secret
        code = exit_code_for(exc)
        if code is None:
            print_error(f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
            code = EXIT_REMOTE
        else:
            print_error(str(exc))
        if debug:
            sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
        return code


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="jfrog-rotator",
        description="Keep JFrog Platform access tokens fresh in HashiCorp Vault and AWS Secrets Manager.",
        epilog="Exit codes: 0 ok, 1 a remote call failed, 2 bad usage, config or input.",
    )
    parser.add_argument("--version", action="version", version=f"jfrog-rotator {__version__}")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks (secrets stay masked)")
    parser.set_defaults(handler=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=CommandParser)
    for register_commands in COMMANDS:
        register_commands(commands)
    return parser
