"""Status as the Slurm plugin reports it and the VK writes it, for every outcome."""

from __future__ import annotations

from typing import Any

import pytest

from vnode.status import (
    CFG_NOT_FOUND,
    OOM_MESSAGE,
    TIMEOUT_MESSAGE,
    JobView,
    cfg_not_found_status,
    created_status,
    initial_status,
    job_kind,
    merge_patch,
    plugin_container_statuses,
    plugin_state,
    provider_failed_status,
    squeue_exit_code,
    vk_create_error,
    vk_merge,
    with_phase,
)

POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
    "spec": {"containers": [{"name": "main", "image": "img"}]},
}
NOW = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("compact", "state", "kind"),
    [
        ("PD", "PD", "waiting"),
        ("R", "R", "running"),
        ("CG", "CG", "running"),
        ("CD", "CD", "terminated"),
        ("F", "F", "terminated"),
        ("TO", "TO", "terminated"),
        ("OOM", "OOM", "terminated"),
        ("CA", "", "terminated"),
        ("NF", "F", "terminated"),
        ("S", "S", "waiting"),
        ("ST", "ST", "terminated"),
        ("PR", "PR", "terminated"),
        ("CF", "F", "terminated"),
        ("RQ", "R", "running"),
    ],
)
def test_plugin_reading_of_squeue_states(compact: str, state: str, kind: str) -> None:
    assert plugin_state(compact) == state
    assert job_kind(compact) == kind


@pytest.mark.parametrize(("field", "code"), [("0", 0), ("15", 15), ("9", 9), ("768", 68), ("256", 56), ("", None)])
def test_squeue_exit_code_read_like_the_plugin(field: str, code: int | None) -> None:
    assert squeue_exit_code(field) == code


def terminated(code: int, **extra: Any) -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "startedAt": "S", "finishedAt": "E", **extra}}


@pytest.mark.parametrize(
    ("view", "states"),
    [
        (JobView("PD"), [{"waiting": {}}]),
        (JobView("R", started_at="S"), [{"running": {"startedAt": "S"}}]),
        (JobView("CD", 0, {"main": "0\n"}, "S", "E"), [terminated(0)]),
        (JobView("F", 68, {"main": "3\n"}, "S", "E"), [terminated(3)]),  # the status file wins
        (JobView("F", 9, {"main": None}, "S", "E"), [terminated(9)]),  # killed: squeue's code
        (
            JobView("TO", 15, {"main": None}, "S", "E"),
            [terminated(15, reason="SlurmJobTimeout", message=TIMEOUT_MESSAGE)],
        ),
        (JobView("OOM", 0, {"main": "137"}, "S", "E"), [terminated(137, reason="OOMKilled", message=OOM_MESSAGE)]),
        (JobView("CD", 0, {"main": "garbage"}, "S", "E"), []),  # unreadable file: container left out
    ],
    ids=["pending", "running", "completed", "failed", "killed", "timeout", "oom", "bad-file"],
)
def test_plugin_container_statuses(view: JobView, states: list[dict[str, Any]]) -> None:
    result = plugin_container_statuses(["main"], view)
    assert result is not None
    assert [r["state"] for r in result] == states
    assert all(r["ready"] == ("running" in r["state"]) for r in result)


def test_unknown_job_reads_status_files_or_answers_nothing() -> None:
    assert plugin_container_statuses(["main"], JobView(None, None, {"main": None})) is None
    result = plugin_container_statuses(["main"], JobView(None, None, {"main": "2"}))
    assert result is not None and result[0]["state"] == {
        "terminated": {"exitCode": 2, "startedAt": None, "finishedAt": None}
    }


def pending() -> dict[str, Any]:
    return initial_status(POD, NOW, "127.0.0.1")


def merged(*views: JobView, names: tuple[str, ...] = ("main",)) -> dict[str, Any]:
    status = pending()
    for view in views:
        remote = plugin_container_statuses(list(names), view)
        assert remote is not None
        status = vk_merge(status, remote)
    return status


def test_initial_status_is_pending_without_container_statuses() -> None:
    # interLink CreatePod: setPodInitialStatus notifies BEFORE the containers are appended
    status = pending()
    assert status["phase"] == "Pending" and status["startTime"] == NOW and status["podIP"] == "127.0.0.1"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Initialized": "True",
        "Ready": "False",
        "PodScheduled": "True",
    }
    assert "containerStatuses" not in status


def test_container_statuses_come_with_the_next_update() -> None:
    status = created_status(pending(), POD)
    entry = status["containerStatuses"][0]
    assert (entry["name"], entry["image"], entry["ready"]) == ("main", "img", False)
    assert entry["state"] == {
        "waiting": {
            "reason": "Remote pod submitted",
            "message": "The pod has been submitted to the remote plugin for creation",
        }
    }
    assert created_status(status, POD) == status  # appended once
    assert {k: v for k, v in status.items() if k != "containerStatuses"} == pending()


def test_init_containers_make_the_initial_status_not_initialized() -> None:
    pod = {**POD, "spec": {**POD["spec"], "initContainers": [{"name": "setup"}]}}
    conditions = {c["type"]: c["status"] for c in initial_status(pod, NOW, "127.0.0.1")["conditions"]}
    assert conditions["Initialized"] == "False"


