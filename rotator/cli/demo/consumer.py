"""The demo's consumer: a job that reads the secret twice a second, as a CI job would, with a
credential of its own, and checks with JFrog that the token it read works.

A *dead read* is a read whose token JFrog refuses (``GET /access/api/v1/tokens/me`` answers 401,
403 or 404): what rotation must never cause. A read that finds nothing yet (before the first token)
is not counted; a store or JFrog call that fails is counted apart, as an error.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from rotator.core.redact import register

READ_INTERVAL = 0.5


@dataclass
class ConsumerCounts:
    reads: int = 0
    dead: int = 0
    errors: int = 0
    tokens: list[str] = field(default_factory=list)  # token ids, in the order first seen

    def summary(self) -> str:
        return (f"reads {self.reads}, distinct tokens {len(self.tokens)}, dead reads {self.dead}"
                + (f", errors {self.errors}" if self.errors else ""))


class Consumer:
    """Reads ``read()`` every :data:`READ_INTERVAL` seconds in a thread; puts
    ``("consumer", what, text, fields)`` events on ``events`` when something changes."""

    def __init__(self, read: Callable[[], dict[str, Any] | None], jfrog_url: str, events: queue.Queue) -> None:
        self.read, self.jfrog_url, self.events = read, jfrog_url.rstrip("/"), events
        self.counts = ConsumerCounts()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-consumer", daemon=True)
        self._session = requests.Session()

    def start(self) -> Consumer:
        self._thread.start()
        return self

    def stop(self) -> ConsumerCounts:
        self._stop.set()
        self._thread.join(timeout=10)
        self._session.close()
        return self.counts

    def _run(self) -> None:
        while not self._stop.is_set():
            self._read_once()
            self._stop.wait(READ_INTERVAL)

    def _read_once(self) -> None:
        try:
            value = self.read()
        except Exception as exc:  # a store hiccup is reported, never a dead read
            self._error(f"reading the secret failed: {type(exc).__name__}: {exc}")
            return
        if value is None:
            return  # nothing stored yet
        # What consumers read (docs/architecture.md#the-stored-record): the token and its id.
        token, token_id = str(value.get("access_token") or ""), str(value.get("token_id") or "")
        if not token:
            self._error("the secret holds no access_token")
            return
        register(token)
        try:
            answer = self._session.get(f"{self.jfrog_url}/access/api/v1/tokens/me",
                                       headers={"Authorization": f"Bearer {token}"}, timeout=5)
        except requests.RequestException as exc:
            self._error(f"asking JFrog failed: {type(exc).__name__}")
            return
        counts = self.counts
        counts.reads += 1
        if answer.status_code in (401, 403, 404):
            counts.dead += 1
            self.events.put(("consumer", "DEAD READ", f"JFrog refused the token it read: HTTP {answer.status_code} "
                             f"({counts.summary()})", {"status": answer.status_code}))
            return
        if not answer.ok:
            counts.reads -= 1
            self._error(f"JFrog answered HTTP {answer.status_code}")
            return
        if token_id not in counts.tokens:
            counts.tokens.append(token_id)
            self.events.put(("consumer", "reads", f"{token_id[:8]}, JFrog accepts it ({counts.summary()})",
                             {"token_id": token_id, "reads": counts.reads, "distinct_tokens": len(counts.tokens),
                              "dead_reads": counts.dead}))

    def _error(self, message: str) -> None:
        self.counts.errors += 1
        self.events.put(("consumer", "error", message, {}))
