"""Bugs the store-faults suite found (tests/reliability/test_store_faults.py)."""

from tests.reliability.bugs import Bug

BUGS = [
    Bug("store-faults",
        "A document target (format: token, on Vault KV v2 or AWS) whose metadata/tag write failed after the value "
        "landed was read back as an adopted value with no retired list, so the next sweep revoked the previous "
        "token as an orphan before its overlap ended.",
        "READ takes a document whose token carries the target's tag for the successor of the record its metadata "
        "describes, keeping that record's tokens retired (rotator.engine.documents.successor_record; the "
        "concurrency suite found the same bug and its fix is the one kept when the suites were merged).",
        "2988879"),
    Bug("store-faults",
        "On AWS, a daemon target whose rotation kept failing at a store call after its claim used up the 8 claim "
        "tokens of that version (each retry by the same replica put a new claim), and then failed for good with "
        "'8 stale claims' even once the store was back.",
        "The latest claim is read by its label and kept when it is ours from the same version; the next token "
        "follows the latest claim's attempt instead of walking from 0.",
        "93e6669"),
    Bug("store-faults",
        "A rotation that failed under its claim (Vault KV v2 or AWS) kept the claim: the next leader skipped the "
        "target ('another replica claimed this rotation') until the claim's TTL ran out.",
        "The daemon gives the claim back after a failed rotation (RotationClaims.release_rotation, MintGuard.settle; "
        "the concurrency suite fixed the same, its engine hook is the one kept at the merge).",
        "034e01a"),
    Bug("store-faults",
        "A Vault write (KV v2 or v1) answered 503 (or 500) after it was applied, as a gateway in front of Vault "
        "can, was taken for a write that did not happen: the new token was revoked while the store held it.",
        "A 500 or 503 on a Vault write is an unknown outcome (WriteOutcomeUnknown), as 502 and AWS's 5xx were: "
        "the store is read again and the token revoked only if it is not there.",
        "52ec39e"),
]
