"""Bugs the crash matrix found (tests/reliability/test_crash_matrix.py)."""

from tests.reliability.bugs import Bug

BUGS = [
    Bug("crash",
        "A kill between a document's value and its metadata (Vault KV v2, AWS; the file store's value and "
        "sidecar) lost an adopted token: the rerun adopted the new token, and the one adopted before stayed "
        "live, listed nowhere (no tag finds it)",
        "A document's retired list is written to the metadata before the value (the file store writes its "
        "sidecar first), and READ keeps our metadata's retired list when the value holds another token",
        "04a25f7"),
    Bug("crash",
        "The Lambda's finishSecret, retried after a kill between promoting an adopted secret's new version and "
        "writing its tags, adopted the new token again: generation 0, the adopted token lost, the pending tag left",
        "A replayed finishSecret rebuilds the record from the pending tag on the version it demoted "
        "(AWSPREVIOUS), writes the tags finishSecret writes and clears the pending tag",
        "8ae2c98"),
]
