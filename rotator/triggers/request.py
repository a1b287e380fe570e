"""``jfrog-rotator trigger``: ask for a rotation through the target's store, as yourself.

Uses the *caller's* Vault token (``$VAULT_TOKEN`` / ``$BAO_TOKEN``, not the daemon's
credentials from the config): either sets ``rotate_requested=true`` in the target's
custom_metadata (needs ``patch`` on ``<mount>/metadata/<path>``) or writes a request object
under ``<mount>/<request_prefix>/<target>/<id>`` (needs ``create`` there). Neither needs, or
gives, the right to read the token. A running daemon notices it on its next reconcile pass.
"""

from __future__ import annotations

import getpass
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from rotator.config import Config
from rotator.core.options import ConfigError
from rotator.core.record import utc_iso
from rotator.triggers.capability import takes_requests


@dataclass(frozen=True)
class TriggerResult:
    target: str
    how: str  # flag | request
    where: str
    requested_by: str


def caller_token(env_names: tuple[str, ...] = ("VAULT_TOKEN", "BAO_TOKEN")) -> str:
    for name in env_names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise ConfigError("", "", f"no Vault token: export {' or '.join(env_names)} with your own token "
                              "(it needs patch on the target's metadata path, or create on the request prefix)")


def request_rotation(config: Config, target_name: str, *, reason: str, token: str,
                     as_request: bool = False) -> TriggerResult:
    target = config.by_name.get(target_name)
    if target is None:
        raise ConfigError(str(config.source), "targets", f"no target named {target_name!r} "
                                                         f"(known: {', '.join(config.by_name)})")
    backend = config.backends[target.backend]
    if not takes_requests(backend, token):
        raise ConfigError(str(config.source), f"backends.{target.backend}",
                          f"target {target_name!r} is not in a Vault KV v2 store; trigger works through Vault "
                          "(for AWS Secrets Manager use: aws secretsmanager rotate-secret)")
    who = backend.caller_name(token) or getpass.getuser()
    now = utc_iso(datetime.now(timezone.utc))
    if as_request:
        where = backend.write_request(target.name, f"{now.replace(':', '')}-{uuid.uuid4().hex[:8]}",
                                      {"requested_by": who, "reason": reason, "requested_at": now}, token=token)
        return TriggerResult(target.name, "request", where, who)
    backend.request_rotation(target.path, token=token, reason=reason, requested_by=who, at=now)
    return TriggerResult(target.name, "flag", backend.flag_location(target.path), who)
