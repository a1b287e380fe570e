"""Bugs the store-faults suite found (tests/reliability/test_store_faults.py).

It also found two that the concurrency suite found at the same time, listed there once with the fix
kept at the merge (2988879: a document whose metadata write failed after the value landed; 034e01a: a
failed rotation kept its claim); its regression cases for both run every time.
"""

from tests.reliability.bugs import Bug

BUGS = [
    Bug("store-faults",
        "On AWS, a daemon target whose rotation kept failing at a store call after its claim used up the 8 claim "
        "tokens of that version (each retry by the same replica put a new claim), and then failed for good with "
        "'8 stale claims' even once the store was back.",
        "The latest claim is read by its label and kept when it is ours from the same version; the next token "
        "follows the latest claim's attempt instead of walking from 0.",
        "93e6669"),
    Bug("store-faults",
        "A Vault write (KV v2 or v1) answered 503 (or 500) after it was applied, as a gateway in front of Vault "
        "can, was taken for a write that did not happen: the new token was revoked while the store held it.",
        "A 500 or 503 on a Vault write is an unknown outcome (WriteOutcomeUnknown), as 502 and AWS's 5xx were: "
        "the store is read again and the token revoked only if it is not there.",
        "52ec39e"),
]
