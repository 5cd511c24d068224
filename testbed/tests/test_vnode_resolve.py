"""Env and volume sources, resolved as the virtual-kubelet library and interLink's VK do."""

from __future__ import annotations

from typing import Any

import pytest

from vnode.resolve import MissingSource, container_env, volume_sources


class FakeSources:
    def __init__(self, objects: dict[tuple[str, str], dict[str, str]]) -> None:
        self.objects = objects

    def data(self, kind: str, name: str) -> dict[str, str] | None:
        return self.objects.get((kind, name))


SOURCES = FakeSources({("secrets", "run"): {"token": "s3cret"}, ("configmaps", "cfg"): {"a": "1", "b": "2"}})
POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}, "annotations": {"JobID": "7"}},
    "spec": {
        "nodeName": "vk",
        "containers": [{"name": "main", "resources": {"limits": {"cpu": "1500m", "memory": "1Ki"}}}],
    },
    "status": {"podIP": "127.0.0.1"},
}


def env_of(*variables: dict[str, Any], env_from: list[dict[str, Any]] | None = None) -> list[tuple[str, str]]:
    container = {**POD["spec"]["containers"][0], "env": list(variables), "envFrom": env_from or []}
    return container_env(POD, container, SOURCES)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ({"name": "V", "value": "plain"}, "plain"),
        ({"name": "V", "valueFrom": {"secretKeyRef": {"name": "run", "key": "token"}}}, "s3cret"),
        ({"name": "V", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "b"}}}, "2"),
        ({"name": "V", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, "p"),
        ({"name": "V", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}, "vk"),
        ({"name": "V", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}, "x"),
        ({"name": "V", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['JobID']"}}}, "7"),
        ({"name": "V", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}, "2"),
        ({"name": "V", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}, "1024"),
    ],
)
def test_env_values(variable: dict[str, Any], value: str) -> None:
    assert env_of(variable) == [("V", value)]


@pytest.mark.parametrize(
    ("variable", "reason", "message"),
    [
        ({"secretKeyRef": {"name": "gone", "key": "k"}}, "MandatorySecretNotFound", 'secret "gone" not found'),
        (
            {"secretKeyRef": {"name": "run", "key": "nokey"}},
            "MandatorySecretKeyNotFound",
            'key "nokey" does not exist in secret "run"',
        ),
        ({"configMapKeyRef": {"name": "gone", "key": "k"}}, "MandatoryConfigMapNotFound", 'configmap "gone" not found'),
    ],
)
def test_missing_mandatory_env_sources(variable: dict[str, Any], reason: str, message: str) -> None:
    with pytest.raises(MissingSource) as info:
        env_of({"name": "V", "valueFrom": variable})
    assert (info.value.reason, info.value.message) == (reason, message)


def test_optional_sources_are_skipped() -> None:
    optional = {"name": "V", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}}}
    assert env_of(optional, env_from=[{"secretRef": {"name": "gone", "optional": True}}]) == []


def test_env_from_with_prefix_then_explicit_env_wins() -> None:
    env = env_of({"name": "C_a", "value": "explicit"}, env_from=[{"configMapRef": {"name": "cfg"}, "prefix": "C_"}])
    assert dict(env) == {"C_a": "explicit", "C_b": "2"}


def test_volume_sources_with_items_and_missing_ones() -> None:
    pod = {
        "spec": {
            "volumes": [
                {"name": "s", "secret": {"secretName": "run"}},
                {"name": "c", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "conf/a.txt"}]}},
                {"name": "e", "emptyDir": {}},
            ]
        }
    }
    assert volume_sources(pod, SOURCES) == {"s": {"token": "s3cret"}, "c": {"conf/a.txt": "1"}}
    pod["spec"]["volumes"].append({"name": "m", "secret": {"secretName": "later"}})
    with pytest.raises(MissingSource, match='secret "later" not found'):
        volume_sources(pod, SOURCES)
