"""deploy/kubernetes: the kustomize base, its overlays and the pull-secret examples render, validate
against the Kubernetes schemas (kubernetes-validate, strict) and the published schemas of the CRDs
they use (tests/deploy/crds), and agree with the rotator config they carry."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import requests
from kubernetes_validate.utils import all_versions

from deploy import render_manifests
from tests.deploy.shipped import (
    CONFIGS,
    DEPLOY,
    KUBERNETES,
    config_text,
    example,
    leader_pending,
    load_shipped,
    one,
    quickstart_command,
    quickstart_line,
    rendered,
    secret_as_mounted,
)

KUSTOMIZATIONS = render_manifests.kustomizations()
EXAMPLES = render_manifests.examples()
CRDS = Path(__file__).resolve().parent / "crds"
#: The oldest and the newest Kubernetes whose schemas kubernetes-validate ships.
VERSIONS = (all_versions()[0], all_versions()[-1])
ids = render_manifests.name_of


def test_the_kit_has_a_base_two_overlays_and_two_examples():
    assert [ids(d) for d in KUSTOMIZATIONS] == ["base", "overlays-aws-irsa", "overlays-vault-kubernetes-auth"]
    assert [e.name for e in EXAMPLES] == ["pull-secret-eso.yaml", "pull-secret-vso.yaml"]
    assert not (KUBERNETES / "daemon.yaml").exists()  # one way: the kustomize base replaced it


# -- schemas ------------------------------------------------------------------------------------
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> a validator of the CRD's published schema, made strict the way
    ``kubectl apply --validate=strict`` is: an unknown field is an error wherever the schema lists
    the fields of an object and does not keep unknown ones (x-kubernetes-preserve-unknown-fields)."""
    validators = {}
    for path in sorted(CRDS.glob("*.json")):
        crd = json.loads(path.read_text())
        schema = strict(crd["openAPIV3Schema"])
        validators[(crd["apiVersion"], crd["kind"])] = jsonschema.Draft7Validator(schema)
    return validators


def strict(schema):
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


VALIDATORS = crd_validators()


