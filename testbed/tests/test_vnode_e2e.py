"""End to end on the running testbed: pods created with the executor's rights.

Opt-in (marker `testbed`): run testbed/up.sh, then `pytest testbed/tests --testbed`.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from vnode.kube import ApiError, Kube

pytestmark = pytest.mark.testbed
LABEL = "created-by=vnode-e2e-tests"


@pytest.fixture(scope="module")
def admin(testbed_env: dict[str, str]) -> Iterator[Kube]:
    kube = Kube(testbed_env["TESTBED_ADMIN_KUBECONFIG"])
    yield kube
    kube.close()


@pytest.fixture(scope="module")
def executor(testbed_env: dict[str, str], admin: Kube) -> Iterator[Kube]:
    kube = Kube(testbed_env["TESTBED_EXECUTOR_KUBECONFIG"])
    yield kube
    kube.request(
        "DELETE", f"/api/v1/namespaces/{testbed_env['TESTBED_NAMESPACE']}/pods", params={"labelSelector": LABEL}
    )
    kube.close()


def pod_manifest(
    name: str,
    command: str,
    limits: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "docker://busybox",
        "command": ["/bin/sh", "-c", command],
        "resources": {
            "limits": limits or {"cpu": "1", "memory": "100Mi"},
            "requests": {"cpu": "100m", "memory": "10Mi"},
        },
        **extra.pop("container", {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict([LABEL.split("=")]), "annotations": annotations or {}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "nodeSelector": {"virtual-node.interlink/type": "virtual-kubelet"},
            "tolerations": [{"key": "virtual-node.interlink/no-schedule", "operator": "Exists"}],
            "containers": [container],
            **extra,
        },
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def status_timing(testbed_env: dict[str, str]) -> str:
    """The node's --status-timing (TESTBED_VNODE_STATUS; older env files: real)."""
    return testbed_env.get("TESTBED_VNODE_STATUS", "real")


