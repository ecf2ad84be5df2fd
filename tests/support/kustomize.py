"""A small pure-Python ``kustomize build`` for the features ``deploy/`` uses, so that the
manifest tests run where ``kubectl`` is not installed. ``tests/deploy`` checks it against
``kubectl kustomize`` whenever that is on PATH.

Supported, as kustomize does them:

- ``resources``: YAML files (several documents each) and directories holding a
  ``kustomization.yaml``, built recursively; a kustomization's transformers apply only to
  the resources it accumulates (its own and its bases').
- ``patches`` with ``path:`` (no ``target``): strategic-merge patches, applied to the one
  resource of the same kind, name and API group. Maps merge deeply; ``null`` removes a key;
  lists of objects merge by the Kubernetes patch merge key (``name`` for containers, env,
  volumes and most others, ``mountPath`` for volumeMounts, ``containerPort`` for a
  container's ports, ``port`` for a Service's), the patch's elements first, then the
  original's others; other lists are replaced. ``$patch: delete`` removes the resource (at
  the top of a patch) or a list element (in a merged list).
- ``labels`` with ``includeSelectors: false`` (metadata labels only), after the patches.
- ``images`` (``name`` with ``newName``, ``newTag`` and/or ``digest``) on pod templates'
  containers and initContainers.

Anything else a kustomization says (generators, ``commonLabels``, ``namespace``, patch
targets, other ``$patch`` directives...) raises :class:`UnsupportedKustomization` rather
than rendering something that ``kustomize build`` would not.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = frozenset({"apiVersion", "kind", "resources", "patches", "labels", "images"})

# The patch merge key of the lists of objects that strategic merge merges (from the
# Kubernetes API's x-kubernetes-patch-merge-key); every other list is replaced whole.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "resourceClaims": "name",
}

Resource = dict[str, Any]


class UnsupportedKustomization(ValueError):
    """The kustomization uses something this renderer does not do."""


def render(overlay_dir: Path) -> list[Resource]:
    """The resources ``kustomize build overlay_dir`` gives, in no particular order."""
    return _build(Path(overlay_dir).resolve(), stack=())


def _build(directory: Path, stack: tuple[Path, ...]) -> list[Resource]:
    if directory in stack:
        raise UnsupportedKustomization(f"{directory}: kustomizations include each other")
    kustomization = _read_kustomization(directory)
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedKustomization(f"{directory}: unsupported fields {sorted(unknown)}")

    resources: list[Resource] = []
    for entry in kustomization.get("resources") or []:
        path = directory / entry
        if path.is_dir():
            resources.extend(_build(path.resolve(), (*stack, directory)))
        elif path.is_file():
            resources.extend(_load_documents(path))
        else:
            raise UnsupportedKustomization(f"{directory}: resource {entry!r} is not a file or dir")
    _check_unique(resources, directory)

    for patch_entry in kustomization.get("patches") or []:
        resources = _apply_patch_file(resources, directory, patch_entry)
    for label_entry in kustomization.get("labels") or []:
        _apply_labels(resources, directory, label_entry)
    for image_entry in kustomization.get("images") or []:
        _apply_image(resources, directory, image_entry)
    return resources


def _read_kustomization(directory: Path) -> dict[str, Any]:
    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.is_file():
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise UnsupportedKustomization(f"{path}: not a mapping")
            return loaded
    raise UnsupportedKustomization(f"{directory}: no kustomization.yaml")


def _load_documents(path: Path) -> list[Resource]:
    documents = [
        document
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document is not None
    ]
    for document in documents:
        if not isinstance(document, dict) or not {"apiVersion", "kind"} <= set(document):
            raise UnsupportedKustomization(f"{path}: a document is not a Kubernetes object")
        if document["kind"].endswith("List"):
            raise UnsupportedKustomization(f"{path}: List objects are not supported")
    return documents


def resource_id(resource: Resource) -> tuple[str, str, str]:
    """(API group, kind, name): how kustomize tells resources apart (no namespaces here)."""
    api_version: str = resource["apiVersion"]
    group = api_version.rpartition("/")[0]
    return group, resource["kind"], resource.get("metadata", {}).get("name", "")


def _check_unique(resources: list[Resource], directory: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for resource in resources:
        key = resource_id(resource)
        if key in seen:
            raise UnsupportedKustomization(f"{directory}: {key} is defined twice")
        seen.add(key)


def _apply_patch_file(resources: list[Resource], directory: Path, entry: Any) -> list[Resource]:
    if not isinstance(entry, dict) or set(entry) != {"path"}:
        raise UnsupportedKustomization(f"{directory}: only `patches: - path: file` is supported")
    for patch in _load_documents(directory / entry["path"]):
        matches = [r for r in resources if resource_id(r) == resource_id(patch)]
        if len(matches) != 1:
            raise UnsupportedKustomization(
                f"{directory}: patch {entry['path']} matches {len(matches)} resources"
            )
        target = matches[0]
        if patch.get("$patch") == "delete":
            resources = [r for r in resources if r is not target]
            continue
        body = {key: value for key, value in patch.items() if key not in ("apiVersion", "kind")}
        merged = strategic_merge(target, body)
        resources = [merged if r is target else r for r in resources]
    return resources


def strategic_merge(original: Any, patch: Any) -> Any:
    """``patch`` merged into a copy of ``original`` (see the module docstring)."""
    if not isinstance(original, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    _refuse_directives(patch)
    merged = copy.deepcopy(original)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged and isinstance(value, dict):
            merged[key] = strategic_merge(merged[key], value)
        elif key in merged and isinstance(value, list):
            merged[key] = _merge_list(key, merged[key], value)
        else:
            merged[key] = _without_deleted(copy.deepcopy(value))
    return merged


def _refuse_directives(patch: dict[str, Any]) -> None:
    directives = [key for key in patch if key.startswith("$")]
    if directives:
        raise UnsupportedKustomization(f"unsupported patch directives {directives}")


def _merge_key(field: str, items: list[Any]) -> str | None:
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    if field == "ports":  # a container's ports, or a Service's
        return "containerPort" if all("containerPort" in item for item in items) else "port"
    return MERGE_KEYS.get(field)


def _merge_list(field: str, original: list[Any], patch: list[Any]) -> list[Any]:
    """Like kustomize: the patch's elements first (merged with the original's of the same
    key), in the patch's order, then the original's others in their order."""
    key = _merge_key(field, patch)
    if key is None:
        return _without_deleted(copy.deepcopy(patch))
    originals = {item.get(key): item for item in original if isinstance(item, dict)}
    merged: list[Any] = []
    mentioned = set()
    for item in patch:
        if key not in item:
            raise UnsupportedKustomization(f"an item of {field} has no merge key {key!r}")
        mentioned.add(item[key])
        directive = item.get("$patch")
        if directive == "delete":
            continue
        if directive is not None:
            raise UnsupportedKustomization(f"unsupported $patch {directive!r} in {field}")
        if item[key] in originals:
            merged.append(strategic_merge(originals[item[key]], item))
        else:
            merged.append(_without_deleted(copy.deepcopy(item)))
    merged.extend(
        copy.deepcopy(item)
        for item in original
        if not (isinstance(item, dict) and item.get(key) in mentioned)
    )
    return merged


def _without_deleted(value: Any) -> Any:
    """New content: nulls and ``$patch: delete`` elements drop out, as in kustomize."""
    if isinstance(value, dict):
        _refuse_directives(value)
        return {k: _without_deleted(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [
            _without_deleted(item)
            for item in value
            if not (isinstance(item, dict) and item.get("$patch") == "delete")
        ]
    return value


def _apply_labels(resources: list[Resource], directory: Path, entry: Any) -> None:
    if not isinstance(entry, dict) or not set(entry) <= {"pairs", "includeSelectors"}:
        raise UnsupportedKustomization(f"{directory}: labels take pairs and includeSelectors")
    if entry.get("includeSelectors", False):
        raise UnsupportedKustomization(f"{directory}: labels with includeSelectors: true")
    pairs = {str(name): str(value) for name, value in (entry.get("pairs") or {}).items()}
    for resource in resources:
        metadata = resource.setdefault("metadata", {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **pairs}


def _apply_image(resources: list[Resource], directory: Path, entry: Any) -> None:
    if not isinstance(entry, dict) or not set(entry) <= {"name", "newName", "newTag", "digest"}:
        raise UnsupportedKustomization(f"{directory}: images take name, newName, newTag, digest")
    for resource in resources:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        for field in ("containers", "initContainers"):
            for container in pod.get(field) or []:
                name, tag = _split_image(container.get("image", ""))
                if name != entry["name"]:
                    continue
                if "digest" in entry:
                    tag = "@" + entry["digest"]
                elif "newTag" in entry:
                    tag = ":" + str(entry["newTag"])
                container["image"] = entry.get("newName", name) + tag


def _split_image(image: str) -> tuple[str, str]:
    """``registry:5000/repo:tag`` → (``registry:5000/repo``, ``:tag``); digests likewise."""
    if "@" in image:
        name, _, digest = image.partition("@")
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""
