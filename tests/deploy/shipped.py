"""What deploy/ ships, for the deploy tests: the rotator configs in it, loaded with the real loader,
and the Kubernetes objects as kustomize renders them."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import render_manifests
from rotator.config import Config, load_config
from rotator.core.options import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
#: Every rotator config the deploy kit ships (each kustomization's rotator.yaml).
CONFIGS = sorted(KUBERNETES.rglob("rotator.yaml"))
#: The loader's answer to ``daemon.leader`` before the leader lease (issue 11) is merged.
LEADER_UNKNOWN = re.compile(r": daemon\.leader: unknown key \(")


def load_shipped(text: str, tmp_path: Path, *, name: str = "rotator.yaml") -> tuple[Config, bool]:
    """Load a shipped config with the real loader: ``(config, leader_known)``. Until the loader knows
    ``daemon.leader`` (the leader lease, built beside this kit), that one key is refused; then the
    rest is loaded without it, and ``leader_known`` is False. Any other error fails."""
    path = tmp_path / name
    path.write_text(text)
    try:
        return load_config(path), True
    except ConfigError as exc:
        if not LEADER_UNKNOWN.search(str(exc)):
            raise
    path.write_text("\n".join(line for line in text.splitlines() if not line.strip().startswith("leader:")) + "\n")
    return load_config(path), False


def leader_pending() -> None:
    pytest.xfail("daemon.leader is not a config key yet: the leader lease (issue 11) is built on another branch")


@functools.cache
def rendered(directory: Path) -> tuple[dict[str, Any], ...]:
    return tuple(render_manifests.render(directory))


def one(objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [o["kind"] for o in objects])
    return found[0]


def config_text(objects) -> str:
    """rotator.yaml as the pods see it: the ConfigMap mounted at /etc/jfrog-rotator."""
    deployment = one(objects, "Deployment", "jfrog-rotator")
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    return one(objects, "ConfigMap", volume["configMap"]["name"])["data"]["rotator.yaml"]


def example(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((KUBERNETES / "examples" / name).read_text()) if d]


QUICKSTART = ROOT / "docs" / "quickstart.md"


def quickstart_lines(text: str | None = None) -> list[str]:
    """The command lines of docs/quickstart.md's bash blocks (or of ``text``, a part of it),
    continuation lines joined, comments and blank lines dropped, a heredoc shortened to its first line."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text or QUICKSTART.read_text(), flags=re.S):
        block = re.sub(r"<<'YAML'\n.*?\nYAML\n", "<<'YAML' ... YAML\n", block, flags=re.S)
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(" ".join(line.split()))
    return lines


def quickstart_line(start: str) -> str:
    """The quick-start command line that starts with ``start`` (it may be shown in several
    sections, always the same)."""
    found = {line for line in quickstart_lines() if line.startswith(start)}
    assert len(found) == 1, (start, found)
    return found.pop()


def quickstart_command(start: str) -> list[str]:
    import shlex

    return shlex.split(quickstart_line(start))


def secret_as_mounted(argv: list[str], cwd: Path, mount: Path) -> dict[str, str]:
    """``kubectl create secret generic ... --from-file=KEY=PATH``, then its keys as the files a pod
    sees where it is mounted. With kubectl: its own answer (``--dry-run=client -o json``, no
    cluster needed); without, the same reading of ``--from-file`` done here."""
    import base64
    import json
    import shutil
    import subprocess

    if shutil.which("kubectl"):
        answer = subprocess.run([*argv, "--dry-run=client", "-o", "json"], cwd=cwd, capture_output=True, text=True,
                                timeout=60, check=True)
        data = {k: base64.b64decode(v).decode() for k, v in json.loads(answer.stdout)["data"].items()}
    else:
        pairs = [a.split("=", 1)[1] for a in argv if a.startswith("--from-file=")]
        data = {key: (cwd / path).read_text() for key, path in (p.split("=", 1) for p in pairs)}
    mount.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        (mount / key).write_text(value)
    return data
