"""``jfrog-rotator check-config``: validate a config file offline, and its connections with ``--online``.

The config keys are described in docs/configuration.md. The config loader and the store protocols
are imported when the command runs (start-up time of the other commands, bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rotator.cli.errors import EXIT_OK, EXIT_REMOTE, print_warning
from rotator.cli.flags import add_config_flag
from rotator.core.redact import scrub


def register_config_commands(commands: Any) -> None:
    check = commands.add_parser(
        "check-config", help="validate a config file (and connectivity with --online)",
        description="Validate the config: structure, keys, durations, token options, that secret references "
        "resolve; warn about settings JFrog or the secrets' consumers defeat. With --online also ping JFrog, "
        "check the admin token and each backend.")
    add_config_flag(check)
    check.add_argument("--online", action="store_true", help="also contact JFrog and every backend")
    check.set_defaults(handler=_cmd_check_config)


def _cmd_check_config(args: argparse.Namespace) -> int:
    from backends.base import RenewableAuth
    from rotator.config import load_config
    from rotator.config.advice import config_advice
    from rotator.config.wiring import credential_check, jfrog_client

    config = load_config(args.config)
    try:
        client, has_admin = jfrog_client(config.jfrog, str(config.source))
        credential = credential_check(config, client, has_admin)  # an ID token must be readable now
        for backend in config.backends.values():
            if isinstance(backend, RenewableAuth):  # a store that logs in: its credentials must resolve now
                backend.validate_credentials()
        print(f"{config.source}: OK ({len(config.backends)} backend(s), {len(config.targets)} target(s))")
        for target in config.targets:
            fanout = "".join(f" + {o.key}" for o in target.outputs)
            print(f"  {target.name}: {target.strategy} -> {target.backend}:{target.path}{fanout}, "
                  f"{target.schedule.describe()}, overlap {target.overlap}s")
        for advice in config_advice(config):  # warnings only: the config is valid
            print_warning(str(advice))
        if not args.online:
            return EXIT_OK
        failures = 0
        checks: list[tuple[str, Callable[[], str]]] = [("jfrog ping", lambda: f"{client.url}: {client.ping()}")]
        if credential is not None:
            checks.append(credential)
        checks += [(f"backend {n}", b.check) for n, b in config.backends.items()]
        for what, check in checks:
            try:
                print(f"  {what}: {check()}")
            except Exception as exc:  # report every check, then fail
                failures += 1
                print(f"  {what}: FAILED {scrub(str(exc))}")
        client.close()
        if not failures:
            failures += _report_stored_values(config)
        return EXIT_REMOTE if failures else EXIT_OK
    finally:
        config.close()


def _report_stored_values(config: Any) -> int:
    """``check-config --online``: what the next rotation will find in each target's store (READ
    only: nothing is minted or written). Returns how many targets would be refused."""
    from rotator.config.wiring import build_engine
    from rotator.engine import RotationError
    from rotator.engine.outputs import read_outputs, report

    engine = build_engine(config)
    refused = 0
    try:
        for target in config.targets:
            try:
                current = engine.read(target)
            except RotationError as exc:
                refused += 1
                print(f"  target {target.name}: will refuse ({exc.detail})")
                continue
            if current.adopted and current.record is not None and current.found is not None:
                print(f"  target {target.name}: will adopt ({current.found.describe()}, token id "
                      f"{current.record.token_id})")
            elif current.record is None:
                print(f"  target {target.name}: empty: the first rotation mints its first token")
            else:
                print(f"  target {target.name}: holds token id {current.record.token_id} "
                      f"(generation {current.record.generation})")
            for output in report(read_outputs(engine, target), current.record):  # fan-out: the other outputs
                refused += output.state == "failed"
                print(f"  target {target.name} output {output.output}: {output.state}"
                      + (f" ({output.error})" if output.error else f" (token id {output.token_id or '-'})"))
    finally:
        engine.jfrog.close()
    return refused
