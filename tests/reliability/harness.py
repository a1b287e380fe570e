"""The reliability suites' shared part: the invariants of docs/architecture.md checked against the
real servers after every case, and the counts each suite publishes in docs/reliability.md.

A case calls :func:`check_config` (invariants 1-3 on every target and output of a config) and
:class:`Ledger` (invariant 4: no secret in any text the product wrote); each check and each
violation is counted on its suite's :class:`Tally`. A violation is also an assertion error, so a
case that breaks an invariant fails; the tally is what the page shows, run by run.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rotator.config import Config, load_config
from rotator.config.wiring import jfrog_client
from rotator.core.record import SecretRecord
from rotator.core.tags import TAG_PREFIX
from rotator.core.target import Target
from rotator.emulator import Emulator
from rotator.engine.reading import read_current
from rotator.engine.records import revoked_per_metadata

#: The suites, in the order the page lists them: module-level ``SUITE = "..."`` names one.
SUITES = {
    "crash": "Crash matrix",
    "jfrog-faults": "Faults at every JFrog call",
    "store-faults": "Faults at every store call",
    "concurrency": "Concurrency and leadership",
    "bad-input": "Bad input",
    "secrets": "Secrets stay secret, TLS",
    "load": "Load with faults",
}


@dataclass
class Tally:
    """What one suite did in this run: cases, faults injected, invariant checks, violations."""

    suite: str
    cases: int = 0
    faults: int = 0
    checks: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)  # suite-specific counts (kills, examples, ...)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, cases: int = 0, faults: int = 0, checks: int = 0, **extra: int) -> None:
        with self._lock:
            self.cases += cases
            self.faults += faults
            self.checks += checks
            for name, count in extra.items():
                self.extra[name] = self.extra.get(name, 0) + count

    def violated(self, problems: Iterable[str]) -> None:
        problems = list(problems)
        with self._lock:
            self.violations += problems
        assert not problems, "invariant violated:\n  " + "\n  ".join(problems)

    def as_dict(self) -> dict:
        return {"suite": self.suite, "cases": self.cases, "faults": self.faults, "checks": self.checks,
                "violations": list(self.violations), "seconds": round(self.seconds, 1), "extra": dict(self.extra)}


_TALLIES: dict[str, Tally] = {}


def tally_for(suite: str) -> Tally:
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r} (known: {', '.join(SUITES)})")
    return _TALLIES.setdefault(suite, Tally(suite))


def tallies() -> list[Tally]:
    return [_TALLIES[name] for name in SUITES if name in _TALLIES]


# -- invariants 1-3 -----------------------------------------------------------------------------
def check_config(config: str | Path | Config, emulator: Emulator, tally: Tally, *, swept: bool = True,
                 targets: Iterable[str] | None = None) -> None:
    """Invariants 1-3 on every target (or those named) of ``config`` and every output:

    1. the token each store holds is accepted by JFrog;
    2. each stored value parses (our record, or a document rebuilt with its metadata);
    3. (``swept``: after a sweep past overlap and orphan grace) every live token tagged for a
       target is the current token or a retired one not yet revoked, in some output.

    Violations are counted on ``tally`` and fail the case.
    """
    owned = not isinstance(config, Config)
    loaded = load_config(config) if owned else config
    client, _ = jfrog_client(loaded.jfrog)
    problems: list[str] = []
    checks = 0
    try:
        for target in loaded.targets:
            if targets is not None and target.name not in set(targets):
                continue
            known: set[str] = set()
            for output in (target.primary, *target.outputs):
                checks += 2
                problems += _check_output(loaded, target.at(output), client, emulator, known)
            if swept:
                checks += 1
                live = emulator.live_token_ids(description_prefix=f"{TAG_PREFIX}:{target.name}:")
                orphans = sorted(live - known)
                if orphans:
                    problems.append(f"{target.name}: {len(orphans)} live tagged token(s) neither current nor "
                                    f"retired in any output: {', '.join(orphans)}")
    finally:
        client.close()
        if owned:
            loaded.close()
    tally.add(checks=checks)
    tally.violated(problems)


def _check_output(config: Config, target: Target, client, emulator: Emulator, known: set[str]) -> list[str]:
    where = f"{target.name} at {target.backend}:{target.path}"
    backend = config.backends[target.backend]
    try:
        current = read_current(target, backend, client)
    except Exception as exc:  # noqa: BLE001 - any failure to read back is the finding
        return [f"{where}: the stored value does not parse: {exc}"]
    record: SecretRecord | None = current.record
    if record is None:
        return [f"{where}: no token stored"]
    problems = []
    if not emulator.authenticates(record.access_token):
        problems.append(f"{where}: the stored token (id {record.token_id}) is not accepted by JFrog")
    done = revoked_per_metadata(record, current.stored.metadata or {})
    known.add(record.token_id)
    known.update(r.token_id for r in record.retired if r.token_id not in done)
    return problems


# -- invariant 4 --------------------------------------------------------------------------------
class Ledger:
    """Every secret value issued during a case and every text the product wrote, for invariant 4.

    ``secrets`` grows from the emulators (:meth:`Emulator.issued_values`: access, refresh and
    reference tokens, the admin token too) and whatever the case adds (the Vault root token, AWS
    keys); ``texts`` holds captured output, log records at every level, error messages, ``status``
    and ``/metrics`` bodies. :meth:`check` searches every secret in every text.
    """

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.texts: list[tuple[str, str]] = []
        self._handler = _Capture(self)

    def secret(self, *values: str | None) -> None:
        self.secrets.update(v for v in values if v and len(v) >= 8)

    def emulator(self, emulator: Emulator) -> None:
        self.secret(*emulator.issued_values())

    def text(self, where: str, text: str | bytes | None) -> None:
        if text:
            self.texts.append((where, text.decode("utf-8", "replace") if isinstance(text, bytes) else text))

    def capture_logs(self) -> Ledger:
        """Record every log record (DEBUG included) as it is formatted for output, from now on."""
        root = logging.getLogger()
        self._previous_level = root.level
        root.addHandler(self._handler)
        root.setLevel(logging.DEBUG)
        return self

    def stop_logs(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self._handler)
        root.setLevel(getattr(self, "_previous_level", logging.WARNING))

    def check(self, tally: Tally) -> None:
        """Invariant 4: count the searches; a secret found in a text is a violation."""
        hits = [f"secret #{hashlib.sha256(s.encode()).hexdigest()[:8]} ({len(s)} chars) appears in {where}"
                for s in self.secrets for where, text in self.texts if s in text]
        tally.add(checks=1, secrets_searched=len(self.secrets), texts_searched=len(self.texts))
        tally.violated(hits)


class _Capture(logging.Handler):
    def __init__(self, ledger: Ledger) -> None:
        super().__init__(logging.DEBUG)
        self.ledger = ledger
        # The product's own formatters scrub; this one does not, so it sees what a handler would.
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.ledger.text(f"log {record.name}", self.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is not a leak
            pass


class Stopwatch:
    """Adds the wall time of a ``with`` block to a tally's run time."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def __enter__(self) -> Stopwatch:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.tally.seconds += time.monotonic() - self.start