@pytest.mark.parametrize(
    ("views", "phase", "reason", "conditions", "container_reason"),
    [
        ([JobView("PD")], "Pending", None, ["Initialized=True", "Ready=False", "PodScheduled=True"], None),
        ([JobView("R", started_at="S")], "Running", "Running", ["Ready=True"], None),
        (
            [JobView("R", started_at="S"), JobView("CD", 0, {"main": "0"}, "S", "E")],
            "Succeeded",
            "Completed",
            ["Ready=True", "Ready=False"],
            "Completed",
        ),
        (
            [JobView("CD", 0, {"main": "0"}, None, "E")],
            "Succeeded",
            "Completed",
            ["Initialized=True", "Ready=False", "PodScheduled=True", "Ready=False"],
            "Completed",
        ),
        (
            [JobView("R", started_at="S"), JobView("F", 68, {"main": "3"}, "S", "E")],
            "Failed",
            "Error: 3",
            ["Ready=True"],
            "Error: 3",
        ),  # Ready=True stays on a Failed pod
        (
            [JobView("TO", 15, {"main": None}, "S", "E")],
            "Failed",
            "Error: 15",
            ["Initialized=True", "Ready=False", "PodScheduled=True"],
            "Error: 15",
        ),
    ],
    ids=["pending", "running", "succeeded", "succeeded-unseen-running", "failed", "timeout"],
)
def test_vk_merge_outcomes(
    views: list[JobView], phase: str, reason: str | None, conditions: list[str], container_reason: str | None
) -> None:
    status = merged(*views)
    assert status["phase"] == phase
    assert status.get("reason") == reason
    assert [f"{c['type']}={c['status']}" for c in status["conditions"]] == conditions
    if container_reason:
        assert status["containerStatuses"][0]["state"]["terminated"]["reason"] == container_reason
    assert "message" not in status  # the VK never sets the pod message for job outcomes


def test_configuring_job_reads_as_finished_and_the_pod_succeeds_before_it_ran() -> None:
    # squeue's CF (configuring): the plugin's regex finds "F"; no status file yet, so the
    # exit code is squeue's (0 for a job that has not run): terminated 0 -> Succeeded.
    assert plugin_state("CF") == "F" and job_kind("CF") == "terminated"
    remote = plugin_container_statuses(["main"], JobView("CF", squeue_exit_code("0"), {"main": None}, None, "E"))
    assert remote is not None and remote[0]["state"]["terminated"]["exitCode"] == 0
    status = vk_merge(pending(), remote)
    assert status["phase"] == "Succeeded" and status["reason"] == "Completed"


def test_timeout_keeps_the_plugin_message_under_the_vk_reason() -> None:
    terminated_state = merged(JobView("TO", 15, {"main": None}, "S", "E"))["containerStatuses"][0]["state"][
        "terminated"
    ]
    assert terminated_state == {
        "exitCode": 15,
        "reason": "Error: 15",
        "message": TIMEOUT_MESSAGE,
        "startedAt": "S",
        "finishedAt": "E",
    }


def test_one_failed_container_fails_the_pod_and_renames_every_reason() -> None:
    pod = {**POD, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    status = initial_status(pod, NOW, "127.0.0.1")
    remote = plugin_container_statuses(["a", "b"], JobView("F", 0, {"a": "0", "b": "2"}, "S", "E"))
    assert remote is not None
    status = vk_merge(status, remote)
    assert status["phase"] == "Failed" and status["reason"] == "Error: 2"
    assert [c["state"]["terminated"]["reason"] for c in status["containerStatuses"]] == ["Error: 2", "Error: 2"]


def test_running_while_another_container_finished() -> None:
    remote = [
        {"name": "a", "state": {"running": {"startedAt": "S"}}, "ready": True},
        {"name": "b", "state": {"terminated": {"exitCode": 0}}, "ready": False},
    ]
    assert vk_merge(pending(), remote)["phase"] == "Running"


def test_provider_failed_status() -> None:
    status = provider_failed_status(POD, "boom", NOW, "127.0.0.1")
    assert status["phase"] == "Failed" and status["reason"] == "ProviderFailed" and status["message"] == "boom"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Initialized": "False",
        "Ready": "False",
        "PodScheduled": "False",
    }
    assert status["containerStatuses"][0]["state"]["terminated"] == {
        "exitCode": 1,
        "reason": "ProviderFailed",
        "message": "boom",
        "startedAt": None,
        "finishedAt": None,
    }
    assert "initContainerStatuses" not in status


def test_create_error_message_carries_the_plugin_text() -> None:
    message = vk_create_error('sbatch: error: invalid partition specified: "nope"\n')
    assert message.startswith("error doing createRequest() in RemoteExecution()")
    assert message.count("invalid partition specified") == 2 and "&#34;nope&#34;" in message


def test_volume_wait_then_cfg_not_found() -> None:
    waiting = with_phase(created_status(pending(), POD), "Initializing")
    assert waiting["phase"] == "Initializing"
    failed = cfg_not_found_status(waiting)
    assert failed["phase"] == "Failed" and failed["reason"] == CFG_NOT_FOUND
    assert "waiting" in failed["containerStatuses"][0]["state"]  # containers are left waiting


def test_merge_patch_removes_what_the_vk_drops_but_keeps_server_fields() -> None:
    old = {"phase": "Pending", "qosClass": "Burstable", "podIPs": [{"ip": "1"}], "reason": "x", "message": "m"}
    new = {"phase": "Failed", "reason": "x"}
    assert merge_patch(old, new) == {"phase": "Failed", "message": None}
