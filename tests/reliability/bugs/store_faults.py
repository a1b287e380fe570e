"""Bugs the store-faults suite found (tests/reliability/test_store_faults.py)."""

from tests.reliability.bugs import Bug

BUGS = [
    Bug("store-faults",
        "A document target (format: token, on Vault KV v2 or AWS) whose metadata/tag write failed after the value "
        "landed was read back as an adopted value with no retired list, so the next sweep revoked the previous "
        "token as an orphan before its overlap ended.",
        "READ keeps the bookkeeping of the metadata beside an adopted value when that metadata is ours for the "
        "target: its token stays retired until the overlap after the new token was issued "
        "(rotator.engine.documents.with_previous_bookkeeping).",
        "681c61b"),
]
