"""The README's config example is a valid config (docs that a user pastes must work)."""

import re
from pathlib import Path

from rotator.config import load_config

README = Path(__file__).resolve().parents[1] / "README.md"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


def test_readme_rotator_config_loads(tmp_path):
    [config] = [b for b in yaml_blocks() if b.startswith("# rotator.yaml")]
    path = tmp_path / "rotator.yaml"
    path.write_text(config)
    loaded = load_config(path)
    assert [t.name for t in loaded.targets] == ["ci-deployer", "release-bot"]
    assert loaded.target("release-bot").strategy == "refresh"
    loaded.close()


def test_readme_daemon_section_loads(tmp_path):
    [daemon] = [b for b in yaml_blocks() if b.startswith("daemon:")]
    [config] = [b for b in yaml_blocks() if b.startswith("# rotator.yaml")]
    path = tmp_path / "rotator.yaml"
    path.write_text(config + daemon)
    loaded = load_config(path)
    assert loaded.daemon.listen == "127.0.0.1:9464" and loaded.daemon.misfire_grace == 300
    loaded.close()


def test_kubernetes_example_config_loads(tmp_path):
    import yaml

    docs = list(yaml.safe_load_all((README.parent / "deploy/kubernetes/daemon.yaml").read_text()))
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    path = tmp_path / "rotator.yaml"
    path.write_text(config_map["data"]["rotator.yaml"])
    loaded = load_config(path)
    assert loaded.targets[0].schedule.jitter == 600
    loaded.close()
