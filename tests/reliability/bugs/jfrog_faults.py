"""Bugs the jfrog-faults suite found (tests/reliability/test_jfrog_faults.py), each with its fix."""

from __future__ import annotations

from tests.reliability.bugs import Bug

SUITE = "jfrog-faults"

BUGS = [
    Bug(SUITE, "A refresh JFrog acted on whose answer was lost (a dropped connection, a garbled 200, or a token "
               "that failed VERIFY) left the stored token dead: refresh tokens are single-use and the old token "
               "dies at once, but the store kept it and the run only said 'refresh failed'.",
        "After a failed refresh the engine checks the stored token (GET /tokens/me); a dead one is recreated in "
        "the same run when fallback_to_recreate and an admin credential allow, else the error says the stored "
        "token no longer works.", commit="1cc37b0"),
    Bug(SUITE, "A 200 answer that was not JSON was echoed into the error, so a garbled refresh answer put the new "
               "refresh token (a bare UUID no pattern masks) into log lines and messages (invariant 4).",
        "The error of a broken 2xx answer gives its size and content type, never its body.", commit="1cc37b0"),
    Bug(SUITE, "An answer stalled past jfrog.timeout was reported as 'cannot reach <url>: timed out' (the "
               "troubleshooting page's 'no TCP connection'), with the timeout printed as a tuple.",
        "A read timeout, which urllib3's retry wraps in a connection error, says 'timed out after <n>s'.", commit="1cc37b0"),
    Bug(SUITE, "A 200 create or refresh answer without access_token or token_id was taken for a token: it was "
               "verified with no credential, then 'revoked' with DELETE /access/api/v1/tokens/ (405).",
        "The client refuses such an answer: 'server response: 200 (answer has no access_token and token_id)'.", commit="1cc37b0"),
    Bug(SUITE, "The errors of a refresh, of VERIFY, of the sweep's list (the fleet's Engine.sweep_all and a "
               "target's own) and of a revocation gave JFrog's answer without the call ('server response: 500 ...').",
        "rotator.jfrog.errors.with_call names the call ('GET /access/api/v1/tokens: server response: 500 ...') "
        "in each.", commit="1cc37b0"),
    Bug(SUITE, "A refresh that succeeded but whose VERIFY got no answer (GET /tokens/me failing with 5xx, a reset "
               "or a stall) revoked the refreshed token, leaving the store with the previous token, which the "
               "refresh had already killed.",
        "A refreshed token JFrog gives no answer on is stored unverified, with a warning; one JFrog refuses "
        "(401/403/404) is still revoked, and the dead stored token then recreated.", commit="010d4c7"),
]
