"""``jfrog-rotator rotate | status | sweep``: one engine call per target of a config.

The engine (``rotator.config.wiring.build_engine``) and the config loader are imported when a
command runs, so ``--help`` and the ``jf atc`` drop-in do not load YAML or the stores (start-up
time, bench/RESULTS.md). How a rotation goes is in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from rotator.cli.errors import EXIT_OK, EXIT_REMOTE, EXIT_USAGE, UsageError
from rotator.cli.flags import add_config_flag
from rotator.core.redact import scrub


def register_rotation_commands(commands: Any) -> None:
    rotate = commands.add_parser(
        "rotate", help="rotate targets now",
        description="Mint a fresh token for each target, verify it, store it with compare-and-set and "
        "retire the previous one (revoked after the target's overlap). Every target is attempted even "
        "when others fail; the exit code is 1 if any failed, 2 if every failure was a stored value that is not "
        "usable (left untouched).")
    add_config_flag(rotate)
    rotate.add_argument("targets", nargs="*", metavar="TARGET", help="target names (or --all)")
    rotate.add_argument("--all", action="store_true", help="rotate every target of the config")
    rotate.add_argument("--dry-run", action="store_true", help="read and plan only: mint nothing, write nothing")
    rotate.add_argument("--parallel", type=int, default=1, metavar="N",
                        help="rotate N targets at a time (default 1); results are printed in the config's order")
    rotate.add_argument("--reason", default="manual", help="recorded as last_reason in the store's metadata")
    rotate.add_argument("--format", choices=("text", "json"), default="text")
    rotate.set_defaults(handler=_cmd_rotate)

    status = commands.add_parser(
        "status", help="show each target's token, expiry and next due time",
        description="Per target: token id, username, issued, expires in, next due, retired tokens waiting, "
        "last error. Reads only metadata where the store keeps it (Vault KV v2, AWS tags).")
    add_config_flag(status)
    status.add_argument("targets", nargs="*", metavar="TARGET")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(handler=_cmd_status)

    sweep = commands.add_parser(
        "sweep", help="revoke due retired tokens and orphans",
        description="Revoke retired tokens whose overlap is over, and live tokens tagged for a target that its "
        "store does not know (left by a crash), once older than the target's orphan_grace. One JFrog call lists "
        "the tagged tokens of every target; a target's store is read only when that list shows work for it. "
        "Targets named on the command line are read whatever the list shows.")
    add_config_flag(sweep)
    sweep.add_argument("targets", nargs="*", metavar="TARGET", help="target names (default: every target)")
    sweep.add_argument("--all", action="store_true", help="sweep every target of the config (the default)")
    sweep.add_argument("--parallel", type=int, default=8, metavar="N",
                       help="read N stores at a time where the list shows work (default 8)")
    sweep.add_argument("--format", choices=("text", "json"), default="text")
    sweep.set_defaults(handler=_cmd_sweep)


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
        progress = (RotationProgress(len(targets))
                    if args.format == "text" and len(targets) > 1 and sys.stderr.isatty() else None)

        def one(target: Any) -> Any:
            result = engine.rotate(target, reason=args.reason, dry_run=args.dry_run)
            if progress:
                progress.advance(result)
            return result

        results = []
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            for result in pool.map(one, targets):  # in the config's order, whichever finishes first
                results.append(result)
                if not progress and args.format == "text":
                    print(_rotation_line(result), flush=True)
        if progress:
            progress.finish()
            for result in results:
                print(_rotation_line(result))
        if args.format == "json":
            print(json.dumps([r.to_json() for r in results], indent=2))
        engine.jfrog.close()
    finally:
        config.close()
    failed = [r for r in results if r.outcome == "failed"]
    if failed and all(r.bad_input for r in failed):
        return EXIT_USAGE  # only stored values that are not usable (bad input, left untouched)
    return EXIT_REMOTE if failed else EXIT_OK


def _rotation_line(result: Any) -> str:
    """One line per rotation; a fan-out target adds one line per output."""
    return _one_line(result) + "".join(f"\n  {_output_line(o)}" for o in result.outputs)


def _output_line(output: Any) -> str:
    primary = " (primary)" if output.primary else ""
    error = f": {scrub(output.error)}" if output.error else ""
    return f"{output.output}{primary}: {output.state}, token {output.token_id or '-'}{error}"


def _one_line(result: Any) -> str:
    if result.outcome == "failed" and result.step == "outputs":  # the lines below say which and why
        return (f"{result.target}: FAILED: not every output holds the new token {result.token_id} (each keeps a "
                "working token; the next run writes them)")
    if result.outcome == "synced":
        return f"{result.target}: outputs synced to token {result.token_id} [{result.duration:.2f}s]"
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


class RotationProgress:
    """A one-line progress bar on a terminal's stderr for bulk rotations."""

    def __init__(self, total: int) -> None:
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
    from rotator.cli.jf_output import tabwrite
    from rotator.config import load_config
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
        for s in statuses:  # fan-out targets: where each output stands
            if s.outputs:
                sys.stdout.write(f"\nOUTPUTS of {s.target}\n" + tabwrite(
                    [("OUTPUT", "FORMAT", "STATE", "TOKEN_ID", "ERROR")]
                    + [(o.output + (" (primary)" if o.primary else ""), o.format, o.state, o.token_id or "-",
                        (o.error or "-")[:80]) for o in s.outputs]))
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
    from rotator.config import load_config
    from rotator.config.wiring import build_engine

    if args.all and args.targets:
        raise UsageError("give target names or --all, not both")
    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    config = load_config(args.config)
    try:
        targets = _selected(config, args.targets)
        engine = build_engine(config)
        results = engine.sweep_all(targets, read_all=bool(args.targets), parallel=args.parallel)
        engine.jfrog.close()
    finally:
        config.close()
    if args.format == "json":
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for r in results:
            synced = [o.output for o in r.outputs if o.state == "synced"]
            print(f"{r.target}: revoked {len(r.retired_revoked)} retired, {len(r.orphans_revoked)} orphan(s)"
                  + (f", synced {', '.join(synced)}" if synced else "")
                  + "".join(f"\n  error: {e}" for e in r.errors))
    failed = [r for r in results if r.errors]
    if failed and all(r.bad_input for r in failed):
        return EXIT_USAGE  # only stored values that are not usable (bad input, left untouched)
    return EXIT_REMOTE if failed else EXIT_OK
