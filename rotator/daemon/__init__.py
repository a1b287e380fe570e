"""``jfrog-rotator daemon``: rotates every target on its schedule until stopped.

How jobs work: each target has one APScheduler job whose trigger is a date (plus jitter): the
target's next due time, computed from what the store says (``rotator.core.schedule.next_due``).
When the job fires it checks again that the target is still due (another replica may have
rotated it meanwhile; the store is the truth), rotates through the engine, and schedules the
next run from the new state. So ``every`` counts from the last issue, ``cron`` fires at the
first slot after it, and ``before_expiry`` follows each new token's expiry. Several daemons on
one config therefore rotate each target once per due time; if two check at the same instant,
the engine's compare-and-set lets one win and the loser revokes its token. With
``daemon.leader`` the replicas elect one leader through a lease in the store instead, and only
the leader schedules, reconciles and sweeps (:mod:`.leadership`).

Signals: SIGTERM/SIGINT stop taking new work, let in-flight rotations finish (bounded), exit 0;
SIGHUP reloads the config (a bad one is refused and the old one keeps running).

Modules: :mod:`.service` (the daemon), :mod:`.target_job` (one run of a target's job),
:mod:`.schedule_checks` (start-up warnings), :mod:`.contacts` (what ``/readyz`` reports),
:mod:`.leadership` (the leader lease, fencing and claims of replicas).
See ``docs/daemon.md``.
"""

from rotator.daemon.contacts import Contact, Contacts
from rotator.daemon.schedule_checks import cron_max_gap, schedule_problem
from rotator.daemon.service import RotationDaemon
from rotator.daemon.target_job import TargetState

__all__ = ["Contact", "Contacts", "RotationDaemon", "TargetState", "cron_max_gap", "schedule_problem"]
