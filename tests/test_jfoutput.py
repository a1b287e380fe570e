"""Go-compatible rendering of jf atc output: JSON order/escaping, %v floats, tabwriter."""

import pytest

from rotator.cli.jf_output import go_float, render_http_error_json, render_token_json, render_token_table, tabwrite
from rotator.jfrog.gojson import go_json


@pytest.mark.parametrize(
    "value,text",
    [(31536000, "3.1536e+07"), (3600, "3600"), (604800, "604800"), (1000000, "1e+06"),
     (2592000, "2.592e+06"), (0.5, "0.5"), (0.0001, "0.0001"), (0.00001, "1e-05"), (0, "0"), (-86400, "-86400")],
)
def test_go_float_matches_percent_v(value, text):
    assert go_float(value) == text


def test_go_json_escapes_html_characters_and_keeps_utf8():
    assert go_json({"d": "a<b>&c é"}, indent=None) == '{"d":"a\\u003cb\\u003e\\u0026c é"}'


def test_token_json_drops_unknown_and_empty_fields_in_struct_order():
    raw = {"token_id": "id1", "access_token": "AT", "expires_in": 60, "scope": "s", "token_type": "Bearer",
           "description": "dropped", "refreshable": False, "reference_token": ""}
    assert render_token_json(raw) == (
        '{\n  "scope": "s",\n  "access_token": "AT",\n  "expires_in": 60,\n'
        '  "token_type": "Bearer",\n  "token_id": "id1"\n}'
    )


def test_token_json_omits_expires_in_for_non_expiring():
    assert "expires_in" not in render_token_json({"access_token": "AT", "token_id": "i"})


def test_table_truncates_token_and_prints_numbers_like_go():
    raw = {"access_token": "A" * 50, "token_id": "id", "expires_in": 31536000, "scope": "s",
           "token_type": "Bearer", "refreshable": True, "refresh_token": "r"}
    assert render_token_table(raw) == (
        "FIELD          VALUE\n"
        f"access_token   {'A' * 40}...\n"
        "token_id       id\n"
        "expires_in     3.1536e+07\n"
        "scope          s\n"
        "token_type     Bearer\n"
        "refreshable    true\n"
        "refresh_token  r\n"
    )


def test_tabwrite_pads_all_but_last_column_by_two():
    assert tabwrite([("a", "bb", "c"), ("aaa", "b", "c")]) == "a    bb  c\naaa  b   c\n"


def test_http_error_json_sorts_keys():
    out = render_http_error_json(403, "Forbidden", '{"errors":[{"message":"no","code":"FORBIDDEN"}]}')
    assert out == (
        '{\n  "body": {\n    "errors": [\n      {\n        "code": "FORBIDDEN",\n'
        '        "message": "no"\n      }\n    ]\n  },\n  "status": "403 Forbidden",\n  "status_code": 403\n}'
    )
