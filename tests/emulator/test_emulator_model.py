"""The state model on its own, without HTTP."""

from __future__ import annotations

import pytest

from rotator.emulator import AccessError, AccessModel, AccessPolicy, ManualClock, Principal
from rotator.emulator.validation import TokenRequest


def _admin(model: AccessModel) -> Principal:
    model.add_user("admin", admin=True)
    return Principal("admin", "applied-permissions/admin", True)


def test_policy_rejects_max_expiry_below_default():
    with pytest.raises(ValueError):
        AccessPolicy(default_expiry=7200, max_expiry=3600)


def test_policy_rejects_negative_values():
    with pytest.raises(ValueError):
        AccessPolicy(refresh_grace=-1)


def test_form_strings_become_typed_fields():
    req = TokenRequest.from_params({"expires_in": "60", "refreshable": "TRUE", "force_revocable": "false"})
    assert (req.expires_in, req.refreshable, req.force_revocable) == (60, True, False)


def test_empty_strings_mean_not_given():
    req = TokenRequest.from_params({"username": "", "scope": "", "expires_in": ""})
    assert (req.username, req.scope, req.expires_in) == (None, None, None)


def test_model_uses_the_injected_clock():
    clock = ManualClock(start=1_700_000_000)
    model = AccessModel(clock=clock)
    body = model.create_token(_admin(model), TokenRequest(expires_in=10_800))  # long enough to be stored
    info = model.get_token(Principal("admin", "applied-permissions/admin", True), body["token_id"])
    assert (info["issued_at"], info["expiry"]) == (1_700_000_000, 1_700_010_800)
    clock.advance(10_800)
    assert not model.is_token_active(body["token_id"])


def test_errors_carry_status_code_and_access_body():
    model = AccessModel()
    with pytest.raises(AccessError) as raised:
        model.refresh(_admin(model), TokenRequest(grant_type="refresh_token", refresh_token="nope"))
    assert raised.value.status == 404
    assert raised.value.body() == {
        "errors": [{"code": "NOT_FOUND", "message": "Token matching the provided refresh token was not found."}]
    }


def test_issuer_id_must_look_like_a_ulid():
    with pytest.raises(ValueError):
        AccessModel(issuer_id="NOT-A-VALID-ID")


def test_mint_count_is_atomic_under_concurrency():
    import threading

    model = AccessModel()
    admin = _admin(model)
    threads = [
        threading.Thread(target=lambda: [model.create_token(admin, TokenRequest()) for _ in range(5)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert model.mint_count == 20
    assert model.live_token_count() == 20
