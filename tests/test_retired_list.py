"""The retired list in a store's metadata: compact entries over four keys of 250 characters, read
back exactly, expired tokens left out first when they do not all fit, and a list that would lose a
live token refused (docs/architecture.md, "The retired list in metadata")."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotator.core.record import (
    RETIRED_CHUNK,
    RETIRED_KEYS,
    RetiredOverflow,
    RetiredToken,
    SecretRecord,
    parse_retired,
    retired_entry,
    retired_from_metadata,
    retired_room,
    spread_retired,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def entry(hours: float, *, expires_in: float | None = 24, token_id: str | None = None) -> RetiredToken:
    return RetiredToken(token_id or str(uuid.uuid4()), NOW + timedelta(hours=hours),
                        NOW + timedelta(hours=expires_in) if expires_in is not None else None)


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1),
                       timezones=st.just(timezone.utc))
ids = st.one_of(st.uuids().map(str), st.from_regex(r"[A-Za-z0-9_.:-]{1,40}", fullmatch=True))


@given(token_id=ids, revoke_after=moments, expires_at=st.none() | moments)
def test_an_entry_reads_back_as_the_same_token_never_due_earlier(token_id, revoke_after, expires_at):
    [back] = parse_retired(retired_entry(RetiredToken(token_id, revoke_after, expires_at)))
    assert back.token_id == token_id
    assert revoke_after <= back.revoke_after < revoke_after + timedelta(seconds=1)  # rounded up: never revoked early
    if expires_at is None:
        assert back.expires_at is None
    else:
        assert expires_at - timedelta(seconds=1) < back.expires_at <= expires_at


def test_a_uuid_entry_takes_36_characters_and_uses_only_tag_characters():
    text = retired_entry(entry(1))
    assert len(text) == 36 and set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-@+")


def test_entries_written_before_the_compact_form_are_read():
    old = "59e39159-19eb-463d-953d-1d6baf567db6@2026-11-27T23:00:00Z"
    compact = retired_entry(entry(2, token_id="0f8fad5b-d9cb-469f-a165-70867728950e"))
    listed = parse_retired(f"{old} {compact}")  # AWS tags hold a space where Vault holds a comma
    assert [e.token_id for e in listed] == ["59e39159-19eb-463d-953d-1d6baf567db6", "0f8fad5b-d9cb-469f-a165-70867728950e"]
    assert listed[0].revoke_after == datetime(2026, 11, 27, 23, 0, tzinfo=timezone.utc) and listed[0].expires_at is None


def test_24_tokens_fit_the_four_keys_and_read_back_in_order():
    entries = [entry(i) for i in range(24)]
    spread, left_out = spread_retired(entries, now=NOW)
    assert left_out == () and set(spread) == set(RETIRED_KEYS)
    assert all(value is not None and len(value) <= RETIRED_CHUNK for value in spread.values())
    assert [e.token_id for e in retired_from_metadata(spread)] == [e.token_id for e in entries]
    retired_room(entries, now=NOW)  # no error


def test_a_short_list_leaves_the_other_keys_empty():
    spread, _ = spread_retired([entry(1)], now=NOW)
    assert spread["retired"] and spread["retired_2"] is None and spread["retired_4"] is None


def test_when_the_list_does_not_fit_expired_tokens_are_left_out_oldest_first():
    live = [entry(i) for i in range(22)]
    expired = [entry(-5, expires_in=-3), entry(-6, expires_in=-4), entry(-1, expires_in=-1)]
    spread, left_out = spread_retired([expired[0], *live[:10], expired[1], *live[10:], expired[2]], now=NOW)
    assert [e.token_id for e in left_out] == [expired[1].token_id]  # the one that expired first
    listed = {e.token_id for e in retired_from_metadata(spread)}
    assert {e.token_id for e in live} <= listed and expired[0].token_id in listed
    retired_room([*expired, *live], now=NOW)  # what is left out is expired: nothing live is lost


def test_a_list_that_would_lose_a_live_token_is_refused_naming_the_room():
    entries = [entry(i) for i in range(25)]
    with pytest.raises(RetiredOverflow, match=r"the metadata can list 24 retired tokens \(4 keys of 250 characters\) "
                                              r"and the list would hold 25"):
        retired_room(entries, now=NOW)
    _, left_out = spread_retired(entries, now=NOW)
    assert left_out == (entries[-1],)


def test_a_record_lists_what_fits_and_counts_them_all():
    retired = tuple(entry(i) for i in range(30))
    record = SecretRecord(access_token="a" * 40, token_id="cur", username="ci", scope="", url="https://acme.jfrog.io",
                          issued_at=NOW, expires_at=None, target="ci", retired=retired)
    metadata = record.metadata(now=NOW)
    assert metadata["retired_count"] == "30" and len(retired_from_metadata(metadata)) == 24
