"""Bugs the bad-input suite found (tests/reliability/test_bad_input.py), each with its fix commit."""

from __future__ import annotations

from tests.reliability.bugs import Bug

S = "bad-input"

BUGS = [
    Bug(S, "A YAML alias bomb (ten levels of ten aliases) loaded, and its expansion in an error message's repr took 14 GB.",
        "The config loader counts values with every alias expanded (at most 2,000,000, each shared node measured once) "
        "and refuses more with a message naming the aliases; bad values are shown cut in messages.", "187881d"),
    Bug(S, "A JSON config nested 100,000 levels deep ended in 'unexpected error: RecursionError' (exit 1).",
        "Configs nested more than 64 levels are refused (exit 2), by an iterative walk.", "187881d"),
    Bug(S, "A list as a YAML key ('? [a, b]') ended in 'unexpected error: TypeError: unhashable type' (exit 1).",
        "The loader refuses a key that is not plain text, naming the line.", "187881d"),
    Bug(S, "Durations took non-ASCII digits ('٣d' loaded as 3 days) and had no upper bound (10^23 weeks loaded, then "
           "overflowed the first date computed from it).",
        "Durations take ASCII digits only and at most 100 years.", "187881d"),
    Bug(S, "Target paths '', '/abs', '../x', 'a/./b' and control characters passed check-config; the file store "
           "refused them only at the first rotation, as a store failure (exit 1).",
        "A target's and an output's path are checked at load (exit 2, naming targets[i].path and the problem).",
        "187881d"),
    Bug(S, "daemon.listen with a port above 65535, daemon.sweep_interval 0, jfrog.timeout 0 and a before_expiry "
           "window longer than the token lives (due at every check: a mint storm) all passed check-config.",
        "Each is refused at load with a message naming the key.", "187881d"),
    Bug(S, "A non-numeric or negative Content-Length crashed the operations endpoint's handler (no answer, a "
           "traceback on stderr).", "Answered 400 before anything is read.", "aa515d9"),
    Bug(S, "A huge Content-Length held the handler thread reading; a body over 1 MiB was read in part and the rest "
           "parsed as the next request; a chunked body was left on the connection.",
        "413 over 64 KiB and 411 for Transfer-Encoding, answered unread with the connection closed; a 10 s socket "
        "timeout per request.", "aa515d9"),
    Bug(S, "PATCH, HEAD, OPTIONS or any other method got http.server's 501 HTML page (a 5xx for a client's mistake).",
        "Every method is dispatched: 405 (or 404) in JSON; HEAD gets no body.", "aa515d9"),
    Bug(S, "An X-Vault-Token with control characters was sent to Vault and the trigger answered 502 (as if Vault "
           "had failed).", "A token that is not printable ASCII of at most 4096 characters is answered 401 "
        "without asking Vault.", "aa515d9"),
    Bug(S, "The Lambda took a ClientRequestToken of any text (it becomes the rotation id in the description tag "
           "jfrog-rotator:<target>:<id>, where ':' and '*' matter) and a SecretId of any length.",
        "Both are checked against what Secrets Manager sends (32-64 letters, digits, '-'; 2048 characters) "
        "before anything is read.", "70add49"),
    Bug(S, "JFrog answering a create with null, [], {} or a token without an id made VERIFY retry an empty token "
           "id five times; an expires_in of 'soon' ended in 'unexpected error: ValueError'.",
        "A create or refresh answer that is not a token (no access_token/token_id string, not a JWT, a "
        "non-numeric expires_in) is refused at MINT naming the call.", "9fef55d"),
    Bug(S, "A /tokens/me answer naming no token (null, [], {}, {\"errors\": \"x\"}) passed VERIFY, so an unchecked "
           "token was stored.", "VERIFY needs the answer to name the new token's id.", "9fef55d"),
    Bug(S, "A token list whose entries are not objects ended in 'unexpected error: AttributeError'; one that is no "
           "list ({\"tokens\": 5}, null) was taken as 'no tokens'.",
        "list tokens refuses an answer that is not a list of objects with a token_id, naming the call.", "9fef55d"),
    Bug(S, "A JFrog error body of megabytes was printed whole in the error line.",
        "Error messages show at most 2000 characters of a body (scrubbed whole first); deep JSON bodies no longer "
        "raise RecursionError.", "9fef55d"),
    # Also found here: the tls_verify: false warnings did not name the setting. The secrets suite found it
    # too; its fix (4a38189: once per process, naming the setting) is the one kept at the merge.
    Bug(S, "A stored value that is not a usable record (broken JSON, wrong types, another target's record, a dead "
           "token, binary) made rotate exit 1, a remote failure, not 2; status called another target's record 'ok'.",
        "rotate exits 2 when every failure is an unusable stored value (left untouched); status reports another "
        "target's record as an error.", "d8a5208"),
    Bug(S, "A JFrog answer nested past Python's recursion limit ('[[[[...', status 200) ended in 'unexpected error: "
           "RecursionError' (exit 1) instead of an error naming the call.",
        "The client reads it as an answer that is not JSON, naming the call.", "b33b304"),
    Bug(S, "URLs that cannot be parsed ('http://[::1' as jfrog.url, a Vault url or an AWS endpoint_url), an AWS "
           "region 'bad region!' and a file store directory with a NUL passed check-config, then ended in "
           "'unexpected error: ValueError' (or InvalidRegionError), exit 1; a port of 99999 failed at the first call.",
        "URLs, the AWS region, the file store's directory and a Vault mount are checked at load (exit 2, naming "
        "the key).", "6545da9"),
    Bug(S, "Command lines that cannot work ran or crashed: 'daemon --shutdown-timeout -5' started a daemon; "
           "'emulator --port 99999' and 'atc --url http://[::1' ended in 'unexpected error' (exit 1).",
        "Each is refused as bad usage (exit 2) naming the flag.", "e42aecf"),
    Bug(S, "An HTTP trigger whose body is JSON nested past Python's recursion limit answered 500 and logged a "
           "traceback.", "Such a body is taken as no reason, like any body that is not JSON.", "d29ecb2"),
    Bug(S, "'-c' naming a binary file ended in 'unexpected error: UnicodeDecodeError' (exit 1), and one naming a "
           "huge file (a log, /dev/zero) was read whole into memory.",
        "The config file is read bounded (64 MiB) and decoded with a message naming the byte (exit 2).",
        "c348441"),
    Bug(S, "The Lambda took a JFROG_URL or SECRETS_MANAGER_ENDPOINT that cannot be parsed (an open IPv6 bracket, a "
           "port of 99999); its steps then failed with a bare ValueError from inside requests or botocore.",
        "Both are checked when the settings are read: a setup error naming the variable.", "8a1a7bd"),
    Bug(S, "'sweep' of a target whose stored value is not usable exited 1 (a remote failure), not 2 (bad input).",
        "sweep exits 2 when every failure is an unusable stored value, like rotate.", "320a253"),
]
