"""deploy/iam and deploy/aws: cfn-lint on every CloudFormation template of the kit, the daemon's
policy (a comment per statement, no wildcard where AWS allows a resource, tag conditions on the
condition keys Secrets Manager has), every call the daemon's store really makes granted by it, and
the quick start's parameters accepted by the templates they are given to."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.client import BaseClient
from cfnlint.decode.cfn_yaml import load

from rotator.cli import run
from tests.deploy.shipped import DEPLOY, quickstart_lines
from tests.fixtures.moto_server import aws_env

IAM = DEPLOY / "iam" / "jfrog-rotator-daemon.yaml"
SAM = DEPLOY / "aws" / "template.yaml"
TEMPLATES = sorted(p for p in DEPLOY.rglob("*.yaml") if "AWSTemplateFormatVersion:" in p.read_text())
POLICIES = json.loads((Path(__import__("cfnlint").__file__).parent / "data" / "AdditionalSpecs" / "Policies.json").read_text())


def test_the_kit_has_two_templates():
    assert [p.relative_to(DEPLOY).as_posix() for p in TEMPLATES] == ["aws/template.yaml", "iam/jfrog-rotator-daemon.yaml"]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_cfn_lint_finds_nothing(template):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    answer = subprocess.run([str(cfn_lint), "--format", "parseable", str(template)], capture_output=True, text=True,
                            timeout=300)
    assert answer.returncode == 0, answer.stdout + answer.stderr


def test_cfn_lint_would_see_a_misspelt_action(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(IAM.read_text().replace("secretsmanager:PutSecretValue", "secretsmanager:PutSecretValu", 1))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    answer = subprocess.run([str(cfn_lint), "--format", "parseable", str(bad)], capture_output=True, text=True, timeout=300)
    assert answer.returncode != 0 and "putsecretvalu" in answer.stdout


# -- the daemon's policy ------------------------------------------------------------------------
def statements(condition_values: dict[str, bool] | None = None) -> list[dict]:
    """The policy's statements, with each !If resolved by ``condition_values`` (all true by default)."""
    policy = load(str(IAM))["Resources"]["DaemonPolicy"]["Properties"]["PolicyDocument"]
    out = []
    for statement in policy["Statement"]:
        if "Fn::If" in statement:
            name, then, _ = statement["Fn::If"]
            if not (condition_values or {}).get(name, True):
                continue
            statement = then
        out.append(statement)
    return out


def actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else list(statement["Action"])


def test_every_statement_has_a_sid_and_a_comment_above_it():
    lines = IAM.read_text().splitlines()
    sids = [s["Sid"] for s in statements()]
    assert len(sids) == len(set(sids)) == 8
    for sid in sids:
        [at] = [i for i, line in enumerate(lines) if line.strip() == f"- Sid: {sid}" or line.strip() == f"Sid: {sid}"]
        above = at - 1
        while lines[above].strip().startswith(("- !If", "- ", "!If")) and not lines[above].strip().startswith("#"):
            above -= 1
        assert lines[above].strip().startswith("#"), sid


def test_wildcards_only_where_aws_has_no_resource_level_permission():
    specs = {service: {a: bool(v.get("Resources")) for a, v in spec["Actions"].items()} for service, spec in POLICIES.items()}
    for statement in statements():
        assert statement["Effect"] == "Allow"
        for action in actions(statement):
            service, _, name = action.partition(":")
            assert "*" not in action and name.lower() in specs[service], action
            if statement["Resource"] == "*":
                assert not specs[service][name.lower()], f"{action} can be limited to a resource"
            else:
                assert specs[service][name.lower()], f"{action} takes no resource"
    [star] = [s for s in statements() if s["Resource"] == "*"]
    assert actions(star) == ["secretsmanager:ListSecrets"]


def test_secret_statements_are_limited_to_the_prefix_and_the_rotators_tag():
    known = POLICIES["secretsmanager"]["Resources"]["secret"]["ConditionKeys"]
    keys = [k.replace("${TagKey}", "*").replace("tag-key", "*") for k in known]
    by_sid = {s["Sid"]: s for s in statements()}
    for sid in ("RotateManagedSecrets", "CreateManagedSecrets", "TagWithTheRotatorsKeysOnly", "AdoptUntaggedSecrets"):
        resource = by_sid[sid]["Resource"]["Fn::Sub"]
        assert resource.endswith(":secret:${SecretNamePrefix}*"), sid
        for operator, conditions in by_sid[sid]["Condition"].items():
            for key in conditions:
                assert any(fnmatch.fnmatchcase(key, pattern) for pattern in keys), (sid, key)
    assert by_sid["RotateManagedSecrets"]["Condition"] == {
        "StringEquals": {"secretsmanager:ResourceTag/managed-by": "jfrog-token-rotator"}}
    assert by_sid["CreateManagedSecrets"]["Condition"]["StringEquals"] == {"aws:RequestTag/managed-by": "jfrog-token-rotator"}
    for sid in ("CreateManagedSecrets", "TagWithTheRotatorsKeysOnly"):
        assert by_sid[sid]["Condition"]["ForAllValues:StringLike"] == {"aws:TagKeys": ["managed-by", "jfrog-rotator:*"]}
    assert by_sid["AdoptUntaggedSecrets"]["Condition"] == {"Null": {"secretsmanager:ResourceTag/managed-by": "true"}}
    assert by_sid["KeepTheLeaderLease"]["Resource"]["Fn::Sub"].endswith(":secret:${LeaseSecretName}-??????")
    assert by_sid["UseTheSecretsKeyThroughSecretsManager"]["Condition"]["StringEquals"]["kms:ViaService"]
    # Adoption is off unless asked for.
    assert load(str(IAM))["Parameters"]["AllowAdoption"]["Default"] == "false"
    assert "AdoptUntaggedSecrets" not in {s["Sid"] for s in statements({"Adopts": False})}


