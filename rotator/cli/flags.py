"""The argument parser and the flags several commands share: jf's connection flags and booleans,
and the rotator's ``--config``.

jf's boolean flags take no separate value (``--refreshable alice`` keeps alice as an argument) but
accept ``--flag=false``; jf also tells "set to false" from "not set" (``--grant-admin``). The
connection flags and how a server is chosen are described in docs/jf-atc.md.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from rotator.cli.errors import UsageError

BOOL_FLAGS = ("--grant-admin", "--refreshable", "--reference", "--insecure-tls")


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose errors are a :class:`UsageError` (one line, exit 2), not an exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def normalise_bool_flags(argv: list[str]) -> list[str]:
    """``--refreshable`` becomes ``--refreshable=true``, so a bare flag never swallows the next argument."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        out.append(f"{arg}=true" if arg in BOOL_FLAGS else arg)
    return out


def go_bool(text: str) -> bool:
    """Go ``strconv.ParseBool``."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE", help="the YAML config file")


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "connection",
        "Like the JFrog CLI: these flags are used exclusively when any is given; otherwise the "
        "server comes from --server-id, $JFROG_CLI_SERVER_ID or the default server of "
        "$JFROG_CLI_HOME_DIR/jfrog-cli.conf.v6 (default ~/.jfrog).",
    )
    group.add_argument("--url", help="JFrog Platform URL, e.g. https://acme.jfrog.io")
    group.add_argument("--user", help="JFrog username")
    group.add_argument("--password", help="JFrog password (token creation needs an access token)")
    group.add_argument("--access-token", help="JFrog access token or reference token")
    group.add_argument("--server-id", help="server ID configured with 'jf config'")
    group.add_argument("--ssh-key-path", help="SSH key file path")
    group.add_argument("--ssh-passphrase", help="SSH key passphrase")
    group.add_argument("--client-cert-path", help="client certificate file (PEM) for mTLS")
    group.add_argument("--client-cert-key-path", help="private key of the client certificate (PEM)")
    group.add_argument("--ca-bundle", help="CA bundle (PEM) to verify the server with; default: system store "
                       "or $REQUESTS_CA_BUNDLE")
    group.add_argument("--insecure-tls", type=go_bool, nargs="?", const=True, default=False, metavar="BOOL",
                       help="skip TLS certificate verification (testing only; a warning is logged)")
