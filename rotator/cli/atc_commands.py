"""``jfrog-rotator token create | list | revoke`` and the ``atc`` alias: the ``jf atc`` drop-in.

Same flags, same request body, same stdout, error texts and exit codes as the JFrog CLI
(docs/jf-atc.md). The calls themselves are in :mod:`rotator.cli.token_commands`, the Go-exact
rendering in :mod:`rotator.cli.jf_output`; both are imported when a command runs, so ``--help``
does not load requests (start-up time, bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rotator.cli.errors import EXIT_OK, EXIT_REMOTE, UsageError
from rotator.cli.flags import CommandParser, add_connection_flags, go_bool

ATC_DESCRIPTION = """\
Create a JFrog access token, like 'jf access-token-create' (alias 'jf atc'): same flags, same
request body and the same output. By default a user-scoped identity token is created for the
authenticating user, unless --groups and/or --grant-admin (or --scope) are given."""


def register_token_commands(commands: Any) -> None:
    token = commands.add_parser("token", help="create, list and revoke JFrog access tokens (jf atc drop-in)",
                                description="Create, list and revoke JFrog access tokens.")
    sub = token.add_subparsers(title="token commands", metavar="COMMAND", parser_class=CommandParser)
    _add_atc_parser(sub, "create")
    _add_atc_parser(commands, "atc", help_text="alias of 'token create' (like 'jf atc')")

    listing = sub.add_parser("list", help="list tokens (GET /access/api/v1/tokens)",
                             description="List access tokens. Admins see all tokens, others only their own.")
    add_connection_flags(listing)
    listing.add_argument("--description", help="filter by description; a trailing * matches a prefix")
    listing.add_argument("--username", help="filter by username")
    listing.add_argument("--refreshable", type=go_bool, nargs="?", const=True, default=None, metavar="BOOL",
                         help="only refreshable (true) or non-refreshable (false) tokens")
    listing.add_argument("--order-by", choices=("created", "token_id", "owner", "subject", "expiry"))
    listing.add_argument("--descending", action="store_true", help="descending order")
    listing.add_argument("--format", choices=("json", "table"), default="json")
    listing.set_defaults(handler=_cmd_token_list)

    revoke = sub.add_parser("revoke", help="revoke a token by id (DELETE /access/api/v1/tokens/{id})",
                            description="Revoke a token by its id. Revoking an already revoked token succeeds.")
    add_connection_flags(revoke)
    revoke.add_argument("token_id", metavar="TOKEN_ID")
    revoke.set_defaults(handler=_cmd_token_revoke)


def _add_atc_parser(commands: Any, name: str, help_text: str | None = None) -> None:
    atc = commands.add_parser(
        name,
        help=help_text or "create an access token (like 'jf atc')",
        description=ATC_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [USERNAME] [options]",
    )
    atc.add_argument("username", nargs="*", metavar="USERNAME",
                     help="user the token is for; default: the configured user, else the token's own user")
    add_connection_flags(atc)
    group = atc.add_argument_group("token")
    group.add_argument("--project", help="project key, for a project-scoped token")
    group.add_argument("--grant-admin", type=go_bool, nargs="?", const=True, default=None, metavar="BOOL",
                       help="grant admin privileges (scope applied-permissions/admin)")
    group.add_argument("--groups", help="comma-separated groups the token gets (applied-permissions/groups:...)")
    group.add_argument("--scope", help="the scope, verbatim; excludes --groups and --grant-admin")
    group.add_argument("--expiry", metavar="SECONDS",
                       help="seconds until the token expires; 0 = never (admins only); default: the platform's")
    group.add_argument("--refreshable", type=go_bool, nargs="?", const=True, default=False, metavar="BOOL",
                       help="also return a refresh token")
    group.add_argument("--description", help="free text, up to 1024 characters")
    group.add_argument("--audience", help="space-separated service IDs that accept the token, e.g. 'jfrt@*'")
    group.add_argument("--reference", type=go_bool, nargs="?", const=True, default=False, metavar="BOOL",
                       help="also return a 64-character reference token")
    atc.add_argument("--format", choices=("json", "table"), default=None,
                     help="output format (default json); an explicit --format json also prints HTTP "
                     "errors as JSON on stdout, like jf")
    atc.set_defaults(handler=_cmd_token_create)


def _connection(args: argparse.Namespace) -> Any:
    from rotator.jfrog.servers import ConnectionFlags

    return ConnectionFlags(
        url=args.url,
        user=args.user,
        password=args.password,
        access_token=args.access_token,
        ssh_key_path=args.ssh_key_path,
        ssh_passphrase=args.ssh_passphrase,
        client_cert_path=args.client_cert_path,
        client_cert_key_path=args.client_cert_key_path,
        server_id=args.server_id,
    )


def _tls(args: argparse.Namespace) -> Any:
    from rotator.cli.token_commands import TLSOptions

    return TLSOptions(ca_bundle=args.ca_bundle, insecure=bool(args.insecure_tls))


def _json_errors_requested(args: argparse.Namespace) -> bool:
    """jf's JSON error mode: ``--format json`` given explicitly, or JFROG_CLI_ERROR_OUTPUT_FORMAT=json."""
    return args.format == "json" or os.environ.get("JFROG_CLI_ERROR_OUTPUT_FORMAT", "").lower() == "json"


