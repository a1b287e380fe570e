"""Bugs the secrets suite found (tests/reliability/test_secrets.py)."""

from tests.reliability.bugs import Bug

BUGS = [
    Bug("secrets", "With --debug (or any DEBUG logging in process) botocore's request and response logs carried the "
                   "AWS session token (X-Amz-Security-Token) and the refresh token inside a Secrets Manager "
                   "SecretString, neither registered nor token-shaped when logged.",
        "rotator.core.redact masks any value under a secret's name (refresh_token, password, secret_id, "
        "X-Amz-Security-Token, ...) in JSON, escaped JSON, dict reprs and headers.", "f65b68c"),
    Bug("secrets", "tls_verify: false logged a warning that did not name the setting, once per client: again at "
                   "every config load (each daemon reload), for JFrog and for each Vault store.",
        "The warnings name jfrog.tls_verify / backends.<store>.tls_verify (or --insecure-tls) and are logged once "
        "per process and setting (rotator.core.http_env.warn_verify_off).", "4a38189"),
    Bug("secrets", "A dockerconfigjson value's auth field (base64 of user:token) appeared in botocore's DEBUG "
                   "response logs: neither registered nor token-shaped.",
        "rotator.core.redact also masks a value under the name auth (not a config key such as backends.x.auth); "
        "values under a secret's name are masked only when they hold a digit, so messages naming jfrog.access_token "
        "stay readable.", "24d7c22"),
]
