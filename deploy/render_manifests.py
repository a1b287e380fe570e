"""Render deploy/kubernetes to plain manifests, for the checks (tests/deploy, deploy/lint_deploy.py).

Each kustomization (the base, each overlay) is rendered with ``kubectl kustomize`` or ``kustomize
build`` when one is installed. Without either, a small built-in merge renders them instead. It
covers exactly what these kustomizations use and refuses anything else, so it never renders
silently wrong: ``resources`` (files and directories), ``namespace``, ``labels`` (onto metadata and
pod templates, never into selectors), ``configMapGenerator`` from files (create, and
``behavior: replace``; without kustomize's name hash), ``images`` (``newName``/``newTag``) and
strategic-merge ``patches`` whose lists merge on Kubernetes' merge keys (containers, volumes and
env by ``name``, volumeMounts by ``mountPath``, ports by ``containerPort``), with
``$patch: delete``. tests/deploy/test_kubernetes.py checks that both give the same objects
where kubectl exists. The examples (deploy/kubernetes/examples/*.yaml) are plain files.

    python deploy/render_manifests.py OUT_DIR     writes one <name>.yaml per kustomization and example
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

KUBERNETES = Path(__file__).resolve().parent / "kubernetes"
#: The list fields a strategic-merge patch merges item by item, and the key that matches items
#: (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#notes-on-the-strategic-merge-patch).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "env": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}
KNOWN_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator", "images", "patches"}
#: Namespaced kinds of these files (the ``namespace:`` of a kustomization applies to them only).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class RenderError(Exception):
    pass


def kustomizations() -> list[Path]:
    """The directories under deploy/kubernetes holding a kustomization.yaml: base, then overlays."""
    return sorted((p.parent for p in KUBERNETES.rglob("kustomization.yaml")),
                  key=lambda d: (d.name != "base", str(d)))


def examples() -> list[Path]:
    return sorted((KUBERNETES / "examples").glob("*.yaml"))


def name_of(directory: Path) -> str:
    return str(directory.relative_to(KUBERNETES)).replace("/", "-")


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render(directory: Path, *, builtin: bool = False) -> list[dict[str, Any]]:
    command = None if builtin else kustomize_command()
    if command is None:
        return render_builtin(directory)
    answer = subprocess.run([*command, str(directory)], capture_output=True, text=True, timeout=120)
    if answer.returncode != 0:
        raise RenderError(f"{' '.join(command)} {directory}: {answer.stderr.strip()}")
    return [d for d in yaml.safe_load_all(answer.stdout) if d]


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# -- the built-in merge -------------------------------------------------------------------------
def render_builtin(directory: Path) -> list[dict[str, Any]]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        raise RenderError(f"{directory}: the built-in merge does not handle {sorted(unknown)}; install kubectl")
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        objects += render_builtin(path) if path.is_dir() else load_documents(path)
    for generator in spec.get("configMapGenerator", []):
        _generate(directory, generator, objects)
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise RenderError(f"{directory}: only file patches ({{path: ...}}) are handled, not {patch}")
        _patch(objects, yaml.safe_load((directory / patch["path"]).read_text()))
    for image in spec.get("images", []):
        _set_image(objects, image)
    for group in spec.get("labels", []):
        if group.get("includeSelectors") or not group.get("includeTemplates"):
            raise RenderError(f"{directory}: only labels with includeSelectors: false, includeTemplates: true")
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(group["pairs"])
            template = obj.get("spec", {}).get("template")
            if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job") and template:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(group["pairs"])
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
            for subject in obj.get("subjects", []):
                subject.setdefault("namespace", spec["namespace"])
    return objects


def _generate(directory: Path, generator: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    if set(generator) - {"name", "files", "behavior"}:
        raise RenderError(f"{directory}: configMapGenerator keys {sorted(generator)} are not handled")
    data = {Path(f).name: (directory / f).read_text() for f in generator["files"]}
    found = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == generator["name"]]
    behavior = generator.get("behavior", "create")
    if behavior == "replace" and found:
        found[0]["data"] = data
    elif behavior == "create" and not found:
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
    else:
        raise RenderError(f"{directory}: configMapGenerator {generator['name']}: behavior {behavior} with "
                          f"{len(found)} existing")


def _patch(objects: list[dict[str, Any]], patch: dict[str, Any]) -> None:
    targets = [o for o in objects if o["kind"] == patch["kind"] and o["metadata"]["name"] == patch["metadata"]["name"]]
    if len(targets) != 1:
        raise RenderError(f"patch of {patch['kind']}/{patch['metadata']['name']}: {len(targets)} objects match")
    merged = merge(targets[0], patch)
    targets[0].clear()
    targets[0].update(merged)


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """A strategic merge of ``patch`` into ``base`` (both left unchanged)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value, key) if key in base else _without_directives(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        out = copy.deepcopy(base)
        for item in patch:
            if key not in item:
                raise RenderError(f"an item of {field} without its merge key {key}: {item}")
            index = next((i for i, old in enumerate(out) if old.get(key) == item[key]), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del out[index]
            elif index is None:
                out.append(_without_directives(item))  # kustomize orders them otherwise; order is no meaning here
            else:
                out[index] = merge(out[index], item, field)
        return out
    return copy.deepcopy(patch)  # scalars, and lists without a merge key, are replaced


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not k.startswith("$patch")}
    if isinstance(value, list):
        return [_without_directives(v) for v in value]
    return value


def _set_image(objects: list[dict[str, Any]], image: dict[str, Any]) -> None:
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"


# -- the command line ---------------------------------------------------------------------------
def write_all(out: Path) -> list[Path]:
    """Each kustomization rendered, and each example, as ``out/<name>.yaml``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for directory in kustomizations():
        path = out / f"{name_of(directory)}.yaml"
        path.write_text(yaml.safe_dump_all(render(directory), sort_keys=False))
        written.append(path)
    for example in examples():
        path = out / f"examples-{example.name}"
        shutil.copyfile(example, path)
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[-1])
    for rendered in write_all(Path(sys.argv[1])):
        print(rendered)
