"""The README and docs/ show what works: configs a user pastes load, commands parse, examples run,
links resolve."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from backends.base import CASConflict, SecretBackend
from rotator.cli import run
from rotator.config import load_config
from rotator.core.record import MANAGED_BY
from rotator.core.shapes import registry_hosts
from rotator.jfrog import AccessClient
from tests.fixtures.consumers import docker_credentials
from tests.fixtures.moto_server import aws_env
from tests.fixtures.openbao import bao_binary

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.S)


def config_blocks(page: Path) -> list[str]:
    """The YAML blocks that are whole config files (they start with ``# rotator.yaml``)."""
    return [b for b in blocks(page, "yaml") if b.startswith("# rotator.yaml")]


def heredoc_configs(page: Path) -> list[tuple[str, str]]:
    """``cat > NAME.yaml <<'YAML' ... YAML`` in the bash blocks: (file name, text)."""
    return [m for b in blocks(page, "bash") for m in re.findall(r"cat > (\S+\.yaml) <<'YAML'\n(.*?)\nYAML\n", b, re.S)]


def commands(page: Path) -> list[list[str]]:
    """Every ``jfrog-rotator ...`` command line of the page's bash blocks, as argv (without the
    program name), continuation lines joined, comments, ``VAR=value`` prefixes and ``&`` dropped."""
    found = []
    for block in blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words and words[0] == "jfrog-rotator":
                found.append([w for w in words[1:] if w != "&"])
    return found


def load(text: str, tmp_path: Path, name: str = "rotator.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_config(path)


# -- the README ---------------------------------------------------------------------------------
def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


def test_readme_minimal_config_loads(tmp_path):
    [config] = config_blocks(README)
    loaded = load(config, tmp_path)
    assert [t.name for t in loaded.targets] == ["ci-deployer"]
    assert loaded.target("ci-deployer").schedule.every == 86400 and loaded.target("ci-deployer").overlap == 3600
    loaded.close()


def test_readme_stays_short():
    assert len(README.read_text().splitlines()) <= 120


# -- docs pages ---------------------------------------------------------------------------------
def full_example() -> str:
    """The first whole config of docs/configuration.md ("A full example"); the page's other whole
    configs (its sections' examples) load in test_every_whole_config_shown_loads."""
    return config_blocks(DOCS / "configuration.md")[0]


def test_configuration_full_example_loads(tmp_path):
    config = full_example()
    loaded = load(config, tmp_path)
    assert [t.name for t in loaded.targets] == ["ci-deployer", "release-bot"]
    assert loaded.target("release-bot").strategy == "refresh"
    loaded.close()


def test_daemon_section_loads(tmp_path):
    [daemon] = [b for b in blocks(DOCS / "daemon.md", "yaml") if b.startswith("daemon:")]
    config = full_example()
    loaded = load(config + daemon, tmp_path)
    assert loaded.daemon.listen == "127.0.0.1:9464" and loaded.daemon.misfire_grace == 300
    loaded.close()


def test_the_formats_example_loads_with_its_formats(tmp_path):
    [formats] = [b for b in config_blocks(DOCS / "configuration.md") if "format:" in b and "outputs:" not in b]
    loaded = load(formats, tmp_path)
    assert [(t.format, t.template is not None) for t in loaded.targets] == [("dockerconfigjson", False),
                                                                           ("template", True)]
    loaded.close()


def test_the_fanout_example_loads_with_its_outputs(tmp_path, monkeypatch):
    [fanout] = [b for b in config_blocks(DOCS / "configuration.md") if "outputs:" in b]
    loaded = load(fanout, tmp_path)
    [target] = loaded.targets
    assert (target.backend, target.path) == ("vault", "jfrog/ci-deployer")
    assert [(o.key, o.format) for o in target.outputs] == [("aws:jfrog/ci-deployer", "username-password"),
                                                           ("vault:jfrog/ci-deployer-docker", "dockerconfigjson")]
    assert target.outputs[1].registry_hosts == ("acme.jfrog.io", "docker.acme.io")
    loaded.close()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_whole_config_shown_loads(page, tmp_path, monkeypatch):
    monkeypatch.setenv("BAO_ADDR", "http://127.0.0.1:8200")  # the walk-throughs take Vault's address from it
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    shown = config_blocks(page) + [text for _, text in heredoc_configs(page)]
    for text in shown:
        load(text, tmp_path).close()


def test_walk_throughs_write_the_configs_they_run(tmp_path):
    for page in ("daemon.md", "vault-triggers.md"):
        written = {name for name, _ in heredoc_configs(DOCS / page)}
        used = {argv[argv.index("-c") + 1] for argv in commands(DOCS / page) if "-c" in argv}
        assert written and written <= used, page


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_config_commands_shown_parse(page, tmp_path, capsys):
    """Each command that takes a config gets past argument parsing: with a missing file it fails
    on reading the config, not on a flag."""
    shown = [argv for argv in commands(page) if "-c" in argv]
    for argv in shown:
        argv = list(argv)
        argv[argv.index("-c") + 1] = str(tmp_path / "missing.yaml")
        assert run(argv) == 2, argv
        err = capsys.readouterr().err
        assert "cannot read the config file" in err and "--help'" not in err, (argv, err)


def test_jf_atc_commands_shown_work(emulator, cli_env, monkeypatch, capsys):
    """The jf-atc page's commands run against the emulator, as server 'acme' or with --url."""
    cli_env.mkdir(parents=True, exist_ok=True)
    (cli_env / "jfrog-cli.conf.v6").write_text(json.dumps({"version": "6", "servers": [
        {"serverId": "acme", "url": emulator.url + "/", "accessToken": emulator.admin_token, "isDefault": True}]}))
    substitutions = {"$JFROG_ADMIN_TOKEN": emulator.admin_token, "$JFROG_URL": emulator.url,
                     "https://acme.jfrog.io": emulator.url}
    shown = [argv for argv in commands(DOCS / "jf-atc.md") if argv[0] in ("atc", "token")]
    assert len(shown) >= 8
    for argv in shown:
        argv = [substitutions.get(word, word) for word in argv]
        expected = 2 if "--scope" in argv and "--groups" in argv else 0  # jf refuses --scope with --groups
        code = run(argv)
        captured = capsys.readouterr()
        assert code == expected, (argv, captured.err)


def test_demo_commands_shown_parse():
    """docs/demo.md's commands are the demo's flags (tests/test_demo.py runs the demo itself)."""
    from rotator.cli.main import build_parser

    shown = [argv for argv in commands(DOCS / "demo.md") if argv[0] == "demo"]
    assert len(shown) >= 3
    for argv in shown:
        assert build_parser().parse_args(argv).handler.__name__ == "_cmd_demo", argv


def test_emulator_python_examples_run(capsys):
    examples = blocks(DOCS / "emulator.md", "python")
    assert len(examples) == 2  # the tour, and the AWS IAM role exchange
    for example in examples:
        exec(compile(example, "docs/emulator.md", "exec"), {})
    assert "('DELETE', '/access/api/v1/tokens/" in capsys.readouterr().out


def test_store_plugin_example_keeps_the_store_rules():
    [example] = [b for b in blocks(DOCS / "development.md", "python") if "class MemoryBackend" in b]
    namespace: dict = {}
    exec(compile(example, "docs/development.md", "exec"), namespace)
    store = namespace["MemoryBackend"]("mem")
    assert isinstance(store, SecretBackend)
    assert store.read("ci").text is None
    version = store.write("ci", "{}", expected_version=None, metadata={"managed_by": MANAGED_BY}, rotation_id="r1")
    with pytest.raises(CASConflict):
        store.write("ci", "{}", expected_version=None, metadata={}, rotation_id="r2")
    store.patch_metadata("ci", {"last_error": None})
    assert store.read("ci").version == version and store.list_managed() == ["ci"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor:
            headings = re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", linked.read_text(), flags=re.S), re.M)
            assert anchor in {_slug(h) for h in headings}, f"{page.name}: {target}"


# -- docs/quickstart.md --------------------------------------------------------------------------
#: Each command line of the quick starts, and what runs it (tests/deploy/ unless said), or why
#: nothing can here. A new line must be added to one of the two, so none goes unchecked by accident.
QUICKSTART_RUN = {
    r"export VAULT_ADDR=\S+ VAULT_TOKEN=\.\.\.": "the environment of the next lines",
    r"deploy/vault/setup-approle\.sh \./approle": "test_vault_scripts.py; test_kubernetes.py and test_systemd.py use it",
    r"ROLE=jfrog-rotator-requester POLICY_FILE=\S+ deploy/vault/setup-approle\.sh \./requester":
        "test_quickstart_vault_triggered_renewal below",
    r"KUBERNETES_HOST=\S+ KUBERNETES_CA_CERT=\S+ deploy/vault/setup-kubernetes-auth\.sh": "test_vault_scripts.py",
    r"make image IMAGE=\S+": "test_container.py (where no container engine answers)",
    r"umask 077 && printf '%s' \"\$JFROG_ADMIN_TOKEN\" > jfrog-admin-token": "test_kubernetes.py, test_systemd.py",
    r"kubectl apply -f deploy/kubernetes/base/namespace\.yaml": "validated (not applied) in test_kubernetes.py",
    r"kubectl -n jfrog-rotator create secret generic .*": "test_kubernetes.py, with --dry-run=client",
    r"kubectl apply -k deploy/kubernetes/\S+": "rendered with kubectl kustomize and validated in test_kubernetes.py",
    r"cat > rotator\.yaml <<'YAML' \.\.\. YAML": "test_every_whole_config_shown_loads; test_systemd.py runs it",
    r"sudo install .*": "test_systemd.py, under a scratch root",
    r"sudo systemd-analyze verify \S+": "test_systemd.py (systemd-analyze verify and security)",
    r"make lambda-zip": "tests/aws_lambda/test_deployment.py",
    r"sam deploy .*": "its parameters and the template: test_aws.py, cfn-lint",
    r"aws cloudformation deploy .*": "its parameters and the template: test_aws.py, cfn-lint",
    r"aws cloudformation describe-stacks .*": "the output it reads: test_aws.py",
    r"export VAULT_TOKEN=\"\$\(bao write -field=token auth/approle/login .*\)\"": "test_quickstart_vault_triggered_renewal",
    r"jfrog-rotator trigger -c rotator\.yaml ci-deployer --reason \S+": "test_quickstart_vault_triggered_renewal",
    r"bao kv get -mount=secret jfrog/ci-deployer": "test_quickstart_vault_triggered_renewal",
    r"curl -s http://127\.0\.0\.1:9464/readyz": "test_systemd.py waits for it",
}
QUICKSTART_NOT_RUN = {
    r"docker push \S+": "needs a registry",
    r"kubectl -n jfrog-rotator (rollout status|port-forward) .*": "needs a cluster",
    r"curl -s http://127\.0\.0\.1:9464/status": "needs the cluster's daemon; /status itself: tests/daemon",
    r"sudo python3 -m venv /opt/jfrog-rotator/venv": "root; the same install as make venv (test_container.py builds the wheel)",
    r"sudo /opt/jfrog-rotator/venv/bin/pip install \.": "root; as above",
    r"sudo systemctl .*": "needs systemd as PID 1",
    r"journalctl -u jfrog-rotator -f": "needs systemd as PID 1",
    r"aws secretsmanager (rotate-secret|get-secret-value) .*":
        "needs an AWS account and the aws CLI; the rotation: tests/aws_lambda",
    r"curl -s -X POST .*/v1/trigger/ci-deployer": "needs a running daemon; the HTTP trigger: tests/triggers",
}


def test_every_quickstart_command_is_run_or_says_why_not():
    from tests.deploy.shipped import quickstart_lines

    lines = quickstart_lines()
    assert len(lines) >= 40
    for line in lines:
        matched = [p for p in (*QUICKSTART_RUN, *QUICKSTART_NOT_RUN) if re.fullmatch(p, line)]
        assert len(matched) == 1, (line, matched)


def test_quickstart_vault_triggered_renewal(openbao, tmp_path, capsys, monkeypatch):
    """The section's commands against OpenBao: the requester's AppRole, its login with the `bao`
    line as shown, the trigger with that token (the flag is set), and its refused read."""
    from tests.deploy.shipped import quickstart_command, quickstart_line

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "VAULT_ADDR": openbao.addr,
           "VAULT_TOKEN": openbao.root_token}
    # From the checkout, as shown; its ./requester moved to tmp_path, where the login runs.
    setup = quickstart_line("ROLE=jfrog-rotator-requester").replace(" ./requester", f" {tmp_path}/requester")
    subprocess.run(["bash", "-c", setup], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    login = quickstart_line("export VAULT_TOKEN=")
    token = subprocess.run(["bash", "-c", f"{login} && printf %s \"$VAULT_TOKEN\""], cwd=tmp_path, env=env,
                           check=True, capture_output=True, text=True, timeout=60).stdout
    assert token and token != openbao.root_token
    assert openbao.api("GET", "auth/token/lookup-self", token=token)["data"]["policies"] == [
        "default", "jfrog-rotator-requester"]

    path = f"jfrog/{uuid.uuid4().hex[:8]}/ci-deployer"
    openbao.api("POST", f"secret/data/{path}", json={"data": {"access_token": "x"}})
    config = tmp_path / "rotator.yaml"
    systemd_config = re.search(r"cat > rotator.yaml <<'YAML'\n(.*?)\nYAML\n", (DOCS / "quickstart.md").read_text(), re.S)
    config.write_text(systemd_config.group(1).replace("https://vault.example.com:8200", openbao.addr)
                      .replace("path: jfrog/ci-deployer", f"path: {path}"))
    argv = quickstart_command("jfrog-rotator trigger")
    argv[argv.index("-c") + 1] = str(config)
    monkeypatch.setenv("VAULT_TOKEN", token)
    assert run(argv[1:]) == 0, capsys.readouterr().err
    metadata = openbao.api("GET", f"secret/metadata/{path}")["data"]["custom_metadata"]
    assert metadata["rotate_requested"] == "true" and metadata["requested_reason"] == "CHG-1234"

    read = quickstart_command("bao kv get")
    read[-1] = path
    denied = subprocess.run(read, env={**env, "VAULT_TOKEN": token, "BAO_TOKEN": token, "BAO_ADDR": openbao.addr},
                            capture_output=True, text=True, timeout=60)
    assert denied.returncode != 0 and "permission denied" in denied.stderr


def test_the_readme_links_the_quick_starts():
    assert "(docs/quickstart.md)" in README.read_text()


# -- docs/consumers.md: every example runs, against OpenBao, moto's server and the emulator ------
CONSUMERS = DOCS / "consumers.md"
# Tools a test machine may lack stand in as shell functions that record what they were given;
# `aws` makes the one call the page shows with boto3 (tests/fixtures/aws_cli.py).
SHIMS = r"""
curl() { printf '%s\n' "$@" > "$SHIMS/curl.args"; }
docker() {
  printf '%s\n' "$@" > "$SHIMS/docker.args"; printf '%s' "${DOCKER_CONFIG:-}" > "$SHIMS/docker.config"
  if [ "${1:-}" = login ]; then cat > "$SHIMS/docker.stdin"; fi
}
kubectl() { printf '%s\n' "$@" > "$SHIMS/kubectl.args"; }
aws() { "$PYTHON" -m tests.fixtures.aws_cli "$@"; }
set -euo pipefail
"""


def section(page: Path, heading: str) -> str:
    """The text of ``## <heading>`` up to the next ``## `` heading."""
    text = page.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def section_blocks(page: Path, heading: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(page, heading), flags=re.S)


class ConsumerDocs:
    """The page's targets rotated by `jfrog-rotator rotate` from the page's own config, and a shell
    to run its blocks in, with the page's names replaced by the test servers' ones."""

    def __init__(self, tmp_path: Path, emulator, openbao, moto_url: str) -> None:
        self.dir = tmp_path
        self.emulator = emulator
        self.openbao = openbao
        self.registry = registry_hosts(emulator.url)[0]
        unique = uuid.uuid4().hex[:8]
        self.paths = {name: f"{name}-{unique}" for name in ("jfrog/ci-deployer", "jfrog/ci-env", "jfrog/ci-docker")}
        self.replace = {**self.paths, "https://vault.example.com:8200": openbao.addr,
                        "https://acme.jfrog.io": emulator.url, "acme.jfrog.io": self.registry,
                        "/etc/jfrog": str(tmp_path / "etc")}
        (tmp_path / "etc").mkdir()
        (tmp_path / "shims").mkdir()
        self.env = {**os.environ, "PATH": f"{Path(bao_binary()).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
                    "BAO_ADDR": openbao.addr, "BAO_TOKEN": openbao.root_token, "SHIMS": str(tmp_path / "shims"),
                    "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "eu-west-1",
                    "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_url}

    def text(self, text: str) -> str:
        for old, new in self.replace.items():
            text = text.replace(old, new)
        return text

    def shell(self, script: str) -> str:
        answer = subprocess.run(["bash", "-c", SHIMS + self.text(script)], cwd=self.dir, env=self.env,
                                capture_output=True, text=True, timeout=120)
        assert answer.returncode == 0, answer.stderr
        return answer.stdout

    def shim(self, name: str) -> str:
        return (self.dir / "shims" / name).read_text()

    def user_of(self, token: str) -> str:
        """Whose token JFrog says this is (``GET /tokens/me``); fails for a token that does not work."""
        with AccessClient(self.emulator.url) as client:
            return client.get_me(token=token)["subject"].rsplit("/users/", 1)[-1]


@pytest.fixture
def consumer_docs(tmp_path, emulator, openbao, moto_server, monkeypatch, cli_env):
    emulator.create_user("ci-deployer", groups=("deployers",))
    emulator.create_user("ci-puller", groups=("readers",))
    aws_env(monkeypatch)
    docs = ConsumerDocs(tmp_path, emulator, openbao, moto_server.url)
    for name in ("AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.setenv(name, docs.env[name])
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    [config] = config_blocks(CONSUMERS)
    (tmp_path / "rotator.yaml").write_text(docs.text(config))
    assert run(["rotate", "-c", str(tmp_path / "rotator.yaml"), "--all"]) == 0
    return docs


def test_consumers_a_ci_job_reads_vault_with_bao_kv_get(consumer_docs):
    [block] = section_blocks(CONSUMERS, "A CI job reading Vault", "bash")
    consumer_docs.shell(block)
    header, url = consumer_docs.shim("curl.args").splitlines()[-2:]
    assert header.startswith("Authorization: Bearer ") and url == f"{consumer_docs.emulator.url}/access/api/v1/tokens/me"
    assert consumer_docs.user_of(header.removeprefix("Authorization: Bearer ")) == "ci-deployer"


def test_consumers_docker_reads_the_dockerconfigjson_and_logs_in_with_the_token(consumer_docs):
    pull, login = section_blocks(CONSUMERS, "`docker login` from a dockerconfigjson", "bash")
    consumer_docs.shell(pull)
    config = consumer_docs.dir / ".docker-jfrog" / "config.json"
    assert config.stat().st_mode & 0o777 == 0o600
    args = consumer_docs.shim("docker.args").splitlines()
    assert args[0] == "pull" and consumer_docs.shim("docker.config") == str(config.parent)
    registry = args[1].split("/", 1)[0]  # Docker looks the image's registry up in config.json
    user, password = docker_credentials(config.read_text(), registry)
    assert user == "ci-puller" and consumer_docs.user_of(password) == "ci-puller"

    consumer_docs.shell(login)
    assert consumer_docs.shim("docker.args").splitlines() == ["login", consumer_docs.registry, "--username",
                                                              "ci-deployer", "--password-stdin"]
    assert consumer_docs.user_of(consumer_docs.shim("docker.stdin")) == "ci-deployer"


def test_consumers_the_kubernetes_pull_secret_is_what_kubelet_reads(consumer_docs):
    consumer_docs.shell(section_blocks(CONSUMERS, "`docker login` from a dockerconfigjson", "bash")[0])
    [block] = section_blocks(CONSUMERS, "A Kubernetes image pull secret", "bash")
    consumer_docs.shell(block)
    args = consumer_docs.shim("kubectl.args").splitlines()
    assert args[:4] == ["create", "secret", "generic", "jfrog-pull"] and "--type=kubernetes.io/dockerconfigjson" in args
    key, _, file = next(a for a in args if a.startswith("--from-file=")).removeprefix("--from-file=").partition("=")
    # What kubectl sends (data[key] = the file, base64) and what the API server checks for this
    # type: a `.dockerconfigjson` key holding JSON with `auths` (ValidateSecret in Kubernetes).
    secret = {"type": "kubernetes.io/dockerconfigjson", "data": {key: base64.b64encode(Path(file).read_bytes()).decode()}}
    document = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert isinstance(document["auths"], dict)
    _, password = docker_credentials(json.dumps(document), consumer_docs.registry)  # what kubelet sends
    assert consumer_docs.user_of(password) == "ci-puller"
    if shutil.which("kubectl"):  # where kubectl is installed, it builds the same Secret
        real = subprocess.run(["kubectl", *args, "--dry-run=client", "-o", "json"], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "KUBECONFIG": "/nonexistent"}, check=True)
        built = json.loads(real.stdout)
        assert (built["type"], built["data"]) == (secret["type"], secret["data"])


def test_consumers_the_caching_client_example_reads_the_docker_password(consumer_docs):
    [example] = section_blocks(CONSUMERS, "AWS's caching client in Python", "python")
    namespace: dict = {}
    exec(compile(consumer_docs.text(example), "docs/consumers.md", "exec"), namespace)
    assert consumer_docs.user_of(namespace["jfrog_docker_password"]()) == "ci-puller"


def test_consumers_vault_agent_renders_the_token(consumer_docs):
    [config] = section_blocks(CONSUMERS, "A Vault Agent template", "hcl")
    [commands] = section_blocks(CONSUMERS, "A Vault Agent template", "bash")
    (consumer_docs.dir / "etc" / "vault-token").write_text(consumer_docs.openbao.root_token)
    (consumer_docs.dir / "agent.hcl").write_text(consumer_docs.text(config))
    [once] = [line for line in commands.splitlines() if "-exit-after-auth" in line]
    consumer_docs.shell(once)
    rendered = consumer_docs.dir / "etc" / "token"
    assert rendered.stat().st_mode & 0o777 == 0o600 and consumer_docs.user_of(rendered.read_text()) == "ci-deployer"


def test_consumers_an_env_file_is_sourced_by_a_shell(consumer_docs):
    [block] = section_blocks(CONSUMERS, "An env file", "bash")
    consumer_docs.shell(block)
    assert (consumer_docs.dir / "jfrog.env").stat().st_mode & 0o777 == 0o600
    header, url = consumer_docs.shim("curl.args").splitlines()[-2:]
    assert url == f"{consumer_docs.emulator.url}/access/api/v1/tokens/me"  # $JFROG_URL, from the file
    assert consumer_docs.user_of(header.removeprefix("Authorization: Bearer ")) == "ci-deployer"
