"""``jfrog-rotator``: the command line. Every command maps to one library call.

Exit codes: 0 ok; 1 a remote call failed; 2 bad usage, bad config or bad input. Expected errors
print one line on stderr (``HH:MM:SS [Error] <message>`` like the JFrog CLI) and no traceback;
``--debug`` adds one (scrubbed of secrets).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from rotator import __version__
from rotator.core.redact import install_log_redaction, scrub

EXIT_OK, EXIT_REMOTE, EXIT_USAGE = 0, 1, 2

# jf's boolean flags take no separate value (`--refreshable alice` keeps alice as an argument)
# but accept `--flag=false`; jf also tells "set to false" from "not set" (--grant-admin).
BOOL_FLAGS = ("--grant-admin", "--refreshable", "--reference", "--insecure-tls")


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def main(argv: Sequence[str] | None = None) -> int:
    return run(list(sys.argv[1:] if argv is None else argv))


def run(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    install_log_redaction()
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(_normalise_bool_flags(argv))
        if args.debug:
            logging.getLogger().setLevel(logging.DEBUG)
        if not getattr(args, "handler", None):
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


def exit_code_for(exc: BaseException) -> int | None:
    """1 for remote failures, 2 for usage/config/input errors, None for the unexpected."""
    from backends.base import BackendError
    from rotator.jfrog.errors import JFrogConfigError, JFrogError
    from rotator.core.options import ConfigError
    from rotator.core.record import RecordError
    from rotator.core.token_spec import SpecError

    if isinstance(exc, (UsageError, SpecError, JFrogConfigError, ConfigError)):
        return EXIT_USAGE
    if isinstance(exc, (JFrogError, BackendError, RecordError)):
        return EXIT_REMOTE
    return None


def print_error(message: str) -> None:
    """``HH:MM:SS [Error] message`` on stderr; ``JFROG_CLI_LOG_TIMESTAMP`` as in the JFrog CLI."""
    sys.stderr.write(f"{_timestamp()}[Error] {scrub(message)}\n")
    sys.stderr.flush()


def print_info(message: str) -> None:
    sys.stderr.write(f"{_timestamp()}[Info] {scrub(message)}\n")


def _timestamp() -> str:
    mode = os.environ.get("JFROG_CLI_LOG_TIMESTAMP", "TIME").upper()
    if mode == "OFF":
        return ""
    if mode == "DATE_AND_TIME":
        return time.strftime("%Y/%m/%d %H:%M:%S ")
    return time.strftime("%H:%M:%S ")


def _normalise_bool_flags(argv: list[str]) -> list[str]:
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


# ---------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jfrog-rotator",
        description="Keep JFrog Platform access tokens fresh in HashiCorp Vault and AWS Secrets Manager.",
        epilog="Exit codes: 0 ok, 1 a remote call failed, 2 bad usage, config or input.",
    )
    parser.add_argument("--version", action="version", version=f"jfrog-rotator {__version__}")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks (secrets stay masked)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for register_command in COMMANDS:
        register_command(commands)
    return parser


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
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


# -- token create / atc -----------------------------------------------------------------------

ATC_DESCRIPTION = """\
Create a JFrog access token, like 'jf access-token-create' (alias 'jf atc'): same flags, same
request body and the same output. By default a user-scoped identity token is created for the
authenticating user, unless --groups and/or --grant-admin (or --scope) are given."""


def _register_token(commands: Any) -> None:
    token = commands.add_parser("token", help="create, list and revoke JFrog access tokens (jf atc drop-in)",
                                description="Create, list and revoke JFrog access tokens.")
    sub = token.add_subparsers(title="token commands", metavar="COMMAND", parser_class=_Parser)
    _add_atc_parser(sub, "create")
    _add_atc_parser(commands, "atc", help_text="alias of 'token create' (like 'jf atc')")

    listing = sub.add_parser("list", help="list tokens (GET /access/api/v1/tokens)",
                             description="List access tokens. Admins see all tokens, others only their own.")
    _add_connection_flags(listing)
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
    _add_connection_flags(revoke)
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
    _add_connection_flags(atc)
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


def _json_errors_requested(args: argparse.Namespace) -> bool:
    """jf's JSON error mode: ``--format json`` given explicitly, or JFROG_CLI_ERROR_OUTPUT_FORMAT=json."""
    return args.format == "json" or os.environ.get("JFROG_CLI_ERROR_OUTPUT_FORMAT", "").lower() == "json"


