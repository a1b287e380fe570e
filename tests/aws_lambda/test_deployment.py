"""What gets deployed: import cost of the handler, the SAM template (cfn-lint), the zip."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.fixtures.imports import modules_after_import

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "aws" / "template.yaml"
FORBIDDEN = ("hvac", "apscheduler", "yaml", "prometheus_client", "rotator.daemon", "rotator.config",
             "rotator.cli", "rotator.emulator", "backends.vault")


def test_importing_the_handler_loads_no_daemon_vault_or_yaml_code():
    loaded = modules_after_import("rotator.aws_lambda as m", check="assert m.handler is m.lambda_handler")
    bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert bad == []


def test_importing_the_handler_creates_no_client():
    code = ("import rotator.aws_lambda as m\n"
            "c = m.container.current()\n"
            "print(c.secrets_manager is None and c.jfrog_client is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert out.strip() == "True"


def test_cfn_lint_finds_no_error_in_the_sam_template():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    answer = subprocess.run([str(cfn_lint), "--format", "parseable", str(TEMPLATE)], capture_output=True,
                            text=True, timeout=300)
    assert answer.returncode == 0, answer.stdout + answer.stderr


def test_the_template_wires_rotation_as_the_issue_asks():
    from cfnlint.decode.cfn_yaml import load

    resources = load(str(TEMPLATE))["Resources"]
    by_type = {r["Type"]: r["Properties"] for r in resources.values()}
    function = by_type["AWS::Serverless::Function"]
    assert function["Runtime"] == "python3.12" and function["Timeout"] >= 60
    assert function["Handler"] == "rotator.aws_lambda.handler"
    permission = by_type["AWS::Lambda::Permission"]
    assert permission["Principal"] == "secretsmanager.amazonaws.com" and permission["SourceAccount"]
    schedule = by_type["AWS::SecretsManager::RotationSchedule"]
    assert set(schedule["RotationRules"]) == {"ScheduleExpression", "Duration"}
    assert schedule["RotateImmediatelyOnUpdate"] is False
    statements = by_type["AWS::IAM::Role"]["Policies"][0]["PolicyDocument"]["Statement"]
    rotate = next(s for s in statements if s.get("Sid") == "RotateTheTokenSecret")
    assert sorted(rotate["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                                        "secretsmanager:PutSecretValue", "secretsmanager:TagResource",
                                        "secretsmanager:UpdateSecretVersionStage"]
    assert rotate["Resource"] == {"Ref": "TokenSecret"}
    actions = json.dumps(statements)
    assert "secretsmanager:*" not in actions and '"*"' not in json.dumps(rotate)


def test_the_example_iam_policy_is_valid_json_with_the_four_actions():
    policy = json.loads((REPO / "deploy" / "aws" / "rotation-function-policy.json").read_text())
    actions = sorted(a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                             else s["Action"]) if a.startswith("secretsmanager:"))
    assert actions == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                       "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                       "secretsmanager:TagResource", "secretsmanager:UpdateSecretVersionStage"]


def test_make_lambda_zip_packages_only_what_the_handler_needs(tmp_path):
    subprocess.run(["make", "lambda-zip"], cwd=REPO, check=True, capture_output=True, timeout=300)
    with zipfile.ZipFile(REPO / "build" / "lambda.zip") as archive:
        names = archive.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert "rotator/aws_lambda/__init__.py" in names and "backends/aws_secretsmanager/__init__.py" in names
    assert "requests" in tops and "urllib3" in tops
    assert not tops & {"hvac", "yaml", "apscheduler", "prometheus_client", "boto3", "botocore", "tests"}
    assert not any(n.startswith(("rotator/emulator/", "rotator/daemon/", "rotator/cli/", "rotator/config/", "backends/vault/"))
                   for n in names)
    assert not any("__pycache__" in n for n in names)


def test_the_template_passes_the_consumer_format_to_the_settings():
    """SecretFormat, RegistryHosts and SecretTemplate reach JFROG_FORMAT, JFROG_REGISTRY_HOSTS and
    JFROG_TEMPLATE; with every parameter at its default the function's environment loads."""
    from cfnlint.decode.cfn_yaml import load

    from rotator.aws_lambda.settings import LambdaSettings
    from rotator.core.shapes import FORMATS

    template = load(str(TEMPLATE))
    parameters = template["Parameters"]
    assert parameters["SecretFormat"]["AllowedValues"] == ["", *FORMATS]
    function = next(r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function")
    variables = function["Environment"]["Variables"]
    assert {name: variables[name] for name in ("JFROG_FORMAT", "JFROG_REGISTRY_HOSTS", "JFROG_TEMPLATE")} == {
        "JFROG_FORMAT": {"Ref": "SecretFormat"}, "JFROG_REGISTRY_HOSTS": {"Ref": "RegistryHosts"},
        "JFROG_TEMPLATE": {"Ref": "SecretTemplate"}}
    defaults = {"JFrogUrl": "https://acme.jfrog.io"}
    env = {name: defaults.get(value["Ref"], parameters[value["Ref"]].get("Default", ""))
           for name, value in variables.items() if isinstance(value, dict) and "Ref" in value}
    settings = LambdaSettings.from_env(env)
    assert (settings.format, settings.registry_hosts, settings.template) == (None, (), None)
    docker = LambdaSettings.from_env({**env, "JFROG_FORMAT": "dockerconfigjson", "JFROG_REGISTRY_HOSTS": "a.io,b.io"})
    assert docker.registry_hosts == ("a.io", "b.io")
