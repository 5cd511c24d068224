"""The Node's labels and taints: interLink's own, plus the VK config's NodeLabels/NodeTaints."""

from __future__ import annotations

import pytest

from vnode.kube import ApiError
from vnode.node import INTERLINK_TAINT, NodeKeeper, NodeSpec, desired_taints, node_status, parse_taint

SITE = {"key": "testbed.interlink/site", "value": "htcondor", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("text", "taint"),
    [
        ("testbed.interlink/site=htcondor:NoSchedule", SITE),
        ("dedicated:NoExecute", {"key": "dedicated", "effect": "NoExecute"}),
    ],
)
def test_parse_taint(text: str, taint: dict[str, str]) -> None:
    assert parse_taint(text) == taint


@pytest.mark.parametrize("text", ["no-effect", "k=v", "k=v:Sometimes"])
def test_parse_taint_refuses_what_kubectl_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected KEY"):
        parse_taint(text)


NOT_READY_NO_EXECUTE = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "timeAdded": "t"}


def test_the_controllers_taints_are_kept_and_stale_own_ones_dropped() -> None:
    existing = [INTERLINK_TAINT, {"key": "old-site", "effect": "NoSchedule"}, NOT_READY_NO_EXECUTE]
    assert desired_taints(existing, (SITE,)) == [INTERLINK_TAINT, SITE, NOT_READY_NO_EXECUTE]
    assert desired_taints(None) == [INTERLINK_TAINT]


def test_labels_are_interlinks() -> None:
    labels = NodeSpec("vk", "127.0.0.1", 10250).labels()
    assert labels["kubernetes.io/arch"] == labels["kubernetes.io/os"] == "virtual-kubelet"


def test_extra_labels_never_replace_interlinks() -> None:
    spec = NodeSpec(
        "vk-htcondor",
        "127.0.0.1",
        10350,
        runtime="htcondor",
        extra_labels={"testbed.interlink/batch-system": "htcondor", "kubernetes.io/hostname": "other"},
    )
    labels = spec.labels()
    assert labels["testbed.interlink/batch-system"] == "htcondor"
    assert labels["kubernetes.io/hostname"] == "vk-htcondor"
    assert labels["virtual-node.interlink/type"] == "virtual-kubelet"
    status = node_status(spec, True, "ok", "t0", "t1")
    assert status["nodeInfo"]["containerRuntimeVersion"] == "htcondor://testbed"
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10350


class RecordingKube:
    """The Node as the API server holds it; a PATCH with a stale resourceVersion is a 409."""

    def __init__(self, node: dict | None, conflicts: int = 0) -> None:
        self.node = node
        self.conflicts = conflicts
        self.patches: list[tuple[str, dict]] = []

    def get(self, path: str) -> dict:
        if self.node is None:
            raise ApiError(404, "not found")
        return self.node

    def post(self, path: str, body: dict) -> dict:
        self.node = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
        return self.node

    def patch(self, path: str, body: dict, content_type: str = "") -> dict:
        self.patches.append((path, body))
        if self.conflicts:
            self.conflicts -= 1
            raise ApiError(409, "the object has been modified")
        return self.node


def test_refreshes_write_the_status_only_so_the_controllers_taints_are_never_raced() -> None:
    kube = RecordingKube(None)
    keeper = NodeKeeper(kube, NodeSpec("vk", "127.0.0.1", 10250))
    keeper.register()
    keeper.update(False, "waiting")
    keeper.update(True, "up")
    assert [path for path, _ in kube.patches] == ["/api/v1/nodes/vk/status"] * 2


def test_a_restart_fixes_its_own_taints_with_a_resource_version_and_retries_a_conflict() -> None:
    node = {
        "metadata": {"name": "vk", "resourceVersion": "7", "labels": {}},
        "spec": {"taints": [NOT_READY_NO_EXECUTE]},
    }
    kube = RecordingKube(node, conflicts=1)
    NodeKeeper(kube, NodeSpec("vk", "127.0.0.1", 10250, extra_taints=(SITE,))).register()
    assert len(kube.patches) == 2
    _, body = kube.patches[-1]
    assert body["metadata"]["resourceVersion"] == "7"
    assert body["spec"]["taints"] == [INTERLINK_TAINT, SITE, NOT_READY_NO_EXECUTE]
