"""The rules of revision and metadata kept inside the record (KV v1 mount, file store): pure, no server."""

from __future__ import annotations

import pytest

from backends import inline_metadata as inline

RECORD = {"access_token": "x", "rotator": {"schema": 1, "revision": 4, "metadata": {"managed_by": "me", "n": 2}}}


def test_decode_reads_json_and_makes_invalid_text_an_empty_record():
    assert inline.decode('{"a": 1}') == {"a": 1}
    assert inline.decode("{not json") == {}


@pytest.mark.parametrize("record,expected", [
    (RECORD, 4),
    ({"rotator": {"revision": "7"}}, 7),
    ({"rotator": {"revision": -1}}, 0),
    ({"rotator": {"revision": True}}, 0),
    ({"rotator": {"revision": 2.5}}, 0),
    ({"rotator": {"revision": "abc"}}, 0),
    ({"rotator": "not an object"}, 0),
    ({"access_token": "x"}, 0),
    (["a", "list"], 0),
])
def test_revision_is_a_non_negative_integer_or_0(record, expected):
    assert inline.revision(record) == expected


def test_metadata_is_strings_and_empty_when_absent():
    assert inline.metadata(RECORD) == {"managed_by": "me", "n": "2"}
    assert inline.metadata({"rotator": {"metadata": {"gone": None}}}) == {"gone": ""}
    assert inline.metadata({"rotator": {"metadata": ["not", "a", "map"]}}) == {}
    assert inline.metadata({}) == {}


@pytest.mark.parametrize("expected,found,matches", [
    (None, None, True),    # create where nothing is
    (None, 0, False),      # create where a record (without revision) is
    (None, 3, False),
    (3, 3, True),
    ("3", 3, True),        # a version that went through text
    (2, 3, False),         # stale
    (0, 0, True),          # a record made by hand, read at revision 0
    (0, None, False),      # ... and deleted since it was read
    (3, None, False),
])
def test_revision_matches_only_the_stored_revision(expected, found, matches):
    assert inline.revision_matches(expected, found) is matches


def test_mismatch_names_both_revisions():
    assert inline.mismatch(2, 3) == "expected revision 2, found 3"
    assert inline.mismatch(2, None) == "expected revision 2, found no value"


def test_merge_metadata_adds_replaces_and_removes_with_none():
    assert inline.merge_metadata({"a": "1", "b": "2"}, {"b": "3", "a": None, "c": 4}) == {"b": "3", "c": "4"}


def test_next_record_of_a_new_target_is_revision_1_with_the_metadata():
    record, revision = inline.next_record(None, {"access_token": "t"}, {"managed_by": "me", "skip": None})
    assert revision == 1
    assert record == {"access_token": "t", "rotator": {"revision": 1, "metadata": {"managed_by": "me"}}}


def test_next_record_bumps_the_revision_merges_metadata_and_keeps_the_new_section():
    data = {"access_token": "new", "rotator": {"schema": 1, "target": "ci"}}
    record, revision = inline.next_record(RECORD, data, {"n": None, "token_id": "t2"})
    assert revision == 5
    assert record == {"access_token": "new", "rotator": {"schema": 1, "target": "ci", "revision": 5,
                                                         "metadata": {"managed_by": "me", "token_id": "t2"}}}
    assert RECORD["rotator"]["revision"] == 4, "the current record is not changed in place"


def test_next_record_as_a_metadata_patch_keeps_the_value():
    record, revision = inline.next_record(RECORD, RECORD, {"rotate_requested": "true"})
    assert revision == 5 and record["access_token"] == "x" and record["rotator"]["schema"] == 1
    assert inline.metadata(record) == {"managed_by": "me", "n": "2", "rotate_requested": "true"}


def test_next_record_over_a_section_that_is_not_an_object_starts_a_fresh_one():
    record, revision = inline.next_record({"rotator": "junk"}, {"rotator": "junk", "k": "v"}, {})
    assert (revision, record) == (1, {"k": "v", "rotator": {"revision": 1, "metadata": {}}})


def test_string_map_turns_keys_and_values_into_strings():
    assert inline.string_map({1: 2, "a": None}) == {"1": "2", "a": ""}
    assert inline.string_map("text") == {}
