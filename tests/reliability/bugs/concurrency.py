"""Bugs the concurrency suite found (tests/reliability/test_concurrency.py)."""

from tests.reliability.bugs import Bug

BUGS = [
    Bug("concurrency",
        "Four `rotate` processes with strategy refresh on one target each presented the same refresh token "
        "(JFrog answered 401 to three of them, which fell back to recreate): a refresh ran without a claim "
        "outside daemon.leader.",
        "Engine.rotate claims a refresh in the target's store (RotationClaims) whatever the door, and a "
        "rotation that fails before storing gives its claim back (RotationClaims.release_rotation).", "148f8c7"),
    Bug("concurrency",
        "With debug logging, botocore's response-body log of GetSecretValue carried refresh tokens the masker "
        "had not seen yet (they are not shaped like a JWT).",
        "The AWS store's transport keeps response bodies holding a SecretString out of botocore's debug log.", "0cb242e"),
    Bug("concurrency",
        "A daemon sweeping with orphan_grace: 0s revoked a token another process (a replica, the CLI, its own "
        "job) had minted and verified but not stored yet, which was then stored dead (the flaky "
        "test_two_daemons_rotate_each_target_once_per_due_time).",
        "The daemon sweeps with an orphan grace of at least 60 s (ORPHAN_GRACE_FLOOR); jfrog-rotator sweep "
        "keeps the grace as set.", "eb973f6"),
    Bug("concurrency",
        "A daemon kept minting with the admin token jfrog.access_token_file held at start: once that token "
        "was rotated (the file rewritten, the old token revoked) every rotation failed at MINT.",
        "jfrog.access_token_file is read again each time the engine mints, lists or revokes (TokenFile).", "25274b5"),
    Bug("concurrency",
        "When a daemon rotated an AWS secret between the Lambda's createSecret and its setSecret, the Lambda "
        "refused the step (its version no longer AWSPENDING) and left its minted token live for a sweep.",
        "The Lambda revokes the token of a version passed over by another writer before refusing the step.", "d8b7864"),
    Bug("concurrency",
        "A document (format token) stored without its metadata (the tag write after it lost) was adopted as a "
        "stranger's value: generation back to 0, and the tokens still in their overlap swept as orphans.",
        "READ takes a document whose token carries this target's tag but is not the one its metadata names for "
        "the successor of that record (generation + 1, the previous token retired with the overlap) and repairs "
        "the metadata.", "2988879"),
    Bug("concurrency",
        "A leader's rotation that failed before storing kept its claim on the target for the lease ttl, so a "
        "replica taking over could not rotate that target until the claim ran out.",
        "The daemon's MintGuard gives the claim back when the engine reports the rotation did not store "
        "(Engine after_rotation).", "034e01a"),
]
