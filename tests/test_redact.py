"""The one redaction helper: registered secrets and token-shaped strings never leave the process."""

import logging
import uuid

from rotator.core.redact import REDACTED, RedactingFilter, register, scrub


def test_registered_secret_of_any_shape_is_masked():
    refresh = str(uuid.uuid4())
    register(refresh)
    assert scrub(f"refresh failed for {refresh}!") == f"refresh failed for {REDACTED}!"


def test_jwt_shaped_text_is_masked_without_registration():
    jwt = "eyJ2ZXIiOiIyIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    assert scrub(f"token={jwt} end") == f"token={REDACTED} end"


def test_reference_token_and_vault_token_are_masked():
    ref = "cmVmdGtuOjAxOjAwMDAwMDAwMDA6" + "a" * 36
    vault = "hvs." + "A" * 24
    assert ref not in scrub(ref) and vault not in scrub(f"X-Vault-Token: {vault}")


def test_short_values_are_not_registered():
    register("abc")
    assert scrub("abc") == "abc"


def test_token_ids_stay_readable():
    token_id = str(uuid.uuid4())
    assert scrub(f"revoked {token_id}") == f"revoked {token_id}"


def test_filter_scrubs_message_args_and_exception():
    secret = "s3cr3t-" + uuid.uuid4().hex
    register(secret)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "value %s", (secret,), None)
    try:
        raise RuntimeError(f"boom {secret}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    assert secret not in record.getMessage()
    assert secret not in record.exc_text
    assert "boom" in record.exc_text


def test_every_log_record_is_scrubbed_at_creation(caplog):
    refresh = str(uuid.uuid4())
    register(refresh)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("botocore.parsers").debug("Response body:\n%s", f'{{\\"refresh_token\\": \\"{refresh}\\"}}')
    assert refresh not in caplog.text and REDACTED in caplog.text


def test_registered_secret_with_punctuation_is_masked_inside_words():
    password = "p@ss:w0rd!" + uuid.uuid4().hex[:6]
    register(password)
    assert scrub(f"user=admin&password={password}&x=1") == f"user=admin&password={REDACTED}&x=1"


def test_registered_word_secret_is_masked_next_to_punctuation():
    secret = uuid.uuid4().hex
    register(secret)
    assert scrub(f"({secret}).") == f"({REDACTED})."
