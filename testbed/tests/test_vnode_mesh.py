"""A full-mesh site (--full-mesh): CreatePod's wstunnel set-up cannot get its pod an IP in
this cluster, so the pod fails ProviderFailed after ~31 s, and interLink's only pod sync
worker holds every other pod event meanwhile. Pods that opt out run normally."""

from __future__ import annotations

from pathlib import Path

import pytest
from agentfakes import drive, make_agent, make_pod, statuses_of

from vnode.mesh import (
    dummy_pod_name,
    failed_setup,
    go_duration_string,
    mesh_disabled,
    parse_go_duration,
    wstunnel_names,
)

OPT_OUT = {"interlink.eu/mesh-network": "disabled"}


@pytest.mark.parametrize(
    ("value", "disabled"),
    [("disabled", True), (" Disabled\n", True), ("DISABLED", True), ("enabled", False), ("", False), (None, False)],
)
def test_mesh_opt_out_annotation(value: str | None, disabled: bool) -> None:
    annotations = {} if value is None else {"interlink.eu/mesh-network": value}
    assert mesh_disabled(make_pod(0, annotations=annotations)) is disabled


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("1m30s", 90.0), ("1.5h", 5400.0), ("300ms", 0.3), ("0", 0.0), ("-1m", -60.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "s", "1x", "1.s5"])
def test_go_durations_go_refuses(text: str) -> None:
    assert parse_go_duration(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30s"), (90, "1m30s"), (3600, "1h0m0s"), (0.5, "500ms"), (1.5, "1.5s"), (0, "0s")]
)
def test_go_duration_strings(seconds: float, text: str) -> None:
    assert go_duration_string(seconds) == text


def test_wstunnel_names() -> None:
    assert wstunnel_names("snakejob-a.1", "snakemake") == ("snakejob-a-1-snakemake", "snakemake-wstunnel")
    base, namespace = wstunnel_names("x" * 70, "snakemake")
    assert len(base) <= 63 and base.startswith("x" * 10) and namespace == "snakemake-wstunnel"
    assert len(f"{base}-{namespace}") <= 63  # the Ingress host's first label
    name = dummy_pod_name("snakejob-a-1-snakemake", "uid")
    assert name.startswith("snakejob-a-1-snakemake-") and len(name.split("-")[-1]) == 5


def test_failed_setup_message_and_time() -> None:
    blocked, message = failed_setup(make_pod(0))
    assert blocked == 31.0  # waitForDeploymentPod's 1 s, then 30 polls of 1 s
    assert message.startswith("wstunnel pod ns-wstunnel/pod-0-ns-")
    assert message.endswith(" failed to get an IP within 30s timeout")
    blocked, message = failed_setup(make_pod(0, {"interlink.virtual-kubelet.io/wstunnel-timeout": "4500ms"}))
    assert blocked == 6.0 and message.endswith("within 4.5s timeout")
    assert failed_setup(make_pod(0, {"interlink.virtual-kubelet.io/wstunnel-timeout": "soon"}))[0] == 31.0


def test_mesh_pod_fails_provider_failed_without_a_job(tmp_path: Path) -> None:
    agent, kube, backend, clock = make_agent(tmp_path, full_mesh=True)
    agent._handle("ADDED", make_pod(0, restartPolicy="Never"))
    agent.pump()
    assert kube.patches == []  # CreatePod has not returned: no initial status
    drive(agent, clock, 30.9)
    assert kube.patches == []
    drive(agent, clock, 31.2)
    (status,) = statuses_of(kube, "pod-0")
    assert status["phase"] == "Failed" and status["reason"] == "ProviderFailed"
    assert "failed to get an IP within 30s timeout" in status["message"]
    assert "containerStatuses" not in status and "startTime" not in status  # the library's handleProviderError
    assert [(e["reason"], e["type"]) for e in kube.events] == [("ProviderCreateFailed", "Warning")]
    assert not backend.jobs
    drive(agent, clock, 60)
    assert backend.queries == []  # never in the VK's pods map


def test_mesh_setup_holds_every_other_pod_event(tmp_path: Path) -> None:
    agent, kube, backend, clock = make_agent(tmp_path, full_mesh=True)
    agent._handle("ADDED", make_pod(0, restartPolicy="Never"))
    clock.now = 1.0
    agent._handle("ADDED", make_pod(1, annotations=OPT_OUT, restartPolicy="Never"))
    agent._handle("ADDED", make_pod(2, annotations=OPT_OUT, restartPolicy="Never"))
    agent._handle("DELETED", make_pod(2))  # gone before the worker got to it
    drive(agent, clock, 30.0)
    assert not backend.jobs and not statuses_of(kube, "pod-1")
    drive(agent, clock, 31.5)
    assert list(backend.jobs) == ["100"] and backend.dirs["100"].name == "ns-uid-1"  # the opted-out pod runs
    assert not statuses_of(kube, "pod-2")


def test_mesh_pods_one_after_the_other(tmp_path: Path) -> None:
    agent, kube, _, clock = make_agent(tmp_path, full_mesh=True)
    for i in range(3):
        agent._handle("ADDED", make_pod(i, restartPolicy="Never"))
    drive(agent, clock, 100)
    failed = {name: t for t, name, body in kube.patches if body.get("status", {}).get("reason") == "ProviderFailed"}
    assert sorted(failed.values()) == pytest.approx([31, 62, 93], abs=0.2)


def test_without_restart_policy_never_the_pod_stays_pending_and_is_retried(tmp_path: Path) -> None:
    agent, kube, _, clock = make_agent(tmp_path, full_mesh=True)
    agent._handle("ADDED", make_pod(0, restartPolicy="OnFailure"))
    drive(agent, clock, 31.5)
    status = statuses_of(kube, "pod-0")[-1]
    assert status["phase"] == "Pending" and status["reason"] == "ProviderFailed"
    assert agent._mesh is not None  # the work queue's retry set it up again


def test_without_full_mesh_the_annotation_does_not_matter(tmp_path: Path) -> None:
    agent, _, backend, _clock = make_agent(tmp_path)
    agent._handle("ADDED", make_pod(0))
    agent.pump()
    assert list(backend.jobs) == ["100"]
