"""Render deploy/kubernetes's kustomizations in CI, where the kustomize binary cannot be
installed (it is not on PyPI or in Debian 12). Only the fields our kustomizations use are
implemented, each as kustomize documents it; any other field is refused, so a kustomization
that starts using one fails here instead of being rendered wrongly:

* `resources`: files (every YAML document) and folders holding a kustomization, in order;
  two resources with the same kind, namespace and name are an error.
* `namespace`: sets `metadata.namespace` on every resource (all of ours are namespaced).
* `images`: `name` matched against each container's and init container's image name (the
  part before `:tag` or `@digest`); `newName` and `newTag` replace those parts.
* `replicas`: `name` + `count` set `spec.replicas` of the Deployment or StatefulSet.
* `patches`: an inline JSON 6902 patch (`op` add, replace, remove, test) with a `target`
  selecting by `kind` and `name`.

Reference: https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet"}


class Unsupported(ValueError):
    """The kustomization uses something this renderer does not implement."""


def render(folder: Path) -> list[dict[str, Any]]:
    """The resources `kubectl kustomize folder` prints (same content; kustomize sorts them)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise Unsupported(f"{folder}: kustomization fields not implemented: {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    docs = copy.deepcopy(docs)
    for patch in spec.get("patches", []):
        _patch(docs, patch)
    if "namespace" in spec:
        for doc in docs:
            doc["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        _set_image(docs, image)
    for rep in spec.get("replicas", []):
        targets = [d for d in docs if d["kind"] in SCALABLE and _name(d) == rep["name"]]
        if not targets:
            raise Unsupported(f"replicas: no Deployment/StatefulSet named {rep['name']}")
        for doc in targets:
            doc["spec"]["replicas"] = int(rep["count"])
    _no_duplicates(docs)
    return docs


def _name(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["name"])


def _no_duplicates(docs: list[dict[str, Any]]) -> None:
    seen = set()
    for doc in docs:
        key = (doc["kind"], doc["metadata"].get("namespace"), _name(doc))
        if key in seen:
            raise ValueError(f"duplicate resource {key}")
        seen.add(key)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {})
    if "template" in pod:  # a CronJob's jobTemplate.spec.template.spec
        pod = pod["template"]["spec"]
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def _split_image(image: str) -> tuple[str, str]:
    """("name", ":tag" or "@digest" or "")."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _set_image(docs: list[dict[str, Any]], rule: dict[str, Any]) -> None:
    extra = set(rule) - {"name", "newName", "newTag"}
    if extra:
        raise Unsupported(f"images: fields not implemented: {sorted(extra)}")
    for doc in docs:
        for container in _containers(doc):
            name, suffix = _split_image(container["image"])
            if name != rule["name"]:
                continue
            name = rule.get("newName", name)
            if "newTag" in rule:
                suffix = f":{rule['newTag']}"
            container["image"] = name + suffix


def _patch(docs: list[dict[str, Any]], patch: dict[str, Any]) -> None:
    if set(patch) != {"target", "patch"} or set(patch["target"]) - {"kind", "name"}:
        raise Unsupported(f"patches: only an inline patch with a kind/name target: {patch}")
    ops = yaml.safe_load(patch["patch"])
    if not isinstance(ops, list):
        raise Unsupported("patches: strategic-merge patches are not implemented (JSON 6902 only)")
    target = patch["target"]
    matched = [
        d
        for d in docs
        if d["kind"] == target.get("kind", d["kind"]) and _name(d) == target.get("name", _name(d))
    ]
    if not matched:
        raise Unsupported(f"patches: no resource matches {target}")
    for doc in matched:
        for op in ops:
            _apply(doc, op)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"not a JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _apply(doc: dict[str, Any], op: dict[str, Any]) -> None:
    """One RFC 6902 operation (add, replace, remove, test)."""
    *parents, last = _pointer(op["path"])
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    kind = op["op"]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if kind == "add":
            node.insert(index, op["value"])
        elif kind == "replace":
            node[index] = op["value"]
        elif kind == "remove":
            del node[index]
        elif kind == "test":
            assert node[index] == op["value"], op
        else:
            raise Unsupported(f"JSON patch op {kind!r}")
        return
    if kind == "add":
        node[last] = op["value"]
    elif kind == "replace":
        if last not in node:
            raise ValueError(f"replace of a missing member: {op['path']}")
        node[last] = op["value"]
    elif kind == "remove":
        del node[last]
    elif kind == "test":
        assert node[last] == op["value"], op
    else:
        raise Unsupported(f"JSON patch op {kind!r}")
