"""Asynchronous creation, as interLink does it: CreatePod returns before the plugin's
/create has run sbatch; a pod deleted meanwhile still gets its job (orphaned); after a
restart only pods with a JobID annotation are re-adopted. Driven with a fake clock."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from agentfakes import agent_with_pods, drive, make_agent, make_pod, statuses_of

from vnode import jobfiles
from vnode.agent import _Workers
from vnode.batch import JobInfo

DELETING = {"deletionTimestamp": "2026-01-01T00:00:00Z", "deletionGracePeriodSeconds": 0}


def deleting(pod: dict[str, Any]) -> dict[str, Any]:
    return {**pod, "metadata": {**pod["metadata"], **DELETING}}


def annotations_written(kube: Any, name: str) -> list[dict[str, str]]:
    return [body["metadata"]["annotations"] for _, pod, body in kube.patches if pod == name and "metadata" in body]


def test_create_returns_before_sbatch(tmp_path: Path) -> None:
    agent, kube, backend, clock = agent_with_pods(tmp_path, 1, create_delay=2.0)
    assert not backend.jobs  # CreatePod returned: initial status written, no job yet
    ((_, _, initial),) = kube.patches
    assert initial["status"]["startTime"] and "metadata" not in initial
    drive(agent, clock, 1.9)
    assert not backend.jobs
    drive(agent, clock, 2.2)
    assert list(backend.jobs) == ["100"]
    assert annotations_written(kube, "pod-0") == [{"JobID": "100"}]


def test_status_pass_during_creation_gets_the_plugins_empty_container_states(tmp_path: Path) -> None:
    # the VK's statusLoop asks about every pod in its map; the plugin has no JobID for this
    # one yet and answers its containers with an empty state, which the VK writes
    agent, kube, backend, clock = agent_with_pods(tmp_path, 1, create_delay=8.0)
    drive(agent, clock, 5.5)
    assert backend.queries == [[]]  # squeue --me only: no job to ask about
    last = statuses_of(kube, "pod-0")[-1]
    assert last["phase"] == "Pending"
    assert [c["state"] for c in last["containerStatuses"]] == [{}]  # neither waiting, running nor terminated
    assert not annotations_written(kube, "pod-0")
    drive(agent, clock, 8.5)
    assert annotations_written(kube, "pod-0") == [{"JobID": "100"}]
    assert statuses_of(kube, "pod-0")[-1]["containerStatuses"][0]["state"] == {}  # until a fresh answer


def test_pod_deleted_while_its_creation_runs_gets_an_orphaned_job(tmp_path: Path) -> None:
    agent, kube, backend, clock = agent_with_pods(tmp_path, 1, create_delay=2.0)
    clock.now = 1.0
    agent._handle("MODIFIED", deleting(make_pod(0)))
    assert kube.deleted == ["pod-0"]  # force-deleted at once: no container runs
    writes = len(kube.patches)
    drive(agent, clock, 3.0)
    assert list(backend.jobs) == ["100"]  # sbatch ran anyway
    assert backend.cancelled == []  # the plugin's delete found no JobID: nothing cancelled
    assert (backend.dirs["100"]).is_dir()  # its directory stays: the job runs orphaned
    assert len(kube.patches) == writes  # the VK's JobID update reaches no pod
    drive(agent, clock, 20.0)
    assert backend.queries == []  # nobody asks about it again


def test_pod_deleted_after_the_plugin_has_its_job_id_is_cancelled(tmp_path: Path) -> None:
    agent, _kube, backend, clock = agent_with_pods(tmp_path, 1, create_delay=2.0)
    drive(agent, clock, 3.0)
    job_dir = backend.dirs["100"]
    agent._handle("MODIFIED", deleting(make_pod(0)))
    assert backend.cancelled == ["100"]
    assert not job_dir.exists()


def test_plugin_knows_the_job_before_the_vk_does(tmp_path: Path) -> None:
    # sbatch returned and the plugin stored the JobID, but the VK has not handled the answer
    # yet: a delete now cancels the job
    agent, _, backend, _clock = make_agent(tmp_path)
    queued: list[Any] = []
    agent._spawn = queued.append
    agent._handle("ADDED", make_pod(0))
    agent.pump()
    queued.pop()()  # the plugin's /create: sbatch and its JobID; the answer waits in the queue
    agent._handle("MODIFIED", deleting(make_pod(0)))
    assert backend.cancelled == ["100"]
    agent.pump()  # the create's answer arrives for a pod the VK forgot
    assert backend.cancelled == ["100"]


def test_failed_cancel_keeps_the_job_and_its_directory(tmp_path: Path) -> None:
    agent, _, backend, _clock = agent_with_pods(tmp_path, 1)
    backend.down = True
    agent._handle("MODIFIED", deleting(make_pod(0)))
    assert backend.dirs["100"].is_dir()  # deleteContainer returns before removing anything


SECRET_VOLUME = {"volumes": [{"name": "cfg", "secret": {"secretName": "late"}}]}


def test_initializing_lasts_until_the_next_status_pass(tmp_path: Path) -> None:
    # "Initializing" is RemoteExecution's own copy of the pod; the VK's copy stays Pending,
    # and the statusLoop writes it back at its next pass
    agent, kube, backend, clock = make_agent(tmp_path)
    agent._handle("ADDED", make_pod(0, **SECRET_VOLUME))
    agent.pump()
    phases = [s["phase"] for s in statuses_of(kube, "pod-0")]
    assert phases == ["Pending", "Initializing"]
    drive(agent, clock, 5.5)
    assert statuses_of(kube, "pod-0")[-1]["phase"] == "Pending"
    assert not backend.jobs


def test_pod_deleted_while_waiting_for_a_volume_is_submitted_when_it_appears(tmp_path: Path) -> None:
    agent, kube, backend, clock = make_agent(tmp_path)
    agent._handle("ADDED", make_pod(0, **SECRET_VOLUME))
    agent.pump()
    clock.now = 1.0
    agent._handle("MODIFIED", deleting(make_pod(0, **SECRET_VOLUME)))
    assert kube.deleted == ["pod-0"]
    drive(agent, clock, 10.0)
    assert not backend.jobs
    kube.objects["/api/v1/namespaces/ns/secrets/late"] = {"data": {}}
    drive(agent, clock, 13.0)
    assert list(backend.jobs) == ["100"] and backend.cancelled == []  # RemoteExecution went on


def test_volume_pods_show_their_containers_before_the_job_id(tmp_path: Path) -> None:
    # remoteExecutionHandleVolumes writes its copy (containers waiting) after each volume
    agent, kube, _, _clock = make_agent(tmp_path, create_delay=2.0)
    volume = {"volumes": [{"name": "scratch", "emptyDir": {}}]}
    agent._handle("ADDED", make_pod(0, **volume))
    agent.pump()
    waiting = statuses_of(kube, "pod-0")[-1]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "Remote pod submitted"
    assert not annotations_written(kube, "pod-0")


def test_create_error_is_provider_failed_when_the_create_returns(tmp_path: Path) -> None:
    agent, kube, backend, clock = make_agent(tmp_path, create_delay=1.0)
    backend.submit_error = "sbatch: error: invalid partition specified: nope\n"
    agent._handle("ADDED", make_pod(0))
    agent.pump()
    assert statuses_of(kube, "pod-0")[-1]["phase"] == "Pending"
    drive(agent, clock, 1.5)
    last = statuses_of(kube, "pod-0")[-1]
    assert last["phase"] == "Failed" and last["reason"] == "ProviderFailed"
    assert "invalid partition specified: nope" in last["message"]


def test_restart_readopts_only_pods_with_a_job_id(tmp_path: Path) -> None:
    _agent, _kube, backend, _clock = agent_with_pods(tmp_path, 2)
    assert sorted(backend.jobs) == ["100", "101"]
    # the VK stopped after both sbatch but before it wrote pod-1's JobID
    adopted = make_pod(0, annotations={"JobID": "100"})
    unannotated = make_pod(1)
    backend.jobs["101"] = JobInfo("R", "0")
    restarted, kube2, _, _clock2 = make_agent(tmp_path, backend=backend)
    restarted._handle("SYNC", [adopted, unannotated])
    restarted.pump()
    assert sorted(backend.jobs) == ["100", "101", "102"]  # pod-1 was created again: a second job
    assert backend.dirs["102"] == backend.dirs["101"]  # in the same job directory
    assert annotations_written(kube2, "pod-1") == [{"JobID": "102"}]
    assert not annotations_written(kube2, "pod-0")


def test_restarted_plugin_answers_from_the_job_of_its_job_directory(tmp_path: Path) -> None:
    # while pod-1's second create is in flight, the plugin (LoadJIDs) still has the first job
    _agent, _, backend, _ = agent_with_pods(tmp_path, 2)
    backend.jobs["101"] = JobInfo("R", "0")
    restarted, kube2, _, clock = make_agent(tmp_path, backend=backend, create_delay=30.0)
    restarted._handle("SYNC", [make_pod(0, annotations={"JobID": "100"}), make_pod(1)])
    drive(restarted, clock, 11.0)
    assert "101" in [job for query in backend.queries for job in query]
    assert statuses_of(kube2, "pod-1")[-1]["phase"] == "Running"  # the old job's state, no JobID yet


def test_job_ids_the_plugin_loads_at_start(tmp_path: Path) -> None:
    _agent, _, _backend, _ = agent_with_pods(tmp_path, 1)
    (tmp_path / "jobs" / "half-written").mkdir()
    (tmp_path / "jobs" / "half-written" / "JobID.jid").write_text("7")
    assert {uid: job for uid, (job, _) in jobfiles.load_jids(tmp_path / "jobs").items()} == {"uid-0": "100"}


def test_default_creation_runs_in_a_worker_thread(tmp_path: Path) -> None:
    done = threading.Event()
    names: list[str] = []
    workers = _Workers(2)
    workers.submit(lambda: (names.append(threading.current_thread().name), done.set()))
    assert done.wait(5)
    assert names[0].startswith("create-")


def test_htcondor_plugin_errors_for_a_pod_without_jid_file(tmp_path: Path) -> None:
    agent, kube, backend, clock = agent_with_pods(tmp_path, 1, flavour="htcondor", create_delay=8.0)
    drive(agent, clock, 5.5)
    assert backend.queries == []  # its StatusHandler fails before condor_q
    waiting = statuses_of(kube, "pod-0")[-1]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "Remote pod submitted"  # the VK's own copy, written by the statusLoop


def test_htcondor_head_build_fails_every_pod_while_its_job_runs(tmp_path: Path) -> None:
    # interlink-htcondor-plugin 6f5ee3e answers /create with 201; interLink's VK refuses
    # anything but 200 (execute.go createRequest) and fails the pod (handleRemoteExecutionFailure)
    agent, kube, backend, clock = make_agent(tmp_path, flavour="htcondor")
    backend.refusal = "error doing createRequest() ... (HTTP 201) ..."
    agent._handle("ADDED", make_pod(0))
    agent.pump()
    assert list(backend.jobs) == ["100"]  # the job was submitted
    failed = statuses_of(kube, "pod-0")[-1]
    assert failed["phase"] == "Failed" and failed["reason"] == "ProviderFailed"
    assert failed["message"] == backend.refusal
    assert annotations_written(kube, "pod-0") == []  # no JobID annotation
    backend.finish("100")
    drive(agent, clock, 30)
    assert backend.queries == []  # a terminal pod is never asked about again
    agent._handle("MODIFIED", deleting(make_pod(0)))
    agent.pump()
    assert backend.cancelled == ["100"]  # the VK's /delete reaches the plugin, which condor_rm's the job
