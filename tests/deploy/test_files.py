"""Every file of deploy/ is well formed: YAML parses (CloudFormation's short tags included), shell
scripts pass `bash -n`, Vault policies are accepted by OpenBao, JSON loads."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import yaml
from cfnlint.decode.cfn_yaml import load as load_cloudformation

from tests.deploy.shipped import DEPLOY

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
SCRIPTS = sorted(DEPLOY.rglob("*.sh"))
#: The policies (not the agent config; the Enterprise-only one OpenBao refuses, as its header says).
POLICIES = sorted(p for p in (DEPLOY / "vault").glob("*.hcl") if p.name not in ("agent-trigger.hcl",
                                                                             "jfrog-rotator-daemon-events-enterprise.hcl"))


def name(path) -> str:
    return path.relative_to(DEPLOY).as_posix()


def test_the_kit_is_all_there():
    assert len(YAML_FILES) >= 20 and len(SCRIPTS) == 3 and len(POLICIES) == 3


@pytest.mark.parametrize("path", YAML_FILES, ids=name)
def test_every_yaml_file_parses(path):
    text = path.read_text()
    if "AWSTemplateFormatVersion:" in text:
        assert load_cloudformation(str(path))["Resources"]
    else:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
        assert documents and all(isinstance(d, dict) for d in documents)


def test_a_broken_yaml_file_does_not_parse(tmp_path):
    broken = tmp_path / "x.yaml"
    broken.write_text("a: [1, 2\n")
    with pytest.raises(yaml.YAMLError):
        list(yaml.safe_load_all(broken.read_text()))


@pytest.mark.parametrize("path", SCRIPTS, ids=name)
def test_every_script_passes_bash_syntax_check(path):
    answer = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert answer.returncode == 0, answer.stderr


@pytest.mark.parametrize("path", POLICIES, ids=name)
def test_every_policy_is_accepted_by_openbao(openbao, path):
    policy = f"deploy-check-{uuid.uuid4().hex[:8]}"
    openbao.write_policy(policy, path.read_text())
    assert openbao.api("GET", f"sys/policies/acl/{policy}")["data"]["policy"] == path.read_text()


def test_openbao_refuses_a_broken_policy(openbao):
    with pytest.raises(RuntimeError, match="HTTP 400"):
        openbao.write_policy(f"deploy-check-{uuid.uuid4().hex[:8]}", 'path "secret/data/x" { capabilities = ["read" }')


def test_the_vendored_crd_schemas_load():
    for path in (DEPLOY.parent / "tests" / "deploy" / "crds").glob("*.json"):
        assert json.loads(path.read_text())["openAPIV3Schema"]["type"] == "object"


def test_every_checkov_waiver_says_why():
    """deploy/checkov.yaml: each skipped check has its own comment right above it."""
    lines = (DEPLOY / "checkov.yaml").read_text().splitlines()
    waivers = [i for i, line in enumerate(lines) if line.strip().startswith("- CKV")]
    assert waivers and yaml.safe_load("\n".join(lines))["skip-check"] == [lines[i].strip()[2:] for i in waivers]
    for i in waivers:
        comment = []
        while lines[i - 1 - len(comment)].strip().startswith("#"):
            comment.append(lines[i - 1 - len(comment)])
        assert len(" ".join(comment)) > 80, lines[i]  # the resource and the reason
