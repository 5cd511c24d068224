"""The whole executor in-process, with real Snakemake, against an in-memory API
(tests/fake_cluster.py): the faults here are those the testbed cannot produce on demand.
Each test failed on the executor as it was before its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from snakemake import api
from snakemake.settings import types as sm

from snakemake_executor_plugin_interlink import executor as executor_module
from snakemake_executor_plugin_interlink.pod import RUN_LABEL
from snakemake_executor_plugin_interlink.runs import MARKERS, RunMarker
from snakemake_executor_plugin_interlink.settings import ExecutorSettings

from .fake_cluster import Call, FakeCluster

SNAKEFILE = """
rule all:
    input: expand("out/{i}.txt", i=range(N))
rule work:
    output: "out/{i}.txt"
    shell: "touch {output}"
"""


def outputs(rule: str, wildcards: dict[str, str]) -> list[str]:
    return [f"out/{wildcards['i']}.txt"] if rule == "work" else []


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    workdir = tmp_path / "wd"
    workdir.mkdir()
    fake = FakeCluster(workdir, outputs)
    fake.install(monkeypatch)
    monkeypatch.chdir(tmp_path)
    yield fake
    fake.close()


def run(
    cluster: FakeCluster,
    jobs: int,
    retries: int = 0,
    envvars: list[str] | None = None,
    groups: sm.GroupSettings | None = None,
    **settings: Any,
) -> Exception | None:
    """Run the workflow; the exception Snakemake ended with, or None."""
    workdir = cluster.workdir
    (workdir / "Snakefile").write_text(SNAKEFILE.replace("N", str(jobs)))
    with api.SnakemakeApi(sm.OutputSettings(show_failed_logs=True)) as snakemake_api:
        workflow = snakemake_api.workflow(
            resource_settings=sm.ResourceSettings(cores=1, nodes=4),
            storage_settings=sm.StorageSettings(shared_fs_usage=sm.SharedFSUsage.all()),
            workdir=workdir,
            snakefile=workdir / "Snakefile",
        )
        try:
            workflow.dag().execute_workflow(
                executor="interlink",
                executor_settings=ExecutorSettings(
                    namespace="ns", status_interval=0.1, **settings
                ),
                execution_settings=sm.ExecutionSettings(
                    latency_wait=1, retries=retries
                ),
                remote_execution_settings=sm.RemoteExecutionSettings(
                    container_image="image:1", envvars=envvars or []
                ),
                group_settings=groups,
            )
        except Exception as e:
            return e
    return None


def test_a_run_creates_collects_and_deletes_each_pod(cluster: FakeCluster):
    assert run(cluster, 3) is None
    verbs = cluster.verbs()
    assert verbs.count("create") == 3
    assert verbs.count("log") == 3
    assert verbs.count("delete") == 3
    assert "deletecollection" not in verbs  # nothing was left for the end
    assert not cluster.pods


def test_a_log_that_cannot_be_written_is_not_the_end_of_the_run(
    cluster: FakeCluster, tmp_path: Path
):
    """Every log write fails (the log directory's parent is a file): each job's
    outcome stands and the run finishes. (A log write error ended the status loop,
    and with it the workflow.)"""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    assert run(cluster, 2, log_dir=blocker / "logs") is None
    assert cluster.verbs().count("delete") == 2


def test_a_create_that_gave_up_is_deleted_before_the_retry_runs(cluster: FakeCluster):
    """The server creates the first attempt's pod, and every answer to its create is
    lost until the client gives up: the pod must be gone before the job's second
    attempt is created, or both would run."""
    first_attempt_left: list[bool] = []

    def lose_answers(call: Call) -> httpx.Response | None:
        if call.verb != "create":
            return None
        if call.name.endswith("-1"):
            if call.name not in cluster.pods and not any(
                c.verb == "delete" and c.name == call.name for c in cluster.calls
            ):
                cluster.create(call.body)
            return httpx.Response(503, json={"kind": "Status", "code": 503})
        first_attempt_left.append(call.name[:-1] + "1" in cluster.pods)
        return None

    cluster.faults.append(lose_answers)
    assert run(cluster, 1, retries=1) is None
    assert first_attempt_left == [False]


def test_what_collection_could_not_delete_goes_in_one_request_at_the_end(
    cluster: FakeCluster,
):
    def refuse_deletes(call: Call) -> httpx.Response | None:
        if call.verb == "delete":
            return httpx.Response(403, json={"kind": "Status", "code": 403})
        return None

    cluster.faults.append(refuse_deletes)
    assert run(cluster, 3) is None
    verbs = cluster.verbs()
    assert verbs.count("delete") == 3  # one per job, none again at the end
    assert verbs.count("deletecollection") == 1
    assert not cluster.pods


def test_a_secret_name_already_taken_stops_the_run_before_any_pod(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAKE_TOKEN", "value")

    def taken(call: Call) -> httpx.Response | None:
        if call.verb == "create-secret":
            return httpx.Response(409, json={"kind": "Status", "code": 409})
        return None

    cluster.faults.append(taken)
    error = run(cluster, 1, envvars=["FAKE_TOKEN"])
    assert error is not None and "not this run's" in str(error)
    assert "create" not in cluster.verbs()


def test_an_environment_htcondor_would_change_stops_the_run_before_any_pod(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAKE_TOKEN", "pa$$word; with spaces")
    error = run(cluster, 1, envvars=["FAKE_TOKEN"], flavour="htcondor")
    assert error is not None
    assert "--interlink-flavour htcondor" in str(error) and "FAKE_TOKEN" in str(error)
    assert "pa$$word" not in str(error)  # a value may be a secret
    assert "create" not in cluster.verbs()


def test_a_run_refuses_to_start_when_earlier_runs_cannot_be_listed(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
):
    """This directory recorded a killed run, and its pods cannot be listed: re-attach
    cannot decide, so the run stops before creating anything. (It used to wait 60 s,
    then go on with re-attach silently off: a killed run's pods and the new ones then
    wrote the same outputs.)"""
    earlier = "11111111-1111-4111-8111-111111111111"
    records = cluster.workdir / MARKERS
    records.mkdir(parents=True)
    marker = RunMarker(run_id=earlier, host="h", user="u", pid=1, started=0.0)
    (records / earlier).write_text(marker.text())
    monkeypatch.setattr(executor_module, "EARLIER_RUNS_LIST_SECONDS", 0.5)

    def refuse_lists(call: Call) -> httpx.Response | None:
        if call.verb in ("list", "watch"):
            return httpx.Response(
                403, json={"kind": "Status", "code": 403, "message": "no list for you"}
            )
        return None

    cluster.faults.append(refuse_lists)
    error = run(cluster, 1)
    assert error is not None
    message = str(error)
    assert "no list for you" in message and "would run them twice" in message
    assert f"delete pods,secrets -l '{RUN_LABEL} in ({earlier})'" in message
    assert str(records) in message
    assert "create" not in cluster.verbs()


def test_a_create_that_gave_up_and_cannot_be_undone_is_tracked_until_known(
    cluster: FakeCluster,
):
    """Every answer to the create is lost although the server created the pod, and
    the delete that would undo it fails too: the job is tracked as if created, and
    the pod's status decides (it used to end the run with a TypeError)."""

    def lose_answers(call: Call) -> httpx.Response | None:
        if call.verb == "create":
            if call.name not in cluster.pods:
                cluster.create(call.body)
            return httpx.Response(503, json={"kind": "Status", "code": 503})
        if call.verb == "delete" and not any(c.verb == "log" for c in cluster.calls):
            return httpx.Response(503, json={"kind": "Status", "code": 503})
        return None

    cluster.faults.append(lose_answers)
    assert run(cluster, 1) is None
    assert cluster.verbs().count("log") == 1
    assert not cluster.pods


def test_a_group_job_is_one_pod_one_log_and_a_report_row_per_job(
    cluster: FakeCluster,
):
    """Groups from settings only (as --groups / --group-components give them): five
    jobs in groups of two make three pods named after the group, each with one log,
    and the report has a row per job."""
    groups = sm.GroupSettings(
        overwrite_groups={"work": "batch"}, group_components={"batch": 2}
    )
    assert run(cluster, 5, groups=groups) is None
    created = [c.body for c in cluster.calls if c.verb == "create" and c.body]
    names = [pod["metadata"]["name"] for pod in created]
    assert len(names) == 3 and all("-batch-" in name for name in names), names
    for pod in created:
        labels = pod["metadata"]["labels"]
        assert labels["interlink.snakemake.io/group"] == "batch"
        assert "interlink.snakemake.io/rule" not in labels
        (container,) = pod["spec"]["containers"]
        assert container["resources"]["limits"]["cpu"] == "1"  # --cores 1: one wide
    workdir = cluster.workdir
    logs = sorted((workdir / ".snakemake" / "interlink_logs").rglob("*.log"))
    assert [p.parent.name for p in logs] == ["group_batch"] * 3
    (report,) = (workdir / ".snakemake" / "interlink_reports").glob("*/jobs.tsv")
    rows = [line.split("\t") for line in report.read_text().splitlines()[1:]]
    assert sorted((r[0], r[1]) for r in rows) == [("work", f"i={i}") for i in range(5)]
    assert {r[2] for r in rows} == set(names)


def test_orphans_are_removed_with_one_request_and_other_runs_pods_stay(
    cluster: FakeCluster,
):
    """--interlink-remove-orphans: a killed run's pods go in one deletecollection
    chosen by run (it sent a DELETE per pod); a pod of a run this directory never
    recorded (another user's /home/jovyan) is not touched."""
    earlier, stranger = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
    )
    records = cluster.workdir / MARKERS
    records.mkdir(parents=True)
    marker = RunMarker(run_id=earlier, host="h", user="u", pid=1, started=0.0)
    (records / earlier).write_text(marker.text())
    with cluster.changed:
        for i, run_id in enumerate([earlier] * 3 + [stranger]):
            pod = {
                "metadata": {
                    "name": f"snakejob-old-{i}",
                    "uid": f"uid-old-{i}",
                    "labels": {RUN_LABEL: run_id},
                    "creationTimestamp": "2026-12-01T00:00:00Z",
                },
                "spec": {"nodeName": "vk", "containers": [{"name": "snakemake"}]},
                "status": {"phase": "Running"},
            }
            cluster.pods[pod["metadata"]["name"]] = pod
            cluster._emit("ADDED", pod)
    assert run(cluster, 2, remove_orphans=True) is None
    assert sorted(cluster.pods) == ["snakejob-old-3"]
    removals = [c for c in cluster.calls if c.verb == "deletecollection"]
    chosen = [c.params["labelSelector"] for c in removals if earlier in str(c.params)]
    assert chosen == [f"{RUN_LABEL} in ({earlier})"]
    assert not [c for c in cluster.calls if c.verb == "delete" and "old" in c.name]


