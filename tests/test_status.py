"""Pod -> job fate: one row per status the virtual kubelet can write."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snakemake_executor_plugin_interlink.status import (
    State,
    classify_pod,
    submission_in_flight,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    phase="Pending",
    node="vk-slurm",
    created=10,
    reason=None,
    message=None,
    containers=None,
    conditions=None,
    deleting=False,
    annotations=None,
):
    status = {"phase": phase}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if containers is not None:
        status["containerStatuses"] = containers
    if conditions is not None:
        status["conditions"] = conditions
    if (
        annotations is None
    ):  # the virtual kubelet writes JobID once it submitted the job
        annotations = {"JobID": "12"} if node else {}
    meta = {"name": "p", "creationTimestamp": ts(created), "annotations": annotations}
    if deleting:
        meta["deletionTimestamp"] = ts(0)
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


def terminated(code, reason=None, message=None):
    state = {
        "exitCode": code,
        "reason": reason or ("Completed" if code == 0 else f"Error: {code}"),
        "startedAt": ts(60),
        "finishedAt": ts(5),
    }
    if message:
        state["message"] = message
    return [{"name": "snakejob", "state": {"terminated": state}}]


UNSCHEDULABLE = [
    {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 node(s) had taint {node.kubernetes.io/not-ready: }",
    }
]


@pytest.mark.parametrize(
    ("manifest", "kwargs", "state", "words"),
    [
        (pod("Succeeded", containers=terminated(0)), {}, State.SUCCEEDED, []),
        (
            pod(
                "Running",
                containers=[
                    {"name": "snakejob", "state": {"running": {"startedAt": ts(3)}}}
                ],
            ),
            {},
            State.RUNNING,
            [],
        ),
        (pod(), {}, State.WAITING, ["queued on vk-slurm"]),
        (pod("Failed", containers=terminated(3)), {}, State.FAILED, ["exit code 3"]),
        (
            pod(
                "Failed",
                containers=terminated(137, message="Slurm job 12 OUT_OF_MEMORY"),
            ),
            {},
            State.FAILED,
            ["out of memory", "mem_mb"],
        ),
        (
            pod("Failed", containers=terminated(0, "OOMKilled")),
            {},
            State.FAILED,
            ["out of memory"],
        ),
        # the Slurm plugin's own reasons survive the VK's merge; with exit code 0 the
        # VK still writes Succeeded, but the job was killed (design.md 2, point 10)
        (
            pod(
                "Succeeded",
                containers=terminated(
                    0,
                    "SlurmJobTimeout",
                    "SLURM job reached its time limit and was terminated",
                ),
            ),
            {},
            State.FAILED,
            ["time limit was reached", "raise runtime"],
        ),
        (
            pod(
                "Succeeded",
                containers=terminated(
                    0,
                    "OOMKilled",
                    "SLURM job was killed due to out-of-memory condition",
                ),
            ),
            {},
            State.FAILED,
            ["out of memory", "raise mem_mb"],
        ),
        (
            pod(
                "Failed",
                containers=terminated(
                    15, message="Slurm job 9 TIMEOUT: time limit reached"
                ),
            ),
            {},
            State.FAILED,
            ["time limit", "runtime", "Slurm job 9"],
        ),
        (
            pod(
                "Failed",
                reason="ProviderFailed",
                message="sbatch: error: invalid partition specified: nope",
                containers=terminated(1),
            ),
            {},
            State.FAILED,
            ["interLink could not submit", "invalid partition specified: nope"],
        ),
        (
            pod("Failed", reason="CFGMaps/Secrets not found"),
            {},
            State.FAILED,
            ["Secret", "ConfigMaps"],
        ),
        (
            pod("Failed", reason="Evicted", message="node low on resources"),
            {},
            State.FAILED,
            ["evicted", "low on resources"],
        ),
        (pod("Failed"), {}, State.FAILED, ["no reason given"]),
        (
            pod("Running", deleting=True),
            {},
            State.FAILED,
            ["deleted outside Snakemake"],
        ),
        (
            pod(node=None, conditions=UNSCHEDULABLE),
            {"unschedulable_timeout": 600},
            State.WAITING,
            ["unschedulable", "not-ready"],
        ),
        (
            pod(node=None, created=700, conditions=UNSCHEDULABLE),
            {"unschedulable_timeout": 600},
            State.FAILED,
            [
                "no virtual node accepted",
                "--interlink-unschedulable-timeout",
                "not-ready",
            ],
        ),
        (
            pod(node=None, created=10**6, conditions=UNSCHEDULABLE),
            {"unschedulable_timeout": 0},
            State.WAITING,
            ["unschedulable"],
        ),
        (
            pod(created=4000),
            {"pending_timeout": 3600},
            State.FAILED,
            ["pending on node vk-slurm", "--interlink-pending-timeout", "NotReady"],
        ),
        (pod(created=4000), {"pending_timeout": 0}, State.WAITING, ["queued"]),
        (pod("Unknown"), {}, State.WAITING, ["lost contact"]),
        (
            pod(annotations={}),
            {"unschedulable_timeout": 600},
            State.WAITING,
            ["not submitted yet"],
        ),
        (
            pod(annotations={}, created=700),
            {"unschedulable_timeout": 600},
            State.FAILED,
            ["did not submit the job within 600 s", "Secret or ConfigMap"],
        ),
        (
            pod(
                containers=[
                    {
                        "name": "snakejob",
                        "state": {
                            "waiting": {
                                "reason": "InvalidImageName",
                                "message": "bad ref",
                            }
                        },
                    }
                ]
            ),
            {},
            State.FAILED,
            ["image error InvalidImageName", "bad ref"],
        ),
        (
            pod(
                containers=[
                    {
                        "name": "snakejob",
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": "retrying",
                            }
                        },
                    }
                ]
            ),
            {},
            State.WAITING,
            ["ImagePullBackOff"],
        ),
        (
            pod(
                created=4000,
                containers=[
                    {
                        "name": "snakejob",
                        "state": {
                            "waiting": {
                                "reason": "JobHeld",
                                "message": "via condor_hold (by user root)",
                            }
                        },
                    }
                ],
            ),
            {"pending_timeout": 3600},
            State.FAILED,
            ["--interlink-pending-timeout", "JobHeld: via condor_hold (by user root)"],
        ),
    ],
)
def test_classification(manifest, kwargs, state, words):
    status = classify_pod(manifest, NOW, **kwargs)
    assert status.state == state
    for word in words:
        assert word in status.reason


def test_exit_code_and_times_are_reported():
    manifest = pod(
        "Failed",
        containers=terminated(3),
        annotations={"JobID": "4242"},
        conditions=[
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(100)}
        ],
    )
    status = classify_pod(manifest, NOW)
    assert status.exit_code == 3
    assert status.remote_job_id == "4242"
    assert status.scheduled == NOW - timedelta(seconds=100)
    assert status.started == NOW - timedelta(seconds=60)
    assert status.finished == NOW - timedelta(seconds=5)
    assert status.created == NOW - timedelta(seconds=10)


def test_pending_timeout_counts_from_scheduling():
    manifest = pod(
        created=5000,
        conditions=[
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(100)}
        ],
    )
    assert classify_pod(manifest, NOW, pending_timeout=3600).state == State.WAITING


REAL_PODS = Path(__file__).resolve().parents[1] / "testbed" / "tests" / "data"


@pytest.mark.parametrize(
    ("name", "state", "words"),
    [
        ("pod-succeeded.json", State.SUCCEEDED, []),
        ("pod-failed-exit-3.json", State.FAILED, ["exit code 3"]),
        ("pod-slurm-timeout.json", State.FAILED, ["time limit", "raise runtime"]),
        (
            "pod-oom-no-memory-limit.json",
            State.FAILED,
            ["out of memory", "raise mem_mb"],
        ),
        (
            "pod-provider-failed-sbatch.json",
            State.FAILED,
            ["interLink could not submit"],
        ),
    ],
)
def test_real_pods_captured_on_the_testbed(name, state, words):
    """Pod objects as the testbed's virtual node wrote them (interLink's formats)."""
    status = classify_pod(json.loads((REAL_PODS / name).read_text()))
    assert status.state == state
    for word in words:
        assert word in status.reason


def running_since(minutes_ago: float, limit: str | None):
    annotations = {"JobID": "12"}
    if limit is not None:
        annotations["interlink.snakemake.io/time-limit-minutes"] = limit
    return pod(
        "Running",
        annotations=annotations,
        containers=[
            {
                "name": "snakejob",
                "state": {"running": {"startedAt": ts(minutes_ago * 60)}},
            }
        ],
    )


@pytest.mark.parametrize(
    ("minutes_ago", "limit", "state"),
    [
        (45, "30", State.FAILED),  # 30 min limit + 10 min grace passed
        (35, "30", State.RUNNING),
        (600, None, State.RUNNING),  # no known limit: waited on
        (600, "", State.RUNNING),
    ],
)
def test_a_pod_running_past_its_batch_time_limit_has_lost_its_job(
    minutes_ago, limit, state
):
    status = classify_pod(running_since(minutes_ago, limit), NOW)
    assert status.state == state
    if state == State.FAILED:
        assert "time limit of 30 min" in status.reason
        assert "interLink no longer reports it" in status.reason


FULL_NODE = [
    {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 1 Insufficient pods, 2 node(s) didn't "
        "match node selector.",
    }
]


def test_a_full_virtual_node_is_a_queue_not_a_failure():
    # more jobs than the node's pod capacity (interLink's default: 100), or a busy site
    # under interLink 0.6.2's free-resource capacity: the jobs wait for room
    status = classify_pod(
        pod(node=None, created=10**5, conditions=FULL_NODE),
        NOW,
        unschedulable_timeout=600,
    )
    assert status.state == State.WAITING
    assert "waiting for room on the virtual node" in status.reason
    assert "Insufficient pods" in status.reason


@pytest.mark.parametrize(
    ("kwargs", "in_flight"),
    [
        # bound, no JobID yet: the virtual node may be running sbatch right now
        ({"annotations": {}}, True),
        ({"annotations": {"JobID": "42"}}, False),
        ({"node": None, "annotations": {}}, False),  # not bound: no node saw it
        ({"annotations": {}, "deleting": True}, False),
        ({"annotations": {}, "phase": "Failed"}, False),
        ({"annotations": {}, "reason": "ProviderFailed"}, False),
    ],
)
def test_a_pod_whose_submission_may_be_in_flight_is_not_deleted_yet(kwargs, in_flight):
    assert submission_in_flight(pod(**kwargs)) is in_flight
