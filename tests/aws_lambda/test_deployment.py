"""What gets deployed: import cost of the handler, the SAM template (cfn-lint), the zip and its bytecode."""

from __future__ import annotations

import _imp
import ast
import importlib.util
import json
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from tests.fixtures.imports import modules_after_import
from tests.fixtures.lambda_zip import (
    BUILDER,
    IMPORT_PROBE,
    MAGIC,
    Build,
    build_zip,
    extract,
    make_writable,
    pyc_header,
    runtime_env,
    runtime_packages,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "aws" / "template.yaml"
FORBIDDEN = ("hvac", "apscheduler", "yaml", "prometheus_client", "rotator.daemon", "rotator.config",
             "rotator.cli", "rotator.emulator", "backends.vault")


def test_importing_the_handler_loads_no_daemon_vault_or_yaml_code():
    loaded = modules_after_import("rotator.aws_lambda as m", check="assert m.handler is m.lambda_handler")
    bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert bad == []


def test_the_aws_iam_exchange_is_loaded_only_when_a_step_mints_with_it():
    """JFROG_AUTH=aws-iam is one of three minting setups: the other two never load its code
    (tests/aws_lambda/test_aws_iam_auth.py runs the steps that do)."""
    lazy = {"rotator.jfrog.minting", "rotator.jfrog.exchanged_token"}
    assert not lazy & modules_after_import("rotator.aws_lambda")
    settings = "from rotator.aws_lambda.settings import LambdaSettings\n" \
               "s = LambdaSettings.from_env({'JFROG_URL': 'https://acme.jfrog.io', 'JFROG_AUTH': 'aws-iam'})\n"
    loaded = modules_after_import("rotator.aws_lambda as m", check=settings + "m.current().aws_iam(s, 'arn:aws:secretsmanager:"
                                  "us-east-1:123456789012:secret:x')")
    assert lazy <= loaded


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


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Build:
    """``make lambda-zip``, as a user runs it; the zip copied away so other builds do not touch it."""
    done = subprocess.run(["make", "lambda-zip"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    copy = tmp_path_factory.mktemp("shipped") / "lambda.zip"
    shutil.copyfile(REPO / "build" / "lambda.zip", copy)
    return Build(done.returncode, done.stdout, done.stderr, copy)


def template_runtime() -> str:
    from cfnlint.decode.cfn_yaml import load

    function = next(r["Properties"] for r in load(str(TEMPLATE))["Resources"].values()
                    if r["Type"] == "AWS::Serverless::Function")
    return function["Runtime"].removeprefix("python")


def needs_runtime_python(build: Build) -> str:
    """The runtime's Python the build found; a skip (reported, never a pass) on a machine without it."""
    if build.runtime_python is None:
        assert "is not on this machine" in build.stderr and "source only" in build.stderr, build.stdout + build.stderr
        pytest.skip(f"Python {template_runtime()} is not on this machine, so the zip ships source only: {build.stderr}")
    return build.runtime_python


def test_make_lambda_zip_packages_only_what_the_handler_needs(shipped):
    with zipfile.ZipFile(shipped.output) as archive:
        names = archive.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert "rotator/aws_lambda/__init__.py" in names and "backends/aws_secretsmanager/__init__.py" in names
    assert "requests" in tops and "urllib3" in tops
    assert not tops & {"hvac", "yaml", "apscheduler", "prometheus_client", "boto3", "botocore", "tests"}
    assert not any(n.startswith(("rotator/emulator/", "rotator/daemon/", "rotator/cli/", "rotator/config/", "backends/vault/"))
                   for n in names)


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


def test_every_module_a_function_imports_lazily_is_in_the_zip(shipped):
    """aws_iam imports botocore's signer inside functions; the builder also follows the project's
    own function-local imports, so a lazily imported module is never missing at run time."""
    with zipfile.ZipFile(shipped.output) as archive:
        names = set(archive.namelist())
    for path in (p for p in names if p.endswith(".py") and p.split("/")[0] in ("rotator", "backends")):
        for node in ast.walk(ast.parse((REPO / path).read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module.split(".")[0] in ("rotator", "backends"):
                module = node.module.replace(".", "/")
                assert f"{module}.py" in names or f"{module}/__init__.py" in names, (path, node.module)


def test_the_zip_carries_bytecode_of_the_template_runtime_for_every_module(shipped):
    """Each .py has ``__pycache__/<name>.cpython-3XY.pyc`` whose magic number is the template
    Runtime's (read by CloudFormation's own loader), unchecked hash-based, hashing the very source shipped."""
    needs_runtime_python(shipped)
    version = template_runtime()
    tag = "cpython-" + version.replace(".", "")
    with zipfile.ZipFile(shipped.output) as archive:
        names = archive.namelist()
        sources = [n for n in names if n.endswith(".py")]
        pycs = [n for n in names if n.endswith(".pyc")]
        assert len(sources) > 100 and len(pycs) == len(sources)
        for source in sources:
            head, _, tail = source.rpartition("/")
            pyc = f"{head}/__pycache__/{tail[:-3]}.{tag}.pyc" if head else f"__pycache__/{tail[:-3]}.{tag}.pyc"
            header = pyc_header(archive.read(pyc))
            assert header.magic == MAGIC[version], (pyc, header.magic)
            assert header.hash_based and not header.check_source, (pyc, header.flags)
            raw_magic = int.from_bytes(archive.read(pyc)[:4], "little")
            assert header.source_hash == _imp.source_hash(raw_magic, archive.read(source)), pyc
    assert {n.rsplit(".", 2)[-2] for n in pycs} == {tag}


def test_the_runtime_python_imports_the_handler_from_a_read_only_copy_without_compiling(shipped, tmp_path):
    """As on Lambda: the zip unpacked into a directory nobody can write, the runtime's Python, boto3
    from the runtime. With the shipped bytecode nothing of the zip is compiled; without it, all is."""
    python = needs_runtime_python(shipped)
    runtime = runtime_packages(tmp_path / "runtime")
    seen = {}
    for label, bytecode in (("shipped", True), ("source", False)):
        task = extract(shipped.output, tmp_path / label, bytecode=bytecode)
        try:
            done = subprocess.run([python, "-c", IMPORT_PROBE, "rotator.aws_lambda", "--compiles", str(task)],
                                  env=runtime_env(task, runtime), cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            seen[label] = json.loads(done.stdout)["compiled"]
            assert not any(p.name == "__pycache__" for p in task.rglob("*")) or bytecode
        finally:
            make_writable(task)
    assert seen["shipped"] == []
    assert f"{tmp_path}/source/rotator/aws_lambda/__init__.py" in seen["source"] and len(seen["source"]) > 50


def test_the_same_sources_give_the_same_zip(shipped, tmp_path):
    """Fixed entry times, /var/task file names in the bytecode and hash-based pycs: a rebuild in
    another directory is byte for byte the same (so is the function's CodeSha256)."""
    again = build_zip(tmp_path / "again.zip")
    assert again.returncode == 0, again.stderr
    assert again.output.read_bytes() == shipped.output.read_bytes()


def test_on_another_python_the_zip_still_imports_by_compiling_its_source(shipped, tmp_path):
    """The failure mode of the chosen layout: a runtime changed without rebuilding (here the test's
    own Python) finds bytecode of the wrong magic number and compiles the source beside it, where a
    sourceless zip would not import at all."""
    python = needs_runtime_python(shipped)
    assert Path(python).resolve() != Path(sys.executable).resolve()
    task = extract(shipped.output, tmp_path / "task")
    try:
        env = runtime_env(task, Path(boto3.__file__).resolve().parents[1])
        done = subprocess.run([sys.executable, "-c", IMPORT_PROBE, "rotator.aws_lambda", "--compiles", str(task)], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    finally:
        make_writable(task)
    assert done.returncode == 0, done.stderr
    assert f"{task}/rotator/aws_lambda/__init__.py" in json.loads(done.stdout)["compiled"]


def test_without_the_runtime_python_the_zip_ships_source_and_says_so(tmp_path):
    """A runtime whose Python is on no machine (3.99): the build still works, source only, and says why."""
    built = build_zip(tmp_path / "lambda.zip", "--python-version", "3.99")
    assert built.returncode == 0, built.stderr
    assert "warning: Python 3.99 (the runtime python3.99) is not on this machine" in built.stderr
    assert "the zip ships source only" in built.stderr and "Install Python 3.99 or pass --runtime-python" in built.stderr
    assert "deploys python3.12; set its Runtime to python3.99" in built.stderr
    with zipfile.ZipFile(built.output) as archive:
        names = archive.namelist()
    assert "rotator/aws_lambda/__init__.py" in names
    assert not any(n.endswith(".pyc") or "__pycache__" in n for n in names)


@pytest.mark.parametrize("args, message", [
    (["--python-version", "3.99", "--bytecode", "require"],
     "Python 3.99 is not on this machine (looked for python3.99 on PATH and "),
    (["--runtime-python", sys.executable],
     f"--runtime-python {sys.executable} is Python {platform.python_version()}, the runtime is Python 3.12"),
    (["--runtime-python", "/nonexistent/python3.12"], "--runtime-python /nonexistent/python3.12: cannot run it"),
    (["--python-version", "twelve"], "--python-version must look like 3.12, not 'twelve'"),
])
def test_a_build_that_cannot_be_made_as_asked_stops_with_a_message_and_writes_nothing(tmp_path, args, message):
    built = build_zip(tmp_path / "lambda.zip", *args)
    assert built.returncode == 2
    assert message in built.stderr and "Traceback" not in built.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_builder_reads_the_runtime_and_architecture_the_template_deploys(tmp_path):
    builder = load_builder()
    assert builder.template_runtime(TEMPLATE) == (template_runtime(), "x86_64")
    other = tmp_path / "template.yaml"
    other.write_text(TEMPLATE.read_text().replace("Runtime: python3.12", "Runtime: python3.13")
                     .replace("Architectures: [x86_64]", "Architectures: [arm64]"))
    assert builder.template_runtime(other) == ("3.13", "arm64")
    other.write_text(TEMPLATE.read_text().replace("Runtime: python3.12", "Runtime: nodejs20.x"))
    with pytest.raises(builder.BuildError, match="expected one 'Runtime: pythonX.Y', found none"):
        builder.template_runtime(other)


def load_builder():
    spec = importlib.util.spec_from_file_location("build_lambda_zip", BUILDER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
