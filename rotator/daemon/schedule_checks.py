"""Start-up sanity checks of the schedules: can a token expire before its next rotation?

See ``docs/configuration.md`` (schedules) and ``docs/daemon.md``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from rotator.config import Config, Target

log = logging.getLogger("rotator.daemon")


def warn_about_schedules(config: Config) -> None:
    """Log a warning for every target whose schedule may let its token expire."""
    for target in config.targets:
        problem = schedule_problem(target)
        if problem:
            log.warning("%s: %s", target.name, problem, extra={"target": target.name})


def schedule_problem(target: Target) -> str | None:
    """A warning when the schedule lets the token expire before its next rotation:
    interval + jitter >= expiry - overlap."""
    expiry = target.token.expiry
    schedule = target.schedule
    if not expiry:  # platform default (1 year) or never: nothing to compare with
        return None
    if schedule.kind == "every":
        gap = (schedule.every or 0) + schedule.jitter
    elif schedule.kind == "cron":
        gap = cron_max_gap(schedule.cron or "", schedule.timezone) + schedule.jitter
    else:
        window = (schedule.before_expiry_seconds if schedule.before_expiry_seconds is not None
                  else expiry * (schedule.before_expiry_fraction or 0))
        if schedule.jitter >= window:
            return (f"jitter {schedule.jitter}s is not shorter than the before_expiry window {window:.0f}s: "
                    "the token may expire before it is rotated")
        return None
    if gap >= expiry - target.overlap:
        return (f"schedule {schedule.describe()} (+{schedule.jitter}s jitter) can leave {gap}s between rotations, "
                f"but the token lives {expiry}s and the old one stays {target.overlap}s: it may expire before the "
                "next rotation")
    return None


def cron_max_gap(cron: str, tz: str, samples: int = 50) -> int:
    """The longest gap between consecutive fire times of a crontab line over its next ``samples`` fires."""
    trigger = CronTrigger.from_crontab(cron, timezone=tz)
    now = datetime.now(trigger.timezone)
    fire = trigger.get_next_fire_time(None, now)
    longest = 0
    for _ in range(samples):
        if fire is None:
            break
        following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if following is None:
            break
        longest = max(longest, int((following - fire).total_seconds()))
        fire = following
    return longest
