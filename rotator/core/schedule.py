"""Schedule maths: when a target is next due. Pure functions, no I/O."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from rotator.core.target import Schedule


def next_due(schedule: Schedule, issued_at: datetime | None, expires_at: datetime | None,
             now: datetime) -> datetime | None:
    """When the token issued at ``issued_at`` should be replaced (``None``: never by this schedule).

    A target without a token (``issued_at is None``) is due at once. ``every`` counts from the
    issue time; ``cron`` is the first fire time after it; ``before_expiry`` is a duration or a
    fraction of the token's lifetime before ``expires_at``.
    """
    if issued_at is None:
        return now
    if schedule.kind == "every":
        return issued_at + timedelta(seconds=schedule.every or 0)
    if schedule.kind == "cron":
        from apscheduler.triggers.cron import CronTrigger

        trigger = CronTrigger.from_crontab(schedule.cron or "", timezone=schedule.timezone)
        fire = trigger.get_next_fire_time(None, issued_at.astimezone(trigger.timezone))
        return fire.astimezone(timezone.utc) if fire else None
    if expires_at is None:
        return None
    if schedule.before_expiry_fraction is not None:
        lifetime = (expires_at - issued_at).total_seconds()
        return expires_at - timedelta(seconds=lifetime * schedule.before_expiry_fraction)
    return expires_at - timedelta(seconds=schedule.before_expiry_seconds or 0)


def jittered(moment: datetime, jitter: int, rng: random.Random | None = None) -> datetime:
    """``moment`` plus a uniform random delay in ``[0, jitter]`` seconds."""
    if jitter <= 0:
        return moment
    return moment + timedelta(seconds=(rng or random).uniform(0, jitter))
