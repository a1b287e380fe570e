"""The trigger modules import only downward: the CLI's ``trigger`` path loads no scheduler, and
neither the triggers nor the ops endpoint load the daemon (they see it as ``DaemonControl``)."""

from __future__ import annotations

import pytest

from tests.fixtures.imports import modules_after_import


def test_trigger_command_path_loads_no_scheduler():
    loaded = modules_after_import("rotator.triggers.request")
    assert not {m for m in loaded if m.split(".")[0] == "apscheduler"}


@pytest.mark.parametrize("module", ["rotator.triggers.http", "rotator.triggers.reconcile",
                                    "rotator.triggers.vault_events", "rotator.ops.routes"])
def test_triggers_and_ops_do_not_load_the_daemon(module):
    loaded = modules_after_import(module)
    assert "rotator.daemon" not in loaded and "apscheduler" not in loaded
