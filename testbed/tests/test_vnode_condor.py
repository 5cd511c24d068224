"""Pod -> HTCondor job and job ad -> pod status, as interLink's HTCondor plugin (2025-07)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vnode import condor
from vnode.condor import CondorJob, CondorRun, TranslationError
from vnode.htcondor import write_job
from vnode.jobfiles import ProviderError
from vnode.status import vk_merge


def ctn(name: str = "main", requests: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    resources: dict[str, Any] = {"limits": {"cpu": "64", "memory": "64Gi"}}  # never read
    if requests is not None:
        resources["requests"] = requests
    return {"name": name, "image": "busybox", "resources": resources, **extra}


def make_pod(*containers: dict[str, Any], annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "annotations": annotations or {}},
        "spec": {"containers": list(containers), **spec},
    }


@pytest.mark.parametrize(
    ("pod", "cpus"),
    [
        (make_pod(ctn(requests={"cpu": "2"})), 2),
        (make_pod(ctn("a", {"cpu": "1"}), ctn("b", {"cpu": "3"})), 4),  # summed, not the maximum
        (make_pod(ctn()), 1),  # no request: 1
        (make_pod(ctn(requests={"cpu": "0"})), 1),  # 0 becomes 1
        (make_pod(ctn(requests={"memory": "1Gi"})), 1),
        (make_pod(ctn("a", {"cpu": "2"}), init=None, initContainers=[ctn("i", {"cpu": "8"})]), 2),  # init ignored
    ],
    ids=["whole", "sum", "none", "zero", "memory-only", "init-ignored"],
)
def test_request_cpus_sums_whole_cpu_requests(pod: dict[str, Any], cpus: int) -> None:
    assert condor.request_cpus(pod) == cpus


@pytest.mark.parametrize("value", ["500m", "100m", "1.5", "2000m", "1e3"])
def test_fractional_or_milli_cpu_requests_make_the_plugin_fail(value: str) -> None:
    with pytest.raises(TranslationError, match=rf"invalid literal for int\(\) with base 10: '{value}'.*container main"):
        condor.request_cpus(make_pod(ctn(requests={"cpu": value})))


@pytest.mark.parametrize(
    ("memory", "mb"),
    [
        ("500Mi", 500),
        ("2Gi", 2048),
        ("1G", 1000),
        ("129M", 129),
        ("512Ki", 0),  # int(0.5)
        ("2048Ki", 2),
        ("5000k", 5),
        ("1.5Gi", 1),  # no match: 1 MB
        ("536870912", 1),  # plain bytes: 1 MB
        ("1Ti", 1),  # unknown suffix: 1 MB
        ("1e9", 1),
    ],
)
def test_memory_values_as_the_plugin_parses_them(memory: str, mb: int) -> None:
    assert condor.memory_mb(memory) == mb


@pytest.mark.parametrize(
    ("pod", "mb"),
    [
        (make_pod(ctn(requests={"memory": "300Mi"})), 300),
        (make_pod(ctn("a", {"memory": "1Gi"}), ctn("b", {"memory": "500Mi"})), 1524),  # summed
        (make_pod(ctn()), 1),
        (make_pod(ctn(requests={"memory": "512Ki"})), 1),  # a total of 0 becomes 1
    ],
    ids=["one", "sum", "none", "zero"],
)
def test_request_memory_sums_the_containers(pod: dict[str, Any], mb: int) -> None:
    assert condor.request_memory_mb(pod) == mb


@pytest.mark.parametrize(
    ("image", "annotations", "expected"),
    [
        ("busybox", {}, "docker://busybox"),
        ("/cvmfs/unpacked.cern.ch/img", {}, "/cvmfs/unpacked.cern.ch/img"),
        ("/images/x.sif", {condor.IMAGE_ROOT_ANNOTATION: "/data"}, "/data/images/x.sif"),
        ("/images/x.sif", {}, "/images/x.sif"),
    ],
)
def test_image_root_prefixes_absolute_images(image: str, annotations: dict[str, str], expected: str) -> None:
    pod = make_pod(ctn(image=image), annotations=annotations)
    assert condor.singularity_image(pod, pod["spec"]["containers"][0]) == expected


def test_submit_description_has_the_plugins_lines() -> None:
    pod = make_pod(
        ctn(requests={"cpu": "2", "memory": "300Mi"}),
        annotations={condor.SINGULARITY_OPTIONS_ANNOTATION: "--nv --cleanenv", condor.IMAGE_ROOT_ANNOTATION: "/data"},
    )
    text = condor.render_submit(
        pod, "/jobs/ns-u-1", "/jobs/ns-u-1/p-u-1.sh", ["/jobs/ns-u-1/a", "/jobs/ns-u-1/b"], 2, 300
    )
    lines = text.splitlines()
    assert "# htcondor-job.vk.io/singularity-options: --nv --cleanenv" in lines
    assert "# htcondor-job.knoc.io/image-root: /data" in lines
    for expected in [
        "Executable = /jobs/ns-u-1/p-u-1.sh",
        "InitialDir = /jobs/ns-u-1",
        "Log        = log/mm_mul.$(Cluster).$(Process).log",
        "Output     = out/mm_mul.out.$(Cluster).$(Process)",
        "Error      = err/mm_mul.err.$(Cluster).$(Process)",
        "transfer_input_files = /jobs/ns-u-1/a,/jobs/ns-u-1/b",
        "should_transfer_files = YES",
        "RequestCpus = 2",
        "RequestMemory = 300",
        "when_to_transfer_output = ON_EXIT_OR_EVICT",
        "+MaxWallTimeMins = 60",
    ]:
        assert expected in lines
    assert lines[-1] == "Queue 1"
    assert not any(
        line.startswith("transfer_input_files")
        for line in condor.render_submit(pod, "/j", "/j/x.sh", [], 1, 1).splitlines()
    )


def test_executable_runs_containers_in_order_and_records_the_singularity_line() -> None:
    pod = make_pod(annotations={condor.SINGULARITY_OPTIONS_ANNOTATION: "--nv"})
    runs = [
        CondorRun("first", ["/bin/sh", "-c", "echo 'a b'\necho c"], "docker://busybox", "first_envfile.properties"),
        CondorRun("second", ["true"], "docker://alpine", None, ("./k:/etc/cfg/k",)),
    ]
    text = condor.render_executable(pod, runs, [("/etc/cfg", "k")], "/venv/bin:/usr/bin")
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert '  env PATH=/venv/bin:/usr/bin HOME="$PWD" "${vars[@]}" "$@"' in lines
    assert 'mkdir -p ./etc/cfg && ln -sf "$PWD"/k ./etc/cfg/' in lines
    commands = [line for line in lines if line.startswith("runtime ")]
    assert commands == [
        "runtime ./first_envfile.properties /bin/sh -c 'echo '\"'\"'a b'\"'\"'",  # the quoted script spans lines
        "runtime - true",
    ]
    comments = [line for line in lines if line.startswith("# first: ") or line.startswith("# second: ")]
    assert comments[0].startswith("# first: singularity exec --nv docker://busybox /bin/sh -c")
    assert comments[1] == "# second: singularity exec --nv --bind ./k:/etc/cfg/k docker://alpine true"
    # a multi-line script stays a comment on every line
    assert "# echo c'" in lines


def test_executable_really_runs_sequentially_with_the_env_file(tmp_path: Path) -> None:
    (tmp_path / "a_envfile.properties").write_bytes(b"GREETING=hello world\0EMPTY=\0")
    runs = [
        CondorRun("a", ["/bin/sh", "-c", 'echo "$GREETING|$EMPTY|$HOME" > out-a; exit 3'], "x", "a_envfile.properties"),
        CondorRun("b", ["/bin/sh", "-c", "test -e out-a && echo b-after-a > out-b"], "x"),
    ]
    script = tmp_path / "job.sh"
    script.write_text(condor.render_executable(make_pod(), runs, [], "/usr/bin:/bin"))
    script.chmod(0o755)
    done = subprocess.run([str(script)], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0  # the last container's code, not the highest
    assert (tmp_path / "out-a").read_text() == f"hello world||{tmp_path}\n"
    assert (tmp_path / "out-b").read_text() == "b-after-a\n"


NOW = "2026-01-01T00:00:00Z"


def terminated(code: int, reason: str) -> dict[str, Any]:
    return {
        "terminated": {
            "startedAt": "2026-01-01T00:00:10Z",
            "finishedAt": "2026-01-01T00:00:20Z",
            "exitCode": code,
            "reason": reason,
        }
    }


@pytest.mark.parametrize(
    ("job", "state", "ready"),
    [
        (CondorJob("7", condor.IDLE), {"waiting": {"reason": "ContainerCreating"}}, False),
        (
            CondorJob("7", condor.RUNNING, start_date=1767225610),
            {"running": {"startedAt": "2026-01-01T00:00:10Z"}},
            True,
        ),
        (CondorJob("7", condor.RUNNING), {"running": {"startedAt": NOW}}, True),  # no JobStartDate: now
        (CondorJob("7", condor.COMPLETED, 0, "", 1767225610, 1767225620), terminated(0, "Completed"), False),
        (CondorJob("7", condor.COMPLETED, 3, "", 1767225610, 1767225620), terminated(3, "Completed"), False),
        (
            CondorJob("7", condor.COMPLETED, None, "", 1767225610, 1767225620),
            terminated(0, "Completed"),
            False,
        ),  # killed by a signal: no ExitCode, read as 0
        (CondorJob("7", condor.REMOVED, None, "", 1767225610, 1767225620), terminated(0, "Cancelled"), False),
        (
            CondorJob("7", condor.HELD, hold_reason="via condor_hold (by user root)"),
            {"waiting": {"reason": "JobHeld", "message": "via condor_hold (by user root)"}},
            False,
        ),
        (CondorJob("7", condor.HELD), {"waiting": {"reason": "JobHeld", "message": "Job held by HTCondor"}}, False),
        (CondorJob("7", 6), {"waiting": {"reason": "Unknown"}}, False),  # transferring output
    ],
    ids=["idle", "running", "running-no-date", "ok", "exit-3", "signal", "removed", "held", "held-no-reason", "other"],
)
def test_container_statuses_from_the_job_ad(job: CondorJob, state: dict[str, Any], ready: bool) -> None:
    (status,) = condor.container_statuses(["main"], job, NOW) or []
    assert status["state"] == state
    assert status["ready"] is ready


def test_every_container_gets_the_jobs_state_and_unknown_jobs_keep_the_status() -> None:
    statuses = condor.container_statuses(["a", "b"], CondorJob("7", condor.RUNNING), NOW) or []
    assert [s["name"] for s in statuses] == ["a", "b"]
    assert statuses[0]["state"] == statuses[1]["state"]
    assert condor.container_statuses(["a"], None, NOW) is None


PENDING = {"phase": "Pending", "conditions": [], "containerStatuses": []}


@pytest.mark.parametrize(
    ("job", "phase", "reason"),
    [
        (CondorJob("7", condor.IDLE), "Pending", None),
        (CondorJob("7", condor.HELD, hold_reason="x"), "Pending", None),  # held: stays Pending
        (CondorJob("7", condor.RUNNING), "Running", "Running"),
        (CondorJob("7", condor.COMPLETED, 0), "Succeeded", "Completed"),
        (CondorJob("7", condor.COMPLETED, 2), "Failed", "Error: 2"),
        (CondorJob("7", condor.REMOVED), "Succeeded", "Completed"),  # condor_rm'd: Succeeded
    ],
    ids=["idle", "held", "running", "ok", "exit-2", "removed"],
)
def test_pod_phase_after_the_vk_folds_the_answer_in(job: CondorJob, phase: str, reason: str | None) -> None:
    status = vk_merge(PENDING, condor.container_statuses(["main"], job, NOW) or [])
    assert status["phase"] == phase
    assert status.get("reason") == reason


def test_job_ad_parsing() -> None:
    ad = {"ClusterId": 12, "JobStatus": 4, "ExitCode": 3, "JobStartDate": 10, "CompletionDate": 20, "HoldReason": None}
    assert CondorJob.from_ad(ad) == CondorJob("12", 4, 3, "", 10, 20)
    assert CondorJob.from_ad({"ClusterId": 5, "JobStatus": 5, "HoldReason": "why"}) == CondorJob("5", 5, None, "why")


@pytest.mark.parametrize(
    ("stdout", "cluster"),
    [("Submitting job(s).\n1 job(s) submitted to cluster 42.\n", "42"), ("ERROR: no such file\n", None)],
)
def test_submitted_cluster(stdout: str, cluster: str | None) -> None:
    assert condor.submitted_cluster(stdout) == cluster


@pytest.mark.parametrize(
    ("parts", "body"),
    [
        ((b"out\n", b"", None), b"=== STDOUT ===\nout\n"),
        (
            (b"out\n", b"err\n", b"log\n"),
            b"=== STDOUT ===\nout\n\n\n=== STDERR ===\nerr\n\n\n=== HTCONDOR LOG ===\nlog\n",
        ),
        ((None, None, None), b"No logs available yet\n"),
    ],
)
def test_logs_as_the_plugin_returns_them(parts: tuple[bytes | None, ...], body: bytes) -> None:
    assert condor.render_logs(*parts) == body


def test_write_job_ships_env_and_config_files_and_refuses_fractional_cpus(tmp_path: Path) -> None:
    pod = make_pod(
        ctn(
            requests={"cpu": "1", "memory": "100Mi"},
            command=["/bin/sh", "-c", "cat /etc/cfg/key"],
            volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}],
        ),
        volumes=[{"name": "cfg", "configMap": {"name": "cm"}}],
    )
    submit = write_job(tmp_path, pod, {"main": [("A", "1")]}, {"cfg": {"key": "value"}}, "/usr/bin:/bin")
    directory = submit.parent
    assert submit.name == "p-u-1.jdl" and (directory / "p-u-1.sh").exists()
    assert oct(directory.stat().st_mode & 0o7777) == "0o1777"
    text = submit.read_text()
    assert f"transfer_input_files = {directory}/configMaps/cfg/key,{directory}/main_envfile.properties" in text
    assert (directory / "configMaps/cfg/key").read_text() == "value"
    assert (
        oct(os.stat(directory / "main_envfile.properties").st_mode & 0o777) == "0o644"
    )  # world-readable, as the plugin writes it
    assert all((directory / sub).is_dir() for sub in ("log", "out", "err"))

    bad = make_pod(ctn(requests={"cpu": "500m"}))
    bad["metadata"]["uid"] = "u-2"
    with pytest.raises(ProviderError, match=r"Internal Server Error: ValueError: invalid literal for int\(\)"):
        write_job(tmp_path, bad, {}, {}, "/usr/bin")