def test_the_irsa_trust_names_one_service_account_and_sts():
    role = load(str(IAM))["Resources"]["DaemonRole"]
    trust = json.loads(role["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"])
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {"StringEquals": {
        "${EksOidcProvider}:sub": "system:serviceaccount:${Namespace}:${ServiceAccount}",
        "${EksOidcProvider}:aud": "sts.amazonaws.com"}}
    assert role["Condition"] == "HasOidcProvider" and role["Properties"]["ManagedPolicyArns"] == [{"Ref": "DaemonPolicy"}]


def test_every_call_the_store_makes_is_granted(moto_server, emulator, tmp_path, monkeypatch):
    """Rotate twice, sweep, status and check-config --online against moto over HTTP, recording each
    Secrets Manager operation botocore sends: each one is an action of the policy (on a secret under
    the prefix, or ListSecrets)."""
    aws_env(monkeypatch)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("ci-deployer")
    called: list[str] = []
    original = BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        if self.meta.service_model.service_name == "secretsmanager":
            called.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    config = tmp_path / "rotator.yaml"
    name = f"jfrog/{uuid.uuid4().hex[:8]}"
    config.write_text(f"jfrog: {{url: '{emulator.url}', access_token_env: JFROG_ADMIN_TOKEN}}\n"
                      f"backends:\n  aws: {{type: aws-secretsmanager, region: us-east-1, endpoint_url: '{moto_server.url}'}}\n"
                      f"targets:\n  - {{name: ci-deployer, backend: aws, path: {name}, overlap: 0s,\n"
                      f"     token: {{username: ci-deployer, expiry: 7d}}}}\n")
    for argv in (["rotate", "--all"], ["rotate", "--all"], ["sweep"], ["status"], ["check-config", "--online"]):
        assert run([argv[0], "-c", str(config), *argv[1:]]) == 0, argv
    granted = {a.partition(":")[2] for s in statements() if s["Sid"] != "KeepTheLeaderLease" for a in actions(s)}
    assert {"CreateSecret", "PutSecretValue", "UpdateSecretVersionStage", "GetSecretValue", "ListSecrets"} <= set(called)
    assert set(called) <= granted, set(called) - granted


# -- the SAM template's IAM-exchange variant, and the quick start's parameters -------------------
def overrides(start: str) -> dict[str, str]:
    """``--parameter-overrides K=V ...`` of the quick-start command line that starts with ``start``."""
    [line] = [line for line in quickstart_lines() if line.startswith(start)]
    words = shlex.split(line)
    values = words[words.index("--parameter-overrides") + 1:]
    return dict(w.split("=", 1) for w in values if "=" in w and not w.startswith("--"))


def check_parameters(template: Path, given: dict[str, str]) -> None:
    parameters = load(str(template))["Parameters"]
    for key, value in given.items():
        assert key in parameters, key
        spec = parameters[key]
        if "AllowedValues" in spec:
            assert value in spec["AllowedValues"], (key, value)
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), (key, value)
    missing = [k for k, spec in parameters.items() if "Default" not in spec and k not in given]
    assert missing == [], missing


def test_the_quick_starts_sam_deploy_is_the_iam_variant_without_an_admin_secret():
    given = overrides("sam deploy")
    check_parameters(SAM, given)
    assert given["JFrogAuth"] == "aws-iam" and "AdminSecretArn" not in given
    template = load(str(SAM))
    # With no AdminSecretArn, HasAdminSecret is false: the role reads no other secret.
    role = template["Resources"]["RotationFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    kept = [s for s in role if "Fn::If" not in s] + [s["Fn::If"][1] for s in role if "Fn::If" in s
                                                      and s["Fn::If"][0] != "HasAdminSecret"]
    reads = [s for s in kept if "secretsmanager:GetSecretValue" in actions(s)]
    assert [s["Resource"] for s in reads] == [{"Ref": "TokenSecret"}]
    [line] = [line for line in quickstart_lines() if line.startswith("aws cloudformation describe-stacks")]
    output = re.search(r"OutputKey=='(\w+)'", line).group(1)
    assert template["Outputs"][output]["Value"] == {"Fn::GetAtt": ["RotationFunctionRole", "Arn"]}


def test_the_quick_starts_iam_stack_parameters_exist():
    given = overrides("aws cloudformation deploy")
    check_parameters(IAM, given)
    assert re.fullmatch(r"oidc\.eks\.[a-z0-9-]+\.amazonaws\.com/id/\w+", given["EksOidcProvider"])
    [line] = [line for line in quickstart_lines() if line.startswith("aws cloudformation deploy")]
    words = shlex.split(line)
    assert DEPLOY.parent / words[words.index("--template-file") + 1] == IAM
