"""Bugs found once the suites ran together on the merged code (each fix needed two suites' work)."""

from tests.reliability.bugs import Bug

BUGS = [
    Bug("secrets",
        "With refresh claims taken by every door, a CLI refresh whose STORE failed with the store down could not "
        "give its claim back, so the rerun skipped for the claim's 60 s TTL with the refreshed (dead) token stored.",
        "A claim whose holder is a process of this host that has exited (or this process, for a rotation no longer "
        "in flight) is given back and claimed again (Engine._left_here).", "cb34b79"),
    Bug("concurrency",
        "A rotation asked for just as a replica took the lead (run_now) was replaced by the schedule the new "
        "leader planned next, so the request waited for the next reconcile pass.",
        "Planning a target never pushes back a job planned sooner (RotationDaemon._schedule).", "1c7bd60"),
]