def test_what_a_killed_runs_jobs_left_goes_once_it_has_no_pod(cluster: FakeCluster):
    """A run stopped by Ctrl-C deletes its pods; its killed jobs' partial copies and
    the ends nobody collected stayed in the working directory for good. The next run
    here finds the run's record with no pod left and removes them with it."""
    earlier = "11111111-1111-4111-8111-111111111111"
    records = cluster.workdir / MARKERS
    records.mkdir(parents=True)
    marker = RunMarker(run_id=earlier, host="h", user="u", pid=1, started=0.0)
    (records / earlier).write_text(marker.text())
    left = [
        cluster.workdir / ".snakemake/interlink_output/snakejob-11111111-3-1.part",
        cluster.workdir / ".snakemake/interlink_exit/snakejob-11111111-4-1",
    ]
    other = cluster.workdir / ".snakemake/interlink_output/snakejob-33333333-3-1.part"
    for path in [*left, other]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    assert run(cluster, 1) is None
    assert not any(path.exists() for path in left)
    assert other.exists()  # another run's, which may still have pods
    assert not (records / earlier).exists()


def test_a_failed_groups_log_is_parsed_once(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
):
    """The report's member rows and the failure message share one parse of the log
    (which may be megabytes): it was parsed once for each."""
    from snakemake_executor_plugin_interlink import grouplog

    parses = []

    def counted(text: str) -> dict[int, grouplog.LoggedJob]:
        parses.append(len(text))
        return grouplog.logged_jobs(text)

    monkeypatch.setattr(executor_module, "logged_jobs", counted)
    cluster.exit_codes["work"] = 3
    groups = sm.GroupSettings(
        overwrite_groups={"work": "batch"}, group_components={"batch": 2}
    )
    assert run(cluster, 2, groups=groups) is not None
    assert len(parses) == 1
