"""Third-party stores plug in through the `jfrog_rotator.backends` entry-point group."""

from __future__ import annotations

import importlib
import textwrap

import pytest

from backends.base import SecretBackend, available_types, backend_class
from rotator.cli import run

MINI_STORE = '''
"""A tiny third-party store: values in a class-level dict, versions count up."""
from backends.base import CASConflict, StoredValue


class MemoryBackend:
    metadata_without_secret = True
    values = {}

    def __init__(self, name):
        self.name = name

    @classmethod
    def from_config(cls, name, options):
        options.str("label", "memory")
        return cls(name)

    def read(self, path):
        text, version, meta = self.values.get(path, (None, None, {}))
        return StoredValue(text, version, meta)

    def write(self, path, text, *, expected_version, metadata, rotation_id):
        _, version, meta = self.values.get(path, (None, None, {}))
        if version != expected_version:
            raise CASConflict("changed", backend=self.name, path=path)
        meta = {**meta, **{k: v for k, v in metadata.items() if v is not None}}
        self.values[path] = (text, (version or 0) + 1, meta)
        return (version or 0) + 1

    def read_metadata(self, path):
        return dict(self.values[path][2]) if path in self.values else None

    def patch_metadata(self, path, updates):
        text, version, meta = self.values[path]
        self.values[path] = (text, version, {**meta, **updates})

    def list_managed(self):
        return sorted(self.values)

    def check(self):
        return "memory store"

    def close(self):
        pass
'''


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """Install a test distribution (module + dist-info with an entry point) on sys.path."""
    site = tmp_path / "site"
    dist = site / "mini_store-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "mini_store.py").write_text(MINI_STORE)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mini-store\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[jfrog_rotator.backends]\nmini-memory = mini_store:MemoryBackend\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield
    monkeypatch.delitem(__import__("sys").modules, "mini_store", raising=False)


def test_entry_point_backend_is_discovered(plugin_dist):
    assert "mini-memory" in available_types()
    cls = backend_class("mini-memory")
    assert cls.__name__ == "MemoryBackend" and isinstance(cls("x"), SecretBackend)


def test_rotation_through_a_plugin_backend(plugin_dist, emulator, tmp_path, monkeypatch, cli_env, capsys):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("ci")
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}
        backends:
          mem: {{type: mini-memory, label: test}}
        targets:
          - {{name: ci, backend: mem, token: {{username: ci, expiry: 7d}}}}
        """))
    assert run(["rotate", "-c", str(cfg), "ci"]) == 0, capsys.readouterr().err
    from mini_store import MemoryBackend

    text, version, meta = MemoryBackend.values["ci"]
    assert version == 1 and meta["managed_by"] == "jfrog-token-rotator"
    assert emulator.authenticates(__import__("json").loads(text)["access_token"])


def test_plugin_options_are_validated_like_built_ins(plugin_dist, emulator, tmp_path, monkeypatch, cli_env, capsys):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(f'jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
                   "backends: {mem: {type: mini-memory, colour: red}}\n"
                   "targets: [{name: ci, backend: mem}]\n")
    assert run(["check-config", "-c", str(cfg)]) == 2
    assert "backends.mem.colour: unknown key" in capsys.readouterr().err


def test_a_plugin_store_without_a_lease_cannot_hold_the_leader_lease(plugin_dist, emulator, tmp_path, monkeypatch,
                                                                      cli_env, capsys):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(f'jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
                   "backends: {mem: {type: mini-memory}}\n"
                   "daemon: {leader: {backend: mem}}\n"
                   "targets: [{name: ci, backend: mem}]\n")
    assert run(["check-config", "-c", str(cfg)]) == 2
    assert ("daemon.leader.backend: backend 'mem' (type mini-memory) cannot hold a leader lease: use a vault "
            "(KV v2), aws-secretsmanager or file backend") in capsys.readouterr().err