def wait_phase(
    kube: Kube, path: str, phases: tuple[str, ...], timeout: float = 120
) -> tuple[dict[str, Any], list[str]]:
    """Poll until the pod reaches one of `phases`; returns it and the phases seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = kube.get(path)
        phase = pod["status"].get("phase", "")
        if not seen or seen[-1] != phase:
            seen.append(phase)
        if phase in phases:
            return pod, seen
        time.sleep(0.1)
    raise AssertionError(f"{path} still {seen[-1] if seen else '?'} after {timeout}s (seen {seen})")


def test_pod_runs_as_a_batch_job_serves_logs_and_is_deleted(testbed_env: dict[str, str], executor: Kube) -> None:
    ns = testbed_env["TESTBED_NAMESPACE"]
    name = unique("e2e-ok")
    executor.post(f"/api/v1/namespaces/{ns}/pods", pod_manifest(name, "echo hello-$((6*7)); sleep 2; echo bye"))
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    pod, seen = wait_phase(executor, path, ("Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    assert seen[0] == "Pending"
    if status_timing(testbed_env) == "fast":
        assert "Running" in seen  # with interLink's timing a 2 s job is usually first seen finished
    assert pod["spec"]["nodeName"] == testbed_env["TESTBED_NODE"]
    job_id = pod["metadata"]["annotations"]["JobID"]
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (0, "Completed")

    logs = _logs(executor, path)
    assert "hello-42" in logs and "bye" in logs
    assert "highest exit code 0" in logs  # job.out comes first, as in the plugin
    assert len(_logs(executor, path, tailLines=2).splitlines()) == 3  # the plugin's off-by-one

    if testbed_env["TESTBED_VNODE_MODE"] == "slurm":
        sacct = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert sacct.stdout.split() == ["COMPLETED|0:0"]

    job_dir = Path(testbed_env["TESTBED_JOBS_DIR"]) / f"{ns}-{pod['metadata']['uid']}"
    assert (job_dir / "run-main.out").exists()
    executor.delete(path)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            executor.get(path)
        except ApiError as exc:
            assert exc.status == 404
            break
        time.sleep(0.1)
    else:
        raise AssertionError("pod not removed after delete")
    # A finished pod is removed by the API server at once (no grace period): the node then
    # sees the DELETED event and cleans up a few milliseconds later.
    deadline = time.monotonic() + 5
    while job_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not job_dir.exists()


def _logs(kube: Kube, path: str, **params: Any) -> str:
    response = kube._client.get(path + "/log", params=params)  # plain text, not JSON
    response.raise_for_status()
    return response.text


def test_failing_command_fails_the_pod_with_the_exit_code(testbed_env: dict[str, str], executor: Kube) -> None:
    ns = testbed_env["TESTBED_NAMESPACE"]
    name = unique("e2e-fail")
    executor.post(f"/api/v1/namespaces/{ns}/pods", pod_manifest(name, "echo failing; exit 3"))
    pod, _ = wait_phase(executor, f"/api/v1/namespaces/{ns}/pods/{name}", ("Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Failed" and pod["status"]["reason"] == "Error: 3"
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (3, "Error: 3")
    assert "failing" in _logs(executor, f"/api/v1/namespaces/{ns}/pods/{name}")


def test_missing_host_directory_is_provider_failed(testbed_env: dict[str, str], executor: Kube) -> None:
    ns = testbed_env["TESTBED_NAMESPACE"]
    name = unique("e2e-hostpath")
    manifest = pod_manifest(
        name,
        "true",
        container={"volumeMounts": [{"name": "work", "mountPath": "/work"}]},
        volumes=[{"name": "work", "hostPath": {"path": "/nonexistent/e2e", "type": "Directory"}}],
    )
    executor.post(f"/api/v1/namespaces/{ns}/pods", manifest)
    pod, _ = wait_phase(executor, f"/api/v1/namespaces/{ns}/pods/{name}", ("Failed", "Succeeded"), timeout=30)
    status = pod["status"]
    assert (
        status["reason"] == "ProviderFailed"
        and "hostPath directory /nonexistent/e2e does not exist" in status["message"]
    )
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert "JobID" not in (pod["metadata"].get("annotations") or {})


def test_sbatch_rejection_is_provider_failed(testbed_env: dict[str, str], executor: Kube) -> None:
    if testbed_env["TESTBED_VNODE_MODE"] != "slurm":
        pytest.skip("local mode has no partitions to reject")
    ns = testbed_env["TESTBED_NAMESPACE"]
    name = unique("e2e-partition")
    executor.post(
        f"/api/v1/namespaces/{ns}/pods",
        pod_manifest(name, "true", annotations={"slurm-job.vk.io/flags": "--partition nope"}),
    )
    pod, _ = wait_phase(executor, f"/api/v1/namespaces/{ns}/pods/{name}", ("Failed", "Succeeded"), timeout=30)
    assert pod["status"]["reason"] == "ProviderFailed"
    assert (
        "invalid partition specified: nope" in pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    )


def test_missing_env_secret_keeps_the_pod_pending_until_it_exists(
    testbed_env: dict[str, str], executor: Kube, admin: Kube
) -> None:
    ns = testbed_env["TESTBED_NAMESPACE"]
    name, secret = unique("e2e-secret"), unique("e2e-secret")
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}}]
    executor.post(f"/api/v1/namespaces/{ns}/pods", pod_manifest(name, 'echo "token=$TOKEN"', container={"env": env}))
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    time.sleep(3)
    pod = executor.get(path)
    assert pod["status"]["phase"] == "Pending" and "JobID" not in (pod["metadata"].get("annotations") or {})
    assert "containerStatuses" not in pod["status"]  # the VK library never got to the provider
    events = admin.get(f"/api/v1/namespaces/{ns}/events", fieldSelector=f"involvedObject.name={name}")["items"]
    warnings = [(e["reason"], e["message"]) for e in events if e["type"] == "Warning"]
    assert warnings == [("MandatorySecretNotFound", f'secret "{secret}" not found')]
    executor.post(
        f"/api/v1/namespaces/{ns}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "labels": dict([LABEL.split("=")])},
            "stringData": {"token": "t0k3n"},
        },
    )
    try:
        pod, _ = wait_phase(executor, path, ("Succeeded", "Failed"), timeout=60)
        assert pod["status"]["phase"] == "Succeeded"
        assert "token=t0k3n" in _logs(executor, path)
    finally:
        executor.delete(f"/api/v1/namespaces/{ns}/secrets/{secret}")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/nodes", False),
        ("GET", "/api/v1/namespaces/{ns}/secrets", False),
        ("GET", "/api/v1/namespaces/default/pods", False),
        ("GET", "/api/v1/namespaces/{ns}/configmaps", False),
        ("GET", "/api/v1/namespaces/{ns}/events", False),
        ("GET", "/api/v1/namespaces/{ns}/pods", True),
        ("GET", "/api/v1/namespaces/{ns}/pods?watch=1&timeoutSeconds=1", True),
    ],
)
def test_executor_has_least_privilege(
    testbed_env: dict[str, str], executor: Kube, method: str, path: str, allowed: bool
) -> None:
    response = executor._client.request(method, path.format(ns=testbed_env["TESTBED_NAMESPACE"]))
    assert response.status_code == (200 if allowed else 403), response.text


def test_real_timing_sees_short_jobs_end_ten_seconds_apart(testbed_env: dict[str, str], executor: Kube) -> None:
    """Three short jobs submitted together end within a second or two, but the Slurm plugin
    refreshes one pod per 10 s (its cache) and the VK asks one pod per request: the pods reach
    Succeeded at distinct moments at least ~10 s apart. Other active pods on the node only
    widen the gaps (and lengthen the wait)."""
    if status_timing(testbed_env) != "real":
        pytest.skip("the node runs with TESTBED_VNODE_STATUS=fast")
    ns = testbed_env["TESTBED_NAMESPACE"]
    run = unique("timing")
    names = [f"{run}-{i}" for i in range(3)]
    for name in names:
        manifest = pod_manifest(name, "echo done")
        manifest["metadata"]["labels"]["vnode-e2e-run"] = run
        executor.post(f"/api/v1/namespaces/{ns}/pods", manifest)
    succeeded: dict[str, float] = {}
    deadline = time.monotonic() + 900
    while len(succeeded) < len(names) and time.monotonic() < deadline:
        pods = executor.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=f"vnode-e2e-run={run}")["items"]
        for pod in pods:
            name, phase = pod["metadata"]["name"], pod["status"].get("phase")
            assert phase != "Failed", pod["status"]
            if phase == "Succeeded":
                succeeded.setdefault(name, time.monotonic())
        time.sleep(0.2)
    assert sorted(succeeded) == sorted(names), f"only {sorted(succeeded)} succeeded in 900 s"
    moments = sorted(succeeded.values())
    gaps = [later - earlier for earlier, later in pairwise(moments)]
    # >= 10 s between two fresh answers; 0.5 s for the 0.2 s polling and the API round trips
    assert all(gap >= 9.5 for gap in gaps), gaps


def test_no_testbed_port_can_be_a_client_connections_port(testbed_env: dict[str, str]) -> None:
    """Client connections take their local port from the ephemeral range; on a kernel
    whose range starts at 1024 the API server's connection to etcd once held 3306, and
    mariadb could not start. up.sh moves the range above every port the testbed
    listens on."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    ports = {int(line.split()[3].rsplit(":", 1)[1]) for line in listening.splitlines()}
    fixed = {2379, 2380, 3306, 6443, 6817, 6819, 9000}  # etcd, mariadb, API, Slurm, S3
    assert fixed <= ports, sorted(fixed - ports)  # the testbed is up
    assert max(fixed) < low
