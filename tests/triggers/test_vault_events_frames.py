"""Recorded Vault Enterprise event frames (docs and 1.15+ CloudEvents shape) are parsed."""

from __future__ import annotations

import json
from types import SimpleNamespace

from rotator.triggers.vault_events import EventListener, event_path, target_for

# Vault 1.13 docs (hashicorp/vault#19243)
FRAME_113 = {"event": {"id": "a3be9fb1-b514-519f-5b25-b6f144a8c1ce",
                       "metadata": {"current_version": "2", "oldest_version": "0", "path": "data/jfrog/ci"}},
             "eventType": "kv-v2/data-write",
             "pluginInfo": {"mountClass": "secret", "mountAccessor": "kv_5dc4d18e", "mountPath": "secret/",
                            "plugin": "kv"},
             "timestamp": "2023-03-02T19:25:33.520637-08:00"}
# Vault 1.15+ with ?json=true: a CloudEvents envelope
FRAME_CLOUDEVENT = {"id": "901f2bb4-4a6e-a79f-0c7b-8b0d2b2c4a5d", "source": "vault://node-1", "specversion": "1.0",
                    "type": "*", "datacontentype": "application/cloudevents", "time": "2026-11-27T21:00:00Z",
                    "data": {"event": {"id": "901f2bb4", "metadata": {
                        "current_version": "5", "data_path": "secret/data/jfrog/ci", "modified": "true",
                        "oldest_version": "1", "operation": "data-write", "path": "data/jfrog/ci"}},
                             "event_type": "kv-v2/data-write",
                             "plugin_info": {"mount_class": "secret", "mount_accessor": "kv_1", "mount_path": "secret/",
                                             "plugin": "kv", "version": "v0.19.0"}}}
FRAME_PATCH = {"data": {"event": {"metadata": {"data_path": "secret/metadata/jfrog-rotator-requests/ci/r-1",
                                               "operation": "metadata-patch"}},
                        "event_type": "kv-v2/metadata-patch", "plugin_info": {"mount_path": "secret/"}}}


def test_event_path_of_the_113_frame():
    assert event_path(json.dumps(FRAME_113)) == ("secret", "jfrog/ci")


def test_event_path_of_a_cloudevents_frame():
    assert event_path(FRAME_CLOUDEVENT) == ("secret", "jfrog/ci")


def test_event_path_from_data_path_only():
    assert event_path(FRAME_PATCH) == ("secret", "jfrog-rotator-requests/ci/r-1")


def test_unrelated_or_broken_frames_are_ignored():
    assert event_path("not json") is None
    assert event_path({"data": {"event": {"metadata": {"path": "config"}}}}) is None
    assert event_path([1, 2]) is None


class FakeDaemon:
    """What the listener uses of rotator.ops.control.DaemonControl: the config and reconcile_now."""

    def __init__(self):
        backend = SimpleNamespace(events=True, mount="secret", request_prefix="jfrog-rotator-requests",
                                  event_subscription=lambda event_type: ("ws://127.0.0.1:9/unused", {}))
        targets = [SimpleNamespace(name="ci", backend="vault-main", path="jfrog/ci")]
        self.config = SimpleNamespace(backends={"vault-main": backend}, targets=targets,
                                      by_name={t.name: t for t in targets})
        self.woken: list[str] = []

    def reconcile_now(self, name: str) -> bool:
        self.woken.append(name)
        return True


def test_frames_map_to_targets_and_wake_them():
    daemon = FakeDaemon()
    assert target_for(daemon, "vault-main", "secret", "jfrog/ci") == "ci"
    assert target_for(daemon, "vault-main", "other", "jfrog/ci") is None
    assert target_for(daemon, "vault-main", "secret", "jfrog/unknown") is None
    listener = EventListener(daemon, "vault-main", "kv-v2/data-write")
    assert listener.handle(json.dumps(FRAME_CLOUDEVENT)) == "ci"
    assert listener.handle(FRAME_PATCH) == "ci"
    assert listener.handle(json.dumps({"data": {"event": {"metadata": {"path": "data/elsewhere"}},
                                                "plugin_info": {"mount_path": "secret/"}}})) is None
    assert daemon.woken == ["ci", "ci"]