def _cmd_token_create(args: argparse.Namespace) -> int:
    from rotator.cli.jf_output import render_http_error_json, render_token_json, render_token_table
    from rotator.jfrog.errors import JFrogHTTPError
    from rotator.core.token_spec import TokenSpec
    from rotator.cli.token_commands import create_token

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


# -- emulator ---------------------------------------------------------------------------------


def _register_emulator(commands: Any) -> None:
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


def _cmd_emulator(args: argparse.Namespace) -> int:
    from rotator.emulator import serve_forever

    token = args.admin_token or os.environ.get(args.admin_token_env) or None
    serve_forever(args.host, args.port, admin_token=token)
    return EXIT_OK


# -- rotate / status / sweep / check-config ----------------------------------------------------


def _add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE", help="the YAML config file")


def _register_rotation_commands(commands: Any) -> None:
    rotate = commands.add_parser(
        "rotate", help="rotate targets now",
        description="Mint a fresh token for each target, verify it, store it with compare-and-set and "
        "retire the previous one (revoked after the target's overlap). Every target is attempted even "
        "when others fail; the exit code is 1 if any failed.")
    _add_config_flag(rotate)
    rotate.add_argument("targets", nargs="*", metavar="TARGET", help="target names (or --all)")
    rotate.add_argument("--all", action="store_true", help="rotate every target of the config")
    rotate.add_argument("--dry-run", action="store_true", help="read and plan only: mint nothing, write nothing")
    rotate.add_argument("--parallel", type=int, default=1, metavar="N", help="rotate N targets at a time (default 1)")
    rotate.add_argument("--reason", default="manual", help="recorded as last_reason in the store's metadata")
    rotate.add_argument("--format", choices=("text", "json"), default="text")
    rotate.set_defaults(handler=_cmd_rotate)

    status = commands.add_parser(
        "status", help="show each target's token, expiry and next due time",
        description="Per target: token id, username, issued, expires in, next due, retired tokens waiting, "
        "last error. Reads only metadata where the store keeps it (Vault KV v2, AWS tags).")
    _add_config_flag(status)
    status.add_argument("targets", nargs="*", metavar="TARGET")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(handler=_cmd_status)

    sweep = commands.add_parser(
        "sweep", help="revoke due retired tokens and orphans",
        description="Revoke retired tokens whose overlap is over, and live tokens tagged for a target that its "
        "store does not know (left by a crash), once older than the target's orphan_grace.")
    _add_config_flag(sweep)
    sweep.add_argument("targets", nargs="*", metavar="TARGET")
    sweep.add_argument("--format", choices=("text", "json"), default="text")
    sweep.set_defaults(handler=_cmd_sweep)

    check = commands.add_parser(
        "check-config", help="validate a config file (and connectivity with --online)",
        description="Validate the config: structure, keys, durations, token options, that secret references "
        "resolve. With --online also ping JFrog, check the admin token and each backend.")
    _add_config_flag(check)
    check.add_argument("--online", action="store_true", help="also contact JFrog and every backend")
    check.set_defaults(handler=_cmd_check_config)


def _selected(config: Any, names: list[str], all_targets: bool = True) -> list[Any]:
    if not names:
        if not all_targets:
            raise UsageError("name the targets to rotate, or give --all")
        return list(config.targets)
    known = {t.name: t for t in config.targets}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown target(s): {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[n] for n in names]


def _cmd_rotate(args: argparse.Namespace) -> int:
    import json
    from concurrent.futures import ThreadPoolExecutor

    from rotator.config import load_config
    from rotator.config.wiring import build_engine

    if args.all and args.targets:
        raise UsageError("give target names or --all, not both")
    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    config = load_config(args.config)
    try:
        targets = _selected(config, args.targets, all_targets=args.all)
        engine = build_engine(config)
        progress = _Progress(len(targets)) if args.format == "text" and len(targets) > 1 and sys.stderr.isatty() else None

        def one(target: Any) -> Any:
            result = engine.rotate(target, reason=args.reason, dry_run=args.dry_run)
            if progress:
                progress.advance(result)
            elif args.format == "text":
                print(_rotation_line(result), flush=True)
            return result

        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            results = list(pool.map(one, targets))
        if progress:
            progress.finish()
            for result in results:
                print(_rotation_line(result))
        if args.format == "json":
            print(json.dumps([r.to_json() for r in results], indent=2))
        engine.jfrog.close()
    finally:
        config.close()
    return EXIT_REMOTE if any(r.outcome == "failed" for r in results) else EXIT_OK


