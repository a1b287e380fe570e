"""The token in an admin secret: a bare value, JSON with ``access_token`` (our records) or ``token``."""

from __future__ import annotations

import json

import pytest

from rotator.core.token_value import token_in

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


@pytest.mark.parametrize("text", [JWT, f"  {JWT}\n", json.dumps({"access_token": JWT, "token_id": "t-1"}),
                                  json.dumps({"token": JWT}), json.dumps({"access_token": JWT, "note": "ops"})])
def test_the_token_is_found(text):
    assert token_in(text) == JWT


@pytest.mark.parametrize("text", [None, "", "   \n", "{}", "{not json", json.dumps({"access_token": "  "}),
                                  json.dumps({"access_token": 42}), json.dumps([JWT])])
def test_no_token_is_none(text):
    assert token_in(text) is None
