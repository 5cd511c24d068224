"""The Node object: interLink's labels and taint, capacity, addresses, Ready condition.

The node-lifecycle controller runs, as in a real cluster: it owns the `node.kubernetes.io/*`
taints (not-ready/unreachable, NoSchedule and NoExecute) from the Ready condition and the
heartbeat, and evicts pods whose toleration of the NoExecute ones runs out (every pod gets
300 s from the DefaultTolerationSeconds admission plugin unless it says otherwise). The
agent, like the VK (node.go: ensureNode creates the Node, updateNodeStatus patches only the
status), writes labels and taints once, when it starts, and the status afterwards. A
read-modify-write of the taints on every refresh would race the controller: a stale list
written back drops a NoExecute taint the controller just added. (The 1.20 controller can
also stop tainting a node after it flapped, whoever wrote the taints: it keeps the node
in its queue's set, which markNodeForTainting resets only from 1.21 on; the eviction
test restarts the controller-manager first.)
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from .capacity import apply_resources
from .kube import ApiError, Kube

log = logging.getLogger(__name__)

INTERLINK_TAINT = {"key": "virtual-node.interlink/no-schedule", "value": "true", "effect": "NoSchedule"}


@dataclass(frozen=True)
class NodeSpec:
    name: str
    address: str
    port: int
    capacity: dict[str, str] = field(
        default_factory=lambda: {"cpu": "8", "memory": "49Gi", "pods": "100", "nvidia.com/gpu": "0"}
    )
    version: str = "v1.20.2-vk-interlink-testbed"
    runtime: str = "slurm"  # the batch system behind the node, shown as containerRuntimeVersion
    extra_labels: dict[str, str] = field(default_factory=dict)  # the VK config's NodeLabels
    extra_taints: tuple[dict[str, str], ...] = ()  # the VK config's NodeTaints

    def labels(self) -> dict[str, str]:
        return {
            **self.extra_labels,
            "alpha.service-controller.kubernetes.io/exclude-balancer": "true",
            "kubernetes.io/arch": "virtual-kubelet",
            "kubernetes.io/os": "virtual-kubelet",
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/role": "agent",
            "node.kubernetes.io/exclude-from-external-load-balancers": "true",
            "virtual-node.interlink/type": "virtual-kubelet",
        }


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


CONTROLLER_TAINT_PREFIX = "node.kubernetes.io/"  # the node-lifecycle controller's


def desired_taints(
    existing: list[dict[str, Any]] | None, extra: tuple[dict[str, str], ...] = ()
) -> list[dict[str, Any]]:
    """The VK's taints plus whatever the node-lifecycle controller has set."""
    kept = [t for t in existing or [] if str(t.get("key", "")).startswith(CONTROLLER_TAINT_PREFIX)]
    return [INTERLINK_TAINT, *extra, *kept]


def parse_taint(text: str) -> dict[str, str]:
    """KEY[=VALUE]:EFFECT, as `kubectl taint` writes it."""
    rest, sep, effect = text.rpartition(":")
    if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ValueError(f"taint {text!r}: expected KEY[=VALUE]:NoSchedule|PreferNoSchedule|NoExecute")
    key, _, value = rest.partition("=")
    return {"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect}


def node_status(
    spec: NodeSpec,
    ready: bool,
    message: str,
    transition: str,
    heartbeat: str,
    capacity: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Status subresource body: conditions, addresses, the kubelet port, capacity (the
    configured one unless `capacity` says otherwise; allocatable is always the same)."""
    capacity = dict(spec.capacity if capacity is None else capacity)

    def condition(kind: str, status: str, reason: str, text: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": text,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": transition,
        }

    return {
        "conditions": [
            condition("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady", message),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID"),
            condition(
                "NetworkUnavailable",
                "False" if ready else "True",
                "RouteCreated" if ready else "NoRouteCreated",
                "virtual node network",
            ),
        ],
        "addresses": [{"type": "InternalIP", "address": spec.address}, {"type": "Hostname", "address": spec.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.port}},
        "capacity": capacity,
        "allocatable": dict(capacity),
        "nodeInfo": {
            "kubeletVersion": spec.version,
            "kubeProxyVersion": spec.version,
            "operatingSystem": "linux",
            "architecture": "amd64",
            "containerRuntimeVersion": f"{spec.runtime}://testbed",
            "osImage": "interLink testbed",
            "kernelVersion": "",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


class NodeKeeper:
    """Registers the Node and refreshes it after every ping of the batch system."""

    def __init__(self, kube: Kube, spec: NodeSpec) -> None:
        self._kube = kube
        self._spec = spec
        self._path = f"/api/v1/nodes/{spec.name}"
        self._ready: bool | None = None
        self._transition = now()
        self.capacity = dict(spec.capacity)  # the VK's p.node: ping answers overwrite cpu and memory

    def register(self) -> None:
        """Create the Node, or bring an existing one's labels and own taints up to date.

        The patch carries the resourceVersion it was computed from, so a concurrent change
        by the node-lifecycle controller makes it fail (409) and it is computed again."""
        for _ in range(5):
            try:
                node = self._kube.get(self._path)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                body = {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": self._spec.name, "labels": self._spec.labels()},
                    "spec": {"taints": [INTERLINK_TAINT, *self._spec.extra_taints]},
                }
                self._kube.post("/api/v1/nodes", body)
                log.info("registered node %s", self._spec.name)
                return
            metadata, spec = node["metadata"], node.get("spec") or {}
            taints = desired_taints(spec.get("taints"), self._spec.extra_taints)
            labels = self._spec.labels()
            has_labels = all((metadata.get("labels") or {}).get(k) == v for k, v in labels.items())
            if has_labels and taints == (spec.get("taints") or []):
                return
            try:
                self._kube.patch(
                    self._path,
                    {
                        "metadata": {"labels": labels, "resourceVersion": metadata["resourceVersion"]},
                        "spec": {"taints": taints},
                    },
                )
                return
            except ApiError as exc:
                if exc.status != 409:
                    raise
        raise ApiError(409, f"node {self._spec.name} kept changing while its taints were written")

    def update(self, ready: bool, message: str, resources: dict[str, str] | None = None) -> None:
        """Write the status (never the spec: see the module's docstring).

        `resources`: the free cpu/memory a successful ping reported; they replace capacity and
        allocatable from now on (interLink's updateNodeResources; see capacity.py)."""
        if ready and resources:
            updated = apply_resources(self.capacity, resources)
            if updated != self.capacity:
                log.info(
                    "node %s: capacity cpu %s, memory %s (the batch system's free resources)",
                    self._spec.name,
                    updated.get("cpu"),
                    updated.get("memory"),
                )
            self.capacity = updated
        if ready != self._ready:
            if self._ready is not None:
                log.warning("node %s is now %s: %s", self._spec.name, "Ready" if ready else "NotReady", message)
            self._ready = ready
            self._transition = now()
        self._kube.patch(
            self._path + "/status",
            {"status": node_status(self._spec, ready, message, self._transition, now(), self.capacity)},
        )