def _rotation_line(result: Any) -> str:
    if result.outcome == "rotated":
        expires = result.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if result.expires_at else "never"
        revoked = f", revoked {len(result.revoked)}" if result.revoked else ""
        return (f"{result.target}: rotated ({result.strategy}) token {result.token_id} generation "
                f"{result.generation}, expires {expires}{revoked} [{result.duration:.2f}s]")
    if result.outcome == "dry-run":
        current = result.previous_token_id or "none (first token)"
        return f"{result.target}: would rotate ({result.strategy}); current token {current}"
    if result.outcome == "lost-race":
        return f"{result.target}: another writer rotated it first; our new token was revoked"
    return f"{result.target}: FAILED {scrub(result.error or '')}"


class _Progress:
    """A one-line progress bar on a terminal's stderr for bulk rotations."""

    def __init__(self, total: int) -> None:
        import threading

        self.total, self.done, self.failed = total, 0, 0
        self.lock = threading.Lock()

    def advance(self, result: Any) -> None:
        with self.lock:
            self.done += 1
            self.failed += result.outcome == "failed"
            width = 30
            filled = int(width * self.done / self.total)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                             f"{f' ({self.failed} failed)' if self.failed else ''}")
            sys.stderr.flush()

    def finish(self) -> None:
        sys.stderr.write("\n")


