"""The jfrog-faults suite's table: every fault the emulator injects, every JFrog call the product
makes, and the bound a run under faults must finish within (from the configured timeouts).

A fault *lasts* until the test clears it (``count`` is larger than any run can consume), except
the faults JFrog acts on (``lost``, ``garbled``, ``revoked`` on a refresh): those happen once, as a
lost answer does. The number of faults a run consumed is the number of requests of the faulted
call the emulator saw while the fault was armed (:func:`consumed`).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from rotator.jfrog.client import RetryPolicy
from tests.fixtures.daemon import wait_until

TOKENS = "/access/api/v1/tokens"
TIMEOUT = 1.0  # jfrog.timeout of every config here: a stall past it costs about a second
STALL = TIMEOUT + 0.6
LASTING = 200  # more requests than any run under a fault makes
RETRY = RetryPolicy()  # what rotator.config.wiring gives the CLI and the daemon
VERIFY_SLEEP = 0.2 + 0.4 + 0.8 + 1.6  # RotationSteps' verify back-off over its 5 attempts
SLACK = 3.0  # process work besides the faulted calls (store I/O, the other calls), generous


@dataclass(frozen=True)
class Fault:
    name: str
    kwargs: dict = field(hash=False)
    message: str  # a fragment the error names (besides the call)
    acts: bool = False  # JFrog acts on the request (a token minted, refreshed or revoked)
    once: bool = False  # happens once (a lost answer), not for as long as the test says

    def inject(self, emulator, method: str, path: str) -> None:
        emulator.inject_fault(path, method=method, count=1 if self.once else LASTING, **self.kwargs)


FAULTS = {f.name: f for f in (
    Fault("500", {"status": 500}, "server response: 500"),
    Fault("503", {"status": 503}, "server response: 503"),
    Fault("429", {"status": 429, "retry_after": 1}, "server response: 429"),
    Fault("reset", {"kind": "reset"}, "cannot reach"),
    Fault("stall", {"status": None, "stall": STALL}, f"timed out after {TIMEOUT:g}s", acts=True),
    Fault("malformed", {"status": 200, "body": '{"token_id": "0f", "access_token": "eyJ'},
          "server response: 200 (answer is not JSON"),
    Fault("no-token", {"status": 200, "body": '{"token_type": "Bearer"}'}, "answer has no access_token"),
    Fault("fake-jwt", {"kind": "fake-jwt"}, "does not work"),
    Fault("revoked", {"kind": "revoked"}, "does not work", acts=True, once=True),
    Fault("garbled", {"kind": "garbled"}, "answer is not JSON", acts=True, once=True),
    Fault("lost", {"kind": "lost", "stall": STALL}, f"timed out after {TIMEOUT:g}s", acts=True, once=True),
)}

#: The faults that only mean something on an answer that carries a token (create, refresh).
TOKEN_ANSWER_FAULTS = ("no-token", "fake-jwt", "revoked", "garbled")
#: The faults of any call.
ANY_CALL_FAULTS = ("500", "503", "429", "reset", "stall", "malformed", "lost")


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str  # a prefix, as the emulator matches it
    label: str  # how an error names it
    strategies: tuple[str, ...]
    faults: tuple[str, ...]


CALLS = {c.name: c for c in (
    Call("create", "POST", TOKENS, "POST /access/api/v1/tokens", ("recreate", "self"),
         ANY_CALL_FAULTS + TOKEN_ANSWER_FAULTS),
    Call("refresh", "POST", TOKENS, "POST /access/api/v1/tokens", ("refresh",), ANY_CALL_FAULTS + TOKEN_ANSWER_FAULTS),
    Call("me", "GET", f"{TOKENS}/me", "GET /access/api/v1/tokens/me", ("recreate", "refresh", "self"),
         ANY_CALL_FAULTS),
    # A DELETE answers 200 or 204 without a body to parse: a "malformed" 200 is JFrog saying revoked.
    Call("revoke", "DELETE", f"{TOKENS}/", "DELETE /access/api/v1/tokens/", ("recreate", "self"),
         tuple(f for f in ANY_CALL_FAULTS if f != "malformed")),
    Call("list", "GET", TOKENS, "GET /access/api/v1/tokens", ("recreate", "refresh", "self"),
         tuple(f for f in ANY_CALL_FAULTS if f != "lost")),
)}


def settled(emulator, call: Call, since: int, taken: int) -> int:
    """Wait until every request that met a fault since ``taken`` was answered (a stalled one is
    served after the client gave up: a token it mints must exist before a sweep looks), and
    return how many met one."""
    faults = emulator.faults_taken - taken
    wait_until(lambda: consumed(emulator, call, since) >= faults, timeout=10, what="the faulted requests answered")
    return faults


def consumed(emulator, call: Call, since: int) -> int:
    """Requests of ``call`` the emulator saw after its ``since``-th request: faults consumed while armed."""
    seen = emulator.requests[since:]
    if call.name == "list":  # GET /tokens?description=..., not /tokens/me
        return sum(1 for r in seen if r.method == "GET" and r.path == TOKENS)
    return sum(1 for r in seen if r.method == call.method and r.path.startswith(call.path))


def bound(faulted_requests: int, *, verify: bool = True, retry: RetryPolicy = RETRY,
          timeout: float = TIMEOUT) -> float:
    """The longest a run may take when ``faulted_requests`` requests met a fault: each costs at most
    the read timeout and one back-off (``Retry-After`` is capped at ``backoff_max`` too), and a
    rotation may spend VERIFY's back-off on top (RetryPolicy's own bound, call by call)."""
    return faulted_requests * (timeout + retry.backoff_max) + (VERIFY_SLEEP if verify else 0.0) + SLACK


def write_config(path: Path, emulator, *, strategy: str, overlap: str = "0s", admin: bool = True,
                 daemon: str = "") -> Path:
    """One target ``ci`` in a file store, with a short ``jfrog.timeout`` and no orphan grace."""
    refreshable = "true" if strategy == "refresh" else "false"
    credential = ", access_token_env: JFROG_ADMIN_TOKEN" if admin else ""
    text = textwrap.dedent(f"""\
        jfrog: {{url: "{emulator.url}"{credential}, timeout: {TIMEOUT:g}s}}
        backends: {{store: {{type: file, directory: ./secrets}}}}
        targets:
          - {{name: ci, backend: store, path: ci, overlap: {overlap}, orphan_grace: 0s, strategy: {strategy},
              schedule: {{every: 1h}}, token: {{username: ci, expiry: 7d, refreshable: {refreshable}}}}}
        """)
    if daemon:
        text += "daemon:\n" + textwrap.indent(textwrap.dedent(daemon).strip(), "  ") + "\n"
    path.write_text(text)
    return path
