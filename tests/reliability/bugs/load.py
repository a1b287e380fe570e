"""Bugs the load suite found (tests/reliability/test_load.py)."""

from tests.reliability.bugs import Bug

BUGS = [
    Bug("load", "At start the daemon read 16 network stores at once, more than a store's connection pool holds (10): "
                "urllib3 threw connections away with a warning each (9 at the start of the 1,000-target fleet).",
        "The start-up reads go 10 at a time (rotator.daemon.service.START_READS).", "9f1f61d"),
]
