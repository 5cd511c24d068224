"""The node's capacity from the batch system's free resources (interLink 0.6.2 + Slurm plugin
HEAD; --static-capacity keeps the Helm default), and the released plugins' ping that answers
200 whatever Slurm says (--ping-always-ok)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from agentfakes import make_agent, make_pod, statuses_of

from vnode.batch import LocalBackend, SlurmBackend
from vnode.capacity import apply_resources, host_resources, parse_sinfo_json, parse_sinfo_text

# `sinfo --json` of this testbed's Slurm 22.05 (one node, both cpus allocated), trimmed
SINFO_JSON = {
    "meta": {"Slurm": {"version": {"major": 22, "micro": 8, "minor": 5}}},
    "errors": [],
    "nodes": [{"name": "localhost", "cpus": 2, "alloc_cpus": 2, "real_memory": 20000, "free_memory": 19164,
               "alloc_memory": 600}],
}  # fmt: skip


def test_json_path_reports_free_cpus_and_unallocated_memory() -> None:
    assert parse_sinfo_json(json.dumps(SINFO_JSON)) == {"cpu": "0", "memory": "19400Mi"}
    idle = {"nodes": [{"cpus": 2, "alloc_cpus": 0, "real_memory": 20000, "free_memory": 19164, "alloc_memory": 0}]}
    assert parse_sinfo_json(json.dumps(idle)) == {"cpu": "2", "memory": "19164Mi"}  # real - free without alloc


@pytest.mark.parametrize(
    "stdout",
    [
        "not json",
        "[]",
        json.dumps({"nodes": []}),
        json.dumps({"meta": {}}),
        json.dumps({"nodes": [{"cpus": 2.0}]}),  # Go's int64 fields refuse a float
        json.dumps({"nodes": [{"free_memory": {"set": True, "number": 5}}]}),  # Slurm 23's shape
    ],
)
def test_json_path_errors_fall_back(stdout: str) -> None:
    with pytest.raises(ValueError):
        parse_sinfo_json(stdout)


def test_text_path_reports_installed_cpus_and_free_memory() -> None:
    assert parse_sinfo_text("2|20000|19164\n") == {"cpu": "2", "memory": "19164Mi"}
    assert parse_sinfo_text("4|8000|100\nN/A|1|1\n2|x|5\nbad\n") == {"cpu": "4", "memory": "100Mi"}
    assert parse_sinfo_text("") == {"cpu": "0", "memory": "0Mi"}


def test_host_resources() -> None:
    meminfo = "MemTotal:       16000000 kB\nMemFree:          100000 kB\nMemAvailable:    2097152 kB\n"
    assert host_resources(2, meminfo) == {"cpu": "2", "memory": "2048Mi"}


def test_apply_resources_overwrites_cpu_and_memory_only() -> None:
    helm = {"cpu": "8", "memory": "49Gi", "pods": "100", "nvidia.com/gpu": "0"}
    assert apply_resources(helm, {"cpu": "1", "memory": "512Mi", "pods": "3"}) == {
        **helm,
        "cpu": "1",
        "memory": "512Mi",
    }
    assert apply_resources(helm, {"cpu": "lots", "memory": ""}) == helm  # invalid or empty: kept
    assert apply_resources(helm, None) == helm


def fake_sinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json_out: str, json_err: str, text_err: str) -> None:
    script = tmp_path / "bin" / "sinfo"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --json ]; then\n'
        f"  printf '%s' '{json_out}'; printf '%s' '{json_err}' >&2\n"
        "else\n"
        f"  echo '2|20000|19164'; printf '%s' '{text_err}' >&2\n"
        "fi\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


def test_slurm_ping_reads_sinfo_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_sinfo(tmp_path, monkeypatch, json.dumps(SINFO_JSON), "", "")
    assert SlurmBackend().ping() == (True, "sinfo: 0 cpu and 19400Mi memory free", {"cpu": "0", "memory": "19400Mi"})


def test_slurm_ping_falls_back_to_text_on_any_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_sinfo(tmp_path, monkeypatch, json.dumps(SINFO_JSON), "sinfo: warning: something", "")
    assert SlurmBackend().ping()[2] == {"cpu": "2", "memory": "19164Mi"}


def test_slurm_ping_fails_when_sinfo_complains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    down = "slurm_load_partitions: Unable to contact slurm controller (connect failure)"
    fake_sinfo(tmp_path, monkeypatch, "", down, down)
    ready, message, resources = SlurmBackend().ping()
    assert not ready and "Unable to contact slurm controller" in message and resources is None


def test_local_ping_reports_this_machine() -> None:
    ready, _, resources = LocalBackend().ping()
    assert ready and resources is not None and resources["cpu"] == str(os.cpu_count())
    assert resources["memory"].endswith("Mi")


def node_writes(kube: Any) -> list[dict[str, Any]]:
    return [body["status"] for _, name, body in kube.patches if name == "vk-test" and "status" in body]


def refreshed(tmp_path: Path, **config: Any) -> tuple[Any, Any, Any]:
    agent, kube, backend, _clock = make_agent(tmp_path, **config)
    kube.objects["/api/v1/nodes/vk-test"] = {"spec": {}}
    return agent, kube, backend


def test_capacity_follows_the_free_resources_of_each_ping(tmp_path: Path) -> None:
    agent, kube, backend = refreshed(tmp_path)
    backend.resources = {"cpu": "1", "memory": "19400Mi"}
    agent._refresh_node()
    status = node_writes(kube)[-1]
    assert status["capacity"]["cpu"] == status["allocatable"]["cpu"] == "1"
    assert status["capacity"]["memory"] == status["allocatable"]["memory"] == "19400Mi"
    assert status["capacity"]["pods"] == "100"
    backend.down = True  # a failed ping changes nothing
    agent._refresh_node()
    status = node_writes(kube)[-1]
    assert status["conditions"][0]["status"] == "False" and status["capacity"]["cpu"] == "1"


def test_static_capacity_keeps_the_helm_default(tmp_path: Path) -> None:
    agent, kube, backend = refreshed(tmp_path, capacity_from_batch=False)
    backend.resources = {"cpu": "1", "memory": "19400Mi"}
    agent._refresh_node()
    assert node_writes(kube)[-1]["capacity"] == {"cpu": "8", "memory": "49Gi", "pods": "100", "nvidia.com/gpu": "0"}


def test_released_plugin_ping_keeps_the_node_ready_with_slurm_down(tmp_path: Path) -> None:
    agent, kube, backend = refreshed(tmp_path, ping_always_ok=True)
    backend.down = True
    backend.resources = {"cpu": "1", "memory": "1Mi"}
    agent._refresh_node()
    status = node_writes(kube)[-1]
    assert status["conditions"][0]["type"] == "Ready" and status["conditions"][0]["status"] == "True"
    assert status["capacity"]["cpu"] == "8"  # its answer (sinfo -s text) carries no resources
    # the scheduler keeps sending pods; they fail at sbatch
    backend.submit_error = "sbatch: error: Batch job submission failed: Unable to contact slurm controller\n"
    agent._handle("ADDED", make_pod(0))
    agent.pump()
    last = statuses_of(kube, "pod-0")[-1]
    assert last["phase"] == "Failed" and last["reason"] == "ProviderFailed"
    assert "Unable to contact slurm controller" in last["message"]


def test_plugin_head_ping_makes_the_node_not_ready_with_slurm_down(tmp_path: Path) -> None:
    agent, kube, backend = refreshed(tmp_path)
    backend.down = True
    agent._refresh_node()
    assert node_writes(kube)[-1]["conditions"][0]["status"] == "False"