def _cmd_token_create(args: argparse.Namespace) -> int:
    from rotator.cli.jf_output import render_http_error_json, render_token_json, render_token_table
    from rotator.cli.token_commands import create_token
    from rotator.core.token_spec import TokenSpec
    from rotator.jfrog.errors import JFrogHTTPError

    if len(args.username) > 1:
        raise UsageError(f"Wrong number of arguments ({len(args.username)}).")
    spec = TokenSpec(
        project=args.project,
        scope=args.scope,
        groups=args.groups,
        grant_admin=args.grant_admin,
        refreshable=bool(args.refreshable),
        description=args.description,
        audience=args.audience,
        reference=bool(args.reference),
    )
    try:
        response = create_token(
            _connection(args),
            spec,
            username_arg=args.username[0] if args.username else None,
            expiry_text=args.expiry,
            tls=_tls(args),
        )
    except JFrogHTTPError as exc:
        if _json_errors_requested(args):
            print(render_http_error_json(exc.status, exc.reason, exc.body))
            return EXIT_REMOTE
        raise
    render = render_token_table if args.format == "table" else render_token_json
    sys.stdout.write(render(response.raw) + ("" if args.format == "table" else "\n"))
    return EXIT_OK


def _cmd_token_list(args: argparse.Namespace) -> int:
    from rotator.cli.jf_output import go_json, go_value, tabwrite
    from rotator.cli.token_commands import list_tokens

    tokens = list_tokens(
        _connection(args),
        _tls(args),
        description=args.description,
        username=args.username,
        refreshable=args.refreshable,
        order_by=args.order_by,
        descending_order=True if args.descending else None,
    )
    if args.format == "json":
        print(go_json({"tokens": tokens}))
        return EXIT_OK
    columns = ("token_id", "subject", "issued_at", "expiry", "refreshable", "description")
    rows = [tuple(c.upper() for c in columns)]
    rows += [tuple(_list_cell(t, c, go_value) for c in columns) for t in tokens]
    sys.stdout.write(tabwrite(rows))
    return EXIT_OK


def _list_cell(token: dict[str, Any], column: str, go_value: Callable[[Any], str]) -> str:
    value = token.get(column)
    if value is None:
        return "-"
    if column in ("issued_at", "expiry") and isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))
    return go_value(value)


def _cmd_token_revoke(args: argparse.Namespace) -> int:
    from rotator.cli.token_commands import revoke_token

    if revoke_token(_connection(args), args.token_id, _tls(args)):
        print(f"Token {args.token_id} revoked.")
    else:
        print(f"Token {args.token_id} was already revoked or does not exist (204).")
    return EXIT_OK
