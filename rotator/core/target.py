"""The target model: one token kept fresh in one store, and when it is due.

Pure data and the rules that go with it (target names, strategies, defaults); the YAML loader
(:mod:`rotator.config`) and the Lambda's settings build these, the engine and the daemon read
them. See docs/configuration.md for every key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace

from rotator.core.token_spec import TokenSpec

#: Target names go into the token description tag ``jfrog-rotator:<target>:<rotation id>``.
TARGET_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
TARGET_NAME_HINT = "letters, digits, '.', '_' and '-' only (it goes into the token description tag)"
_TARGET_NAME = re.compile(TARGET_NAME)

STRATEGIES = ("recreate", "refresh", "self")
DEFAULT_OVERLAP = 3600
DEFAULT_ORPHAN_GRACE = 600


@dataclass(frozen=True)
class Schedule:
    """When a target is due: ``every`` seconds, a ``cron`` line, or ``before_expiry``."""

    kind: str
    every: int | None = None
    cron: str | None = None
    timezone: str = "UTC"
    before_expiry_seconds: int | None = None
    before_expiry_fraction: float | None = None
    jitter: int = 0

    def describe(self) -> str:
        if self.kind == "every":
            return f"every {self.every}s"
        if self.kind == "cron":
            return f"cron '{self.cron}' ({self.timezone})"
        if self.before_expiry_fraction is not None:
            return f"{self.before_expiry_fraction:.0%} of the lifetime before expiry"
        return f"{self.before_expiry_seconds}s before expiry"


#: At most this many outputs besides the primary: their ids are listed in the primary's metadata
#: (an AWS tag value holds 256 characters; each id takes 9).
MAX_OUTPUTS = 16


@dataclass(frozen=True)
class Output:
    """One more place a target's token is written to (fan-out, docs/configuration.md "Fan-out"):
    a store path and the format its consumers read there. ``format`` ``None``: our record, or the
    shape of the value found there."""

    backend: str
    path: str
    format: str | None = None
    registry_hosts: tuple[str, ...] = ()
    template: str | None = None

    @property
    def key(self) -> str:
        """``<backend>:<path>``: how messages, results and ``status`` name the output."""
        return f"{self.backend}:{self.path}"

    @property
    def id(self) -> str:
        """A short stable id of :attr:`key`, as the primary's bookkeeping lists outputs (8 hex digits)."""
        return hashlib.sha256(self.key.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class Target:
    """One token kept fresh in one store: what to mint, how, where it is stored and when.

    ``overlap``: how long a replaced token stays valid (listed in the record's ``retired``) before
    it is revoked. ``orphan_grace``: how old an unknown token tagged for this target must be before
    the sweep revokes it (a rotation may be in flight on another replica).
    """

    name: str
    backend: str
    path: str
    token: TokenSpec
    strategy: str = "recreate"
    overlap: int = DEFAULT_OVERLAP
    fallback_to_recreate: bool = True
    orphan_grace: int = DEFAULT_ORPHAN_GRACE
    schedule: Schedule = field(default_factory=lambda: Schedule("before_expiry", before_expiry_fraction=0.25))
    #: What consumers read (:data:`rotator.core.shapes.FORMATS`); ``None``: our record, or the
    #: shape an adopted value already had.
    format: str | None = None
    #: Take over a value that holds a working token but is not our record (docs/configuration.md).
    adopt: bool = True
    registry_hosts: tuple[str, ...] = ()  # dockerconfigjson: the hosts (default: the JFrog URL's)
    template: str | None = None  # format template: the text, with {access_token}, {username}, ...
    #: Fan-out: the outputs written besides this one (the primary), in order. Empty: one output.
    outputs: tuple[Output, ...] = ()

    @property
    def primary(self) -> Output:
        """This target's own store path and format, the output whose compare-and-set decides a rotation."""
        return Output(self.backend, self.path, self.format, self.registry_hosts, self.template)

    def at(self, output: Output) -> Target:
        """This target as it is written at ``output``: the same token options, another store path and
        format, no outputs of its own (what READ and the shapes of the engine work on)."""
        return replace(self, backend=output.backend, path=output.path, format=output.format,
                       registry_hosts=output.registry_hosts, template=output.template, outputs=())


def is_target_name(name: str) -> bool:
    return bool(_TARGET_NAME.fullmatch(name))


def target_name_for(secret_name: str) -> str:
    """A target name for a store path that has no record yet (the Lambda's secrets): the name itself
    when it is a valid target name, else its valid characters plus a hash of the whole name
    (``jfrog/ci`` -> ``jfrog-ci-1a2b3c4d``), so two paths never share a tag."""
    if is_target_name(secret_name):
        return secret_name
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", secret_name).strip("-._")[:90] or "secret"
    return f"{base}-{hashlib.sha256(secret_name.encode('utf-8')).hexdigest()[:8]}"