def _cmd_status(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime, timezone

    from rotator.config import load_config
    from rotator.cli.jf_output import tabwrite
    from rotator.engine.status import target_status

    config = load_config(args.config)
    try:
        now = datetime.now(timezone.utc)
        statuses = [target_status(config, t, now) for t in _selected(config, args.targets)]
    finally:
        config.close()
    if args.format == "json":
        print(json.dumps([s.to_json(now) for s in statuses], indent=2))
    else:
        rows = [("TARGET", "STATE", "TOKEN_ID", "USERNAME", "ISSUED", "EXPIRES_IN", "NEXT_DUE", "RETIRED",
                 "LAST_ERROR")]
        for s in statuses:
            rows.append((s.target, s.state, s.token_id or "-", s.username or "-", _when(s.issued_at),
                         _human(s.expires_in(now)), _when(s.next_due), str(s.retired_waiting),
                         (s.last_error or "-")[:80]))
        sys.stdout.write(tabwrite(rows))
    return EXIT_REMOTE if any(s.state == "error" for s in statuses) else EXIT_OK


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


def _human(seconds: int | None) -> str:
    """``3d4h``, ``2h5m``, ``4m10s``, ``-1h0m`` (expired) or ``never``."""
    if seconds is None:
        return "never"
    sign, left = ("-" if seconds < 0 else ""), abs(seconds)
    days, left = divmod(left, 86400)
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    if days:
        return f"{sign}{days}d{hours}h"
    if hours:
        return f"{sign}{hours}h{minutes}m"
    return f"{sign}{minutes}m{secs}s" if minutes else f"{sign}{secs}s"


def _cmd_sweep(args: argparse.Namespace) -> int:
    import json

    from rotator.config import load_config
    from rotator.config.wiring import build_engine

    config = load_config(args.config)
    try:
        engine = build_engine(config)
        results = [engine.sweep(t) for t in _selected(config, args.targets)]
        engine.jfrog.close()
    finally:
        config.close()
    if args.format == "json":
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for r in results:
            print(f"{r.target}: revoked {len(r.retired_revoked)} retired, {len(r.orphans_revoked)} orphan(s)"
                  + "".join(f"\n  error: {e}" for e in r.errors))
    return EXIT_REMOTE if any(r.errors for r in results) else EXIT_OK


def _cmd_check_config(args: argparse.Namespace) -> int:
    from rotator.config import load_config
    from rotator.config.wiring import jfrog_client

    config = load_config(args.config)
    try:
        client, has_admin = jfrog_client(config.jfrog, str(config.source))
        for backend in config.backends.values():
            validate = getattr(backend, "validate_credentials", None)
            if validate is not None:
                validate()
        print(f"{config.source}: OK ({len(config.backends)} backend(s), {len(config.targets)} target(s))")
        for target in config.targets:
            print(f"  {target.name}: {target.strategy} -> {target.backend}:{target.path}, "
                  f"{target.schedule.describe()}, overlap {target.overlap}s")
        if not args.online:
            return EXIT_OK
        failures = 0
        checks: list[tuple[str, Callable[[], str]]] = [("jfrog ping", lambda: f"{client.url}: {client.ping()}")]
        if has_admin:
            checks.append(("jfrog token", lambda: "admin token works (token id "
                                                  f"{client.get_me().get('token_id', '?')})"))
        checks += [(f"backend {n}", b.check) for n, b in config.backends.items()]
        for what, check in checks:
            try:
                print(f"  {what}: {check()}")
            except Exception as exc:  # report every check, then fail
                failures += 1
                print(f"  {what}: FAILED {scrub(str(exc))}")
        client.close()
        return EXIT_REMOTE if failures else EXIT_OK
    finally:
        config.close()


# -- trigger ----------------------------------------------------------------------------------


def _register_trigger(commands: Any) -> None:
    trigger = commands.add_parser(
        "trigger", help="ask for a rotation through the target's Vault store, with your own token",
        description="Request a rotation of TARGET the way Vault-triggered renewal expects: set "
        "rotate_requested=true in the secret's custom_metadata (or, with --request, write a request object "
        "under the request prefix). Uses YOUR Vault token from $VAULT_TOKEN or $BAO_TOKEN, not the daemon's; it "
        "needs patch on <mount>/metadata/<path> (or create on <mount>/<request_prefix>/<target>/*) and no "
        "right to read the token. A running daemon rotates on its next reconcile pass.")
    _add_config_flag(trigger)
    trigger.add_argument("target", metavar="TARGET")
    trigger.add_argument("--reason", default="requested with jfrog-rotator trigger",
                         help="recorded with the request (shows up as last_reason)")
    trigger.add_argument("--request", action="store_true",
                         help="write a request object instead of setting the metadata flag")
    trigger.set_defaults(handler=_cmd_trigger)


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


# -- daemon -----------------------------------------------------------------------------------


def _register_daemon(commands: Any) -> None:
    daemon = commands.add_parser(
        "daemon", help="rotate every target on its schedule until stopped",
        description="Run the rotation scheduler: each target is rotated when its schedule says it is due "
        "(the store is the truth, so any number of daemons may share a config). SIGTERM/SIGINT finish "
        "in-flight rotations and exit 0; SIGHUP reloads the config (a bad config is refused and the running "
        "one kept). With --listen (or daemon.listen in the config) it serves /healthz, /readyz, /metrics "
        "and /status.")
    _add_config_flag(daemon)
    daemon.add_argument("--listen", metavar="HOST:PORT", help="operations endpoint address (default: off, or "
                        "daemon.listen of the config); use 127.0.0.1 unless something else must reach it")
    daemon.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="default: json when stderr is not a terminal, text when it is")
    daemon.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="how long a stop waits for rotations in flight (default 30)")
    daemon.set_defaults(handler=_cmd_daemon)


def _cmd_daemon(args: argparse.Namespace) -> int:
    from rotator.daemon import RotationDaemon
    from rotator.core.logs import setup_logging
    from rotator.ops.server import parse_listen

    if args.listen:
        try:
            parse_listen(args.listen)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    # Built first, so a config error is reported like any other command's, before logging moves.
    daemon = RotationDaemon(args.config, listen=args.listen, shutdown_timeout=args.shutdown_timeout)
    setup_logging(args.log_format or daemon.config.daemon.log_format,
                  level=logging.DEBUG if args.debug else logging.INFO)
    install_log_redaction()
    daemon.start()
    return daemon.run_forever()


# -- demo -------------------------------------------------------------------------------------


def _register_demo(commands: Any) -> None:
    demo = commands.add_parser("demo", help="run the product on embedded defaults against the emulator",
                               description="Start the bundled JFrog emulator on a free loopback port and "
                               "show the commands working. Nothing leaves the machine.")
    demo.set_defaults(handler=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from rotator.cli.demo import run_demo

    return run_demo()


COMMANDS: list[Callable[[Any], None]] = [_register_token, _register_rotation_commands, _register_trigger,
                                         _register_daemon, _register_emulator, _register_demo]