def validate(obj: dict) -> list[str]:
    """Every problem with one object: the Kubernetes schemas for built-in kinds, else its CRD's."""
    crd = VALIDATORS.get((obj["apiVersion"], obj["kind"]))
    if crd is not None:
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in crd.iter_errors(obj)]
    problems = []
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{version}: {'.'.join(map(str, exc.absolute_path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{version}: {exc.message} (and no CRD schema in tests/deploy/crds)")
    return problems


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=ids)
def test_each_kustomization_renders_objects_that_validate(directory):
    objects = rendered(directory)
    assert len(objects) >= 8
    for obj in objects:
        assert validate(obj) == [], f"{obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_validates_with_its_crds(path):
    objects = [o for o in render_manifests.load_documents(path)]
    kinds = {o["kind"] for o in objects}
    assert kinds & {"VaultStaticSecret", "ExternalSecret"}
    for obj in objects:
        assert validate(obj) == [], f"{path.name}: {obj['kind']}/{obj['metadata']['name']}"


def test_the_crd_schemas_are_the_served_versions_with_their_sources():
    for path in CRDS.glob("*.json"):
        crd = json.loads(path.read_text())
        assert crd["source"].startswith("https://github.com/") and len(crd["sha256_of_source"]) == 64
        assert crd["apiVersion"].rpartition("/")[2] in crd["served_versions"], path.name
    assert ("external-secrets.io/v1", "ExternalSecret") in VALIDATORS  # v1beta1 is no longer served
    assert ("secrets.hashicorp.com/v1beta1", "VaultStaticSecret") in VALIDATORS
    assert ("monitoring.coreos.com/v1", "ServiceMonitor") in VALIDATORS


def test_the_validators_refuse_a_typo_a_missing_field_and_an_unknown_kind():
    [static] = [o for o in example("pull-secret-vso.yaml") if o["kind"] == "VaultStaticSecret"]
    typo = copy.deepcopy(static)
    typo["spec"]["destination"]["crate"] = True
    assert any("'crate' was unexpected" in p for p in validate(typo))
    [connection] = [o for o in example("pull-secret-vso.yaml") if o["kind"] == "VaultConnection"]
    missing = copy.deepcopy(connection)
    del missing["spec"]["skipTLSVerify"]
    assert any("'skipTLSVerify' is a required property" in p for p in validate(missing))
    deployment = copy.deepcopy(one(rendered(KUSTOMIZATIONS[0]), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    assert len(validate(deployment)) == len(VERSIONS)
    old = {**static, "apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret"}
    assert any("Couldn't find schema" in p for p in validate(old))


# -- the built-in merge -------------------------------------------------------------------------
def comparable(objects) -> dict:
    """Objects by (kind, name), with kustomize's config-map name hash dropped and lists that merge
    on a key (volumes, volumeMounts, ...) sorted by it: their order carries no meaning."""
    out = {}
    for obj in json.loads(json.dumps(list(objects))):
        text = json.dumps(obj)
        text = text.replace(f'"{config_map_name(objects)}"', '"jfrog-rotator-config"')
        obj = sort_merge_lists(json.loads(text))
        out[(obj["kind"], obj["metadata"]["name"])] = obj
    return out


def config_map_name(objects) -> str:
    return one(objects, "ConfigMap")["metadata"]["name"]


def sort_merge_lists(value, field=""):
    if isinstance(value, dict):
        return {k: sort_merge_lists(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [sort_merge_lists(v) for v in value]
        key = render_manifests.MERGE_KEYS.get(field)
        return sorted(items, key=lambda i: str(i.get(key))) if key and all(isinstance(i, dict) for i in items) else items
    return value


@pytest.mark.skipif(render_manifests.kustomize_command() is None, reason="neither kubectl nor kustomize is installed")
@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=ids)
def test_the_builtin_merge_renders_what_kustomize_renders(directory):
    assert comparable(render_manifests.render(directory, builtin=True)) == comparable(rendered(directory))


def test_the_builtin_merge_refuses_what_it_does_not_handle(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: [../x]\nreplicas: [{name: jfrog-rotator, count: 3}]\n")
    with pytest.raises(render_manifests.RenderError, match=r"does not handle \['replicas'\]"):
        render_manifests.render_builtin(tmp_path)


def test_render_manifests_writes_one_file_per_kustomization_and_example(tmp_path):
    answer = subprocess.run([sys.executable, str(DEPLOY / "render_manifests.py"), str(tmp_path)], capture_output=True,
                            text=True, timeout=120, check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(line).name for line in answer.stdout.split())
    assert len(list(tmp_path.iterdir())) == len(KUSTOMIZATIONS) + len(EXAMPLES)


# -- what the Deployment and the config agree on ------------------------------------------------
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(KUBERNETES)))
def test_each_shipped_config_loads_with_the_real_loader(path, tmp_path):
    config, leader_known = load_shipped(path.read_text(), tmp_path)
    assert [t.name for t in config.targets] == ["ci-deployer", "ci-docker"]
    assert config.target("ci-docker").format == "dockerconfigjson"
    assert config.daemon.listen == "0.0.0.0:9464"
    config.close()
    if not leader_known:
        leader_pending()
    assert config.daemon.leader is not None


def files_the_pod_has(pod: dict) -> set[str]:
    """The files the rotator container sees through its volumes (a Secret without ``items`` as
    ``<mount>/*``)."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    [container] = pod["containers"]
    files = set()
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "secret" in volume:
            items = volume["secret"].get("items")
            files |= {f"{mount['mountPath']}/{i['path']}" for i in items} if items else {f"{mount['mountPath']}/*"}
        elif "projected" in volume:
            files |= {f"{mount['mountPath']}/{s['serviceAccountToken']['path']}" for s in volume["projected"]["sources"]}
        elif "configMap" in volume:
            files.add(f"{mount['mountPath']}/*")
    return files


def file_keys(value, prefix="") -> dict[str, str]:
    """Every ``*_file`` key of a config, by its key path."""
    if isinstance(value, dict):
        found = {}
        for key, inner in value.items():
            if isinstance(inner, str) and key.endswith("_file"):
                found[f"{prefix}{key}"] = inner
            else:
                found |= file_keys(inner, f"{prefix}{key}.")
        return found
    return {}


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=ids)
def test_every_file_the_config_names_is_mounted(directory, tmp_path):
    import yaml

    objects = rendered(directory)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    files = files_the_pod_has(pod)
    data = yaml.safe_load(config_text(objects))
    for key, path in file_keys(data).items():
        assert path in files or f"{path.rpartition('/')[0]}/*" in files, (key, path, files)
    [container] = pod["containers"]
    config_path = container["args"][container["args"].index("-c") + 1]
    assert f"{config_path.rpartition('/')[0]}/*" in files


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=ids)
def test_the_deployment_is_hardened_and_probed(directory):
    objects = rendered(directory)
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]} and security["runAsUser"] == 10001
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert set(container["resources"]) == {"requests", "limits"} and set(container["resources"]["limits"]) == {"cpu", "memory"}
    image = container["image"]
    assert image.rpartition(":")[2] not in ("", "latest") and "@" not in image
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    service = one(objects, "Service")
    monitor = one(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "ops"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    namespace = one(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=ids)
def test_network_policy_lets_out_dns_and_the_configured_jfrog_and_stores_only(directory, tmp_path):
    objects = rendered(directory)
    config, _ = load_shipped(config_text(objects), tmp_path)
    policy = one(objects, "NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    dns, *others = policy["egress"]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert sorted(p["port"] for p in dns["ports"]) == [53, 53]
    assert all(set(rule["to"][0]) == {"ipBlock"} and "except" not in rule["to"][0]["ipBlock"] for rule in others)
    assert all(not rule["to"][0]["ipBlock"]["cidr"].startswith("0.0.0.0") for rule in others)
    ports = sorted(p["port"] for rule in others for p in rule["ports"])
    wanted = [urlsplit(config.jfrog.url).port or 443]
    for name, kind in config.backend_types.items():
        if kind == "vault":
            wanted.append(urlsplit(config.backends[name].url).port or 443)
        elif kind == "aws-secretsmanager":
            wanted.append(443)
    assert ports == sorted(wanted)
    config.close()


def test_the_vault_kubernetes_overlay_logs_in_with_a_projected_token_for_vault(tmp_path):
    objects = rendered(KUBERNETES / "overlays" / "vault-kubernetes-auth")
    config, _ = load_shipped(config_text(objects), tmp_path)
    auth = config.backends["vault-main"].auth
    assert (auth.method, auth.role, auth.jwt_file) == ("kubernetes", "jfrog-rotator", "/var/run/secrets/vault/token")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    [projected] = [v["projected"] for v in pod["volumes"] if "projected" in v]
    assert projected["sources"] == [{"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 600}}]
    secret = next(v["secret"] for v in pod["volumes"] if "secret" in v)
    assert [i["key"] for i in secret["items"]] == ["jfrog-admin-token"]  # no Vault credential stored
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "system:auth-delegator"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "jfrog-rotator", "namespace": "jfrog-rotator"}]
    config.close()


def test_the_irsa_overlay_has_no_jfrog_admin_token_and_no_secret(tmp_path):
    objects = rendered(KUBERNETES / "overlays" / "aws-irsa")
    text = config_text(objects)
    config, _ = load_shipped(text, tmp_path)
    assert config.jfrog.aws_iam is not None and not config.jfrog.token.is_set()
    assert set(config.backend_types.values()) == {"aws-secretsmanager"}
    assert "_file" not in text
    account = one(objects, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "secret" in v or "projected" in v]
    assert {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]} == {"/etc/jfrog-rotator", "/tmp"}
    assert not [o for o in objects if o["kind"] in ("Secret", "ClusterRoleBinding")]
    config.close()


# -- the pull-secret examples -------------------------------------------------------------------
def dockerconfig_targets(tmp_path) -> dict[str, str]:
    config, _ = load_shipped((KUBERNETES / "base" / "rotator.yaml").read_text(), tmp_path)
    found = {t.path: t.backend for t in config.targets if t.format == "dockerconfigjson"}
    config.close()
    return found


def test_the_examples_read_a_dockerconfigjson_target_into_a_pull_secret(tmp_path):
    targets = dockerconfig_targets(tmp_path)
    vso = {(o["kind"], o["metadata"]["name"]): o for o in example("pull-secret-vso.yaml")}
    static = vso["VaultStaticSecret", "jfrog-pull"]["spec"]
    assert (static["type"], static["mount"], static["path"]) == ("kv-v2", "secret", "jfrog/ci-docker")
    assert static["path"] in targets and static["destination"]["type"] == "kubernetes.io/dockerconfigjson"
    assert set(static["destination"]["transformation"]["templates"]) == {".dockerconfigjson"}
    auth = vso["VaultAuth", static["vaultAuthRef"]]["spec"]
    assert auth["kubernetes"]["audiences"] == ["vault"] and ("ServiceAccount", auth["kubernetes"]["serviceAccount"]) in vso
    assert vso["ServiceAccount", "app"]["imagePullSecrets"] == [{"name": static["destination"]["name"]}]
    eso = {(o["kind"], o["metadata"]["name"]): o for o in example("pull-secret-eso.yaml")}
    external = eso["ExternalSecret", "jfrog-pull"]["spec"]
    [data] = external["data"]
    assert data["remoteRef"] == {"key": "jfrog/ci-docker"} and "property" not in data["remoteRef"]
    assert external["target"]["template"]["type"] == "kubernetes.io/dockerconfigjson"
    assert external["target"]["template"]["data"] == {".dockerconfigjson": "{{ .%s }}" % data["secretKey"]}
    vault = eso["SecretStore", external["secretStoreRef"]["name"]]["spec"]["provider"]["vault"]
    assert (vault["path"], vault["version"]) == ("secret", "v2")
    assert ("ServiceAccount", vault["auth"]["kubernetes"]["serviceAccountRef"]["name"]) in eso
    assert eso["ServiceAccount", "app"]["imagePullSecrets"] == [{"name": external["target"]["name"]}]


def bao(env: dict, *args: str) -> str:
    return subprocess.run(["bao", *args], env=env, capture_output=True, text=True, timeout=60, check=True).stdout


def test_the_base_config_rotates_into_vault_and_the_pull_secret_works(openbao, emulator, tmp_path):
    """The base's config, pointed at the emulator and the test OpenBao, with the AppRole that
    deploy/vault/setup-approle.sh makes: `rotate --all` stores both targets, and the ci-docker value,
    read back with `bao kv get`, becomes the .dockerconfigjson the operators write (ESO: the whole KV
    data as JSON; VSO's template: the auths field as JSON; the operators themselves are not run
    here): a valid kubernetes.io/dockerconfigjson Secret whose credential logs in to JFrog."""
    from rotator.cli import run

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token}
    # The quick start's steps 1 and 3: the AppRole, the admin token file, the Secret, as mounted.
    # The relative paths of the quick start: the script from the checkout, the files in tmp_path.
    script, out = quickstart_command("deploy/vault/setup-approle.sh ./approle")
    subprocess.run([str(DEPLOY.parent / script), str(tmp_path / out)], env=env, check=True, capture_output=True,
                   timeout=120)
    subprocess.run(["bash", "-c", quickstart_line("umask 077 && printf")], cwd=tmp_path,
                   env={**env, "JFROG_ADMIN_TOKEN": emulator.admin_token}, check=True)
    credentials = tmp_path / "credentials"
    secret = secret_as_mounted(quickstart_command("kubectl -n jfrog-rotator create secret generic"), tmp_path, credentials)
    assert set(secret) == {"jfrog-admin-token", "vault-role-id", "vault-secret-id"}
    for user in ("ci-deployer", "ci-puller"):
        emulator.create_user(user)
    prefix = f"jfrog/{uuid.uuid4().hex[:8]}"
    text = ((KUBERNETES / "base" / "rotator.yaml").read_text()
            .replace("https://acme.jfrog.io", emulator.url).replace("https://vault.example.com:8200", openbao.addr)
            .replace("/var/run/secrets/jfrog-rotator", str(credentials)).replace("path: jfrog/", f"path: {prefix}/"))
    config, _ = load_shipped(text, tmp_path)
    config.close()
    assert run(["rotate", "-c", str(tmp_path / "rotator.yaml"), "--all"]) == 0

    data = json.loads(bao(env, "kv", "get", "-format=json", "-mount=secret", f"{prefix}/ci-docker"))["data"]["data"]
    host = urlsplit(emulator.url).netloc
    assert list(data) == ["auths"] and list(data["auths"]) == [host]
    for produced in (json.dumps(data), json.dumps({"auths": data["auths"]})):  # ESO, VSO
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                  "metadata": {"name": "jfrog-pull", "namespace": "apps"},
                  "data": {".dockerconfigjson": base64.b64encode(produced.encode()).decode()}}
        assert validate(secret) == []
        entry = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"][host]
        username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        assert (username, password) == (entry["username"], entry["password"]) and username == "ci-puller"
        me = requests.get(f"{emulator.url}/access/api/v1/tokens/me", headers={"Authorization": f"Bearer {password}"},
                          timeout=10)
        assert me.status_code == 200 and me.json()["subject"].endswith("/users/ci-puller")
