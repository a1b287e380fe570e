"""Schedule maths: next due time of each schedule kind, jitter bounds, and the start-up warning."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from rotator.core.schedule import jittered, next_due
from rotator.core.target import Schedule, Target
from rotator.core.token_spec import TokenSpec
from rotator.daemon import cron_max_gap, schedule_problem

T0 = datetime(2026, 11, 27, 22, 0, 0, tzinfo=timezone.utc)


def test_missing_token_is_due_now():
    assert next_due(Schedule("every", every=60), None, None, T0) == T0


def test_every_counts_from_issue_time():
    assert next_due(Schedule("every", every=3600), T0, T0 + timedelta(days=7), T0) == T0 + timedelta(hours=1)


def test_cron_is_first_slot_after_issue():
    schedule = Schedule("cron", cron="0 3 * * *")
    assert next_due(schedule, T0, None, T0) == datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)


def test_cron_honours_timezone():
    schedule = Schedule("cron", cron="0 3 * * *", timezone="Europe/Berlin")  # 03:00 CET = 02:00 UTC
    assert next_due(schedule, T0, None, T0) == datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)


def test_before_expiry_fraction_of_lifetime():
    schedule = Schedule("before_expiry", before_expiry_fraction=0.25)
    assert next_due(schedule, T0, T0 + timedelta(days=4), T0) == T0 + timedelta(days=3)


def test_before_expiry_duration():
    schedule = Schedule("before_expiry", before_expiry_seconds=7200)
    assert next_due(schedule, T0, T0 + timedelta(days=1), T0) == T0 + timedelta(hours=22)


def test_before_expiry_of_non_expiring_token_is_never():
    assert next_due(Schedule("before_expiry", before_expiry_fraction=0.25), T0, None, T0) is None


def test_jitter_stays_within_bounds():
    rng = random.Random(7)
    delays = [(jittered(T0, 300, rng) - T0).total_seconds() for _ in range(2000)]
    assert min(delays) >= 0 and max(delays) <= 300
    assert max(delays) > 250 and min(delays) < 50  # the whole range is used


def test_no_jitter_is_exact():
    assert jittered(T0, 0) == T0


def target(schedule: Schedule, expiry: int | None, overlap: int = 3600) -> Target:
    return Target(name="t", backend="b", path="t", token=TokenSpec(expiry=expiry), overlap=overlap,
                  schedule=schedule)


@pytest.mark.parametrize("schedule,expiry,overlap,warns", [
    (Schedule("every", every=86400), 7 * 86400, 3600, False),
    (Schedule("every", every=7 * 86400), 7 * 86400, 3600, True),
    (Schedule("every", every=6 * 86400, jitter=86400), 7 * 86400, 0, True),
    (Schedule("every", every=6 * 86400, jitter=3600), 7 * 86400, 3600, False),
    (Schedule("cron", cron="0 3 * * 1"), 7 * 86400, 3600, True),  # weekly cron vs 7-day token
    (Schedule("cron", cron="0 3 * * *"), 7 * 86400, 3600, False),
    (Schedule("before_expiry", before_expiry_seconds=600, jitter=900), 86400, 0, True),
    (Schedule("before_expiry", before_expiry_fraction=0.25), 86400, 3600, False),
    (Schedule("every", every=10 * 86400), None, 3600, False),  # platform default expiry: unknown here
])
def test_schedule_warning(schedule, expiry, overlap, warns):
    assert (schedule_problem(target(schedule, expiry, overlap)) is not None) is warns


def test_cron_max_gap():
    assert cron_max_gap("0 3 * * *", "UTC") == 86400
    assert cron_max_gap("0 3 * * 1,4", "UTC") == 4 * 86400
