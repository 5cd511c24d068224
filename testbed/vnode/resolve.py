"""ConfigMaps, Secrets and downward-API values a pod refers to, read with the agent's rights.

Two rules from two layers of the real chain:
- env (`valueFrom`, `envFrom`) is resolved by the virtual-kubelet library before the
  provider sees the pod; a missing mandatory source is an error the library retries with
  backoff, leaving the pod Pending without any status, and reported as a Warning event;
- ConfigMap/Secret volumes are fetched by interLink's VK, which waits up to 5 minutes for
  a missing one (phase "Initializing") and then fails the pod.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any, Protocol

from .kube import ApiError, Kube
from .quantity import cpu_cores, memory_bytes


@dataclass
class MissingSource(Exception):
    """A ConfigMap/Secret (or key) the pod needs does not exist (yet)."""

    reason: str  # the virtual-kubelet event reason, e.g. MandatorySecretNotFound
    message: str  # e.g. secret "x" not found

    def __str__(self) -> str:
        return self.message


class SourceReader(Protocol):
    def data(self, kind: str, name: str) -> dict[str, str] | None: ...


class Sources:
    """Reads ConfigMaps and Secrets of one pod's namespace, each at most once per pod."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self._kube = kube
        self._namespace = namespace
        self._cache: dict[tuple[str, str], dict[str, Any] | None] = {}

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """kind is "configmaps" or "secrets"; None when it does not exist."""
        key = (kind, name)
        if key not in self._cache:
            try:
                self._cache[key] = self._kube.get(f"/api/v1/namespaces/{self._namespace}/{kind}/{name}")
            except ApiError as exc:
                if exc.status != 404:
                    raise
                self._cache[key] = None
        return self._cache[key]

    def data(self, kind: str, name: str) -> dict[str, str] | None:
        """Decoded string data (Secret values are base64 in the API)."""
        obj = self.get(kind, name)
        if obj is None:
            return None
        if kind == "secrets":
            return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        return dict(obj.get("data") or {})


def _field_value(pod: dict[str, Any], path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }
    if path in simple:
        return simple[path] or ""
    for prefix, mapping in (("metadata.labels", meta.get("labels")), ("metadata.annotations", meta.get("annotations"))):
        if path.startswith(prefix + "["):
            key = path[len(prefix) + 1 : -1].strip("'\"")
            return (mapping or {}).get(key, "")
    return ""


def _resource_value(pod: dict[str, Any], container: dict[str, Any], ref: dict[str, Any]) -> str:
    target = container
    if ref.get("containerName"):
        target = next((c for c in pod["spec"]["containers"] if c["name"] == ref["containerName"]), container)
    scope, _, resource = ref.get("resource", "").partition(".")
    value = ((target.get("resources") or {}).get(scope) or {}).get(resource)
    if resource == "cpu":
        return str(math.ceil(cpu_cores(value))) if value else "0"
    return str(memory_bytes(value)) if value else "0"


def _names(kind: str) -> tuple[str, str]:
    """("secret", "Secret") or ("configmap", "ConfigMap"), as the VK library spells them."""
    return ("secret", "Secret") if kind == "secrets" else ("configmap", "ConfigMap")


def _not_found(kind: str, name: str) -> MissingSource:
    singular, label = _names(kind)
    return MissingSource(f"Mandatory{label}NotFound", f'{singular} "{name}" not found')


def _env_ref(sources: SourceReader, kind: str, ref: dict[str, Any]) -> str | None:
    data = sources.data(kind, ref["name"])
    if data is None:
        if ref.get("optional"):
            return None
        raise _not_found(kind, ref["name"])
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        singular, label = _names(kind)
        message = f'key "{ref["key"]}" does not exist in {singular} "{ref["name"]}"'
        raise MissingSource(f"Mandatory{label}KeyNotFound", message)
    return data[ref["key"]]


def container_env(pod: dict[str, Any], container: dict[str, Any], sources: SourceReader) -> list[tuple[str, str]]:
    """The container's environment as NAME/value pairs; raises MissingSource."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = source.get(key)
            if not ref:
                continue
            data = sources.data(kind, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise _not_found(kind, ref["name"])
            env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        source = var.get("valueFrom")
        if not source:
            env[var["name"]] = var.get("value", "")
        elif "fieldRef" in source:
            env[var["name"]] = _field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            env[var["name"]] = _resource_value(pod, container, source["resourceFieldRef"])
        elif "secretKeyRef" in source:
            value = _env_ref(sources, "secrets", source["secretKeyRef"])
            if value is not None:
                env[var["name"]] = value
        elif "configMapKeyRef" in source:
            value = _env_ref(sources, "configmaps", source["configMapKeyRef"])
            if value is not None:
                env[var["name"]] = value
    return list(env.items())


def volume_sources(pod: dict[str, Any], sources: SourceReader) -> dict[str, dict[str, str]]:
    """Data of every ConfigMap/Secret volume (and projected source), by volume name.

    Raises MissingSource for the first one that does not exist (interLink then waits).
    """
    result: dict[str, dict[str, str]] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        wanted: list[tuple[str, dict[str, Any]]] = []
        if "configMap" in volume:
            wanted.append(("configmaps", volume["configMap"]))
        elif "secret" in volume:
            wanted.append(("secrets", {**volume["secret"], "name": volume["secret"].get("secretName", "")}))
        elif "projected" in volume:
            for projection in volume["projected"].get("sources") or []:
                if "configMap" in projection:
                    wanted.append(("configmaps", projection["configMap"]))
                elif "secret" in projection:
                    wanted.append(("secrets", projection["secret"]))
        else:
            continue
        merged: dict[str, str] = {}
        for kind, ref in wanted:
            data = sources.data(kind, ref.get("name", ""))
            if data is None:
                if ref.get("optional"):
                    continue
                raise MissingSource("FailedMount", f'{_names(kind)[0]} "{ref.get("name", "")}" not found')
            items = ref.get("items")
            if items:
                merged.update({item["path"]: data[item["key"]] for item in items if item["key"] in data})
            else:
                merged.update(data)
        result[volume["name"]] = merged
    return result
