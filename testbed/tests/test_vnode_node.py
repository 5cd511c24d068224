"""The Node's labels and taints: interLink's own, plus the VK config's NodeLabels/NodeTaints."""

from __future__ import annotations

import pytest

from vnode.node import INTERLINK_TAINT, NodeSpec, desired_taints, node_status, parse_taint

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
