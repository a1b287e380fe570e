"""Test hooks of the emulator: injected faults and the record of every request served."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator saw it, with the status it answered.

    ``headers`` is a case-preserving copy; ``json`` is the decoded JSON body (None if the body was
    not JSON); ``form`` maps each form field to its first value (None if the body was not a form).
    Bodies may hold secrets: this record lives in memory only and is never logged.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = field(repr=False)
    json: object | None = field(repr=False)
    form: dict[str, str] | None = field(repr=False)
    status: int


class RequestLog:
    """Thread-safe, append-only list of :class:`RecordedRequest`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[RecordedRequest] = []

    def append(self, item: RecordedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: What a fault does besides (or instead of) an error status; see :meth:`FaultInjector.add`.
FAULT_KINDS = {
    "reset": "close the connection without an answer (after the stall, if any); nothing is served",
    "lost": "serve the request (JFrog acts on it), then stall and close the connection: the answer is lost",
    "revoked": "serve the request, revoke the token its answer carries, then answer 200 with that dead token",
    "fake-jwt": "answer 200 with a made-up token that looks like a JWT (nothing is served or minted)",
    "garbled": "serve the request, then answer its body cut short: malformed JSON that still holds its tokens",
}


@dataclass
class Fault:
    """Answer ``status`` (or, with ``status=None``, just stall) for the next ``remaining`` matches;
    ``kind`` (one of :data:`FAULT_KINDS`) replaces the status."""

    path: str
    method: str | None
    status: int | None
    remaining: int
    retry_after: float | None = None
    stall: float | None = None
    body: str | None = None
    kind: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path) and (self.method is None or self.method == method)


class FaultInjector:
    """Faults are consumed in the order they were added; each request consumes at most one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.taken = 0  # faults consumed since start: what a test counts as injected

    def add(
        self,
        path: str,
        *,
        method: str | None = None,
        status: int | None = 500,
        count: int = 1,
        retry_after: float | None = None,
        stall: float | None = None,
        body: str | None = None,
        kind: str | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        if kind is not None:
            if kind not in FAULT_KINDS:
                raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
            status = None
        elif status is None and not stall:
            raise ValueError("a fault needs a status, a stall, a kind, or a mix")
        if status is not None and not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        fault = Fault(path, method.upper() if method else None, status, count, retry_after, stall, body, kind)
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first fault matching this request, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    self.taken += 1
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
