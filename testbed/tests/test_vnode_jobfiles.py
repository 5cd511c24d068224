"""The job directory and the job scripts, run for real by the local backend (no cluster)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from vnode import jobfiles
from vnode.batch import JobInfo, LocalBackend
from vnode.jobfiles import ProviderError, prepare_mounts, write_job
from vnode.logs_server import read_logs
from vnode.status import JobView, plugin_container_statuses, squeue_exit_code, vk_merge


def make_pod(
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    uid: str = "uid-1",
) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": uid, "annotations": annotations or {}},
        "spec": {"containers": containers, "volumes": volumes or []},
    }


def host_path(name: str, path: Path, kind: str) -> dict[str, Any]:
    return {"name": name, "hostPath": {"path": str(path), "type": kind}}


def test_host_path_directory_must_exist(tmp_path: Path) -> None:
    pod = make_pod(
        [{"name": "main", "volumeMounts": [{"name": "v", "mountPath": "/data"}]}],
        [host_path("v", tmp_path / "missing", "Directory")],
    )
    with pytest.raises(ProviderError, match=r"hostPath directory .*missing does not exist for volume v in pod p"):
        prepare_mounts(pod, pod["spec"]["containers"][0], tmp_path / "job", {})


@pytest.mark.parametrize("kind", ["", "File", "DirectoryOrCreate"])
def test_host_path_types(tmp_path: Path, kind: str) -> None:
    pod = make_pod(
        [{"name": "main", "volumeMounts": [{"name": "v", "mountPath": "/data", "readOnly": True}]}],
        [host_path("v", tmp_path / "made", kind)],
    )
    if kind == "DirectoryOrCreate":
        binds = prepare_mounts(pod, pod["spec"]["containers"][0], tmp_path / "job", {})
        assert binds == [f"{tmp_path / 'made'}:/data:ro"] and (tmp_path / "made").is_dir()
    else:
        with pytest.raises(ProviderError, match=f"unsupported hostPath type {kind} for volume v"):
            prepare_mounts(pod, pod["spec"]["containers"][0], tmp_path / "job", {})


def test_unknown_volume_kind_silently_drops_the_remaining_mounts(tmp_path: Path) -> None:
    mounts = [{"name": "claim", "mountPath": "/claim"}, {"name": "v", "mountPath": "/data"}]
    pod = make_pod(
        [{"name": "main", "volumeMounts": mounts}],
        [
            {"name": "claim", "persistentVolumeClaim": {"claimName": "c"}},
            host_path("v", tmp_path / "missing", "Directory"),
        ],
    )
    assert prepare_mounts(pod, pod["spec"]["containers"][0], tmp_path / "job", {}) == []


def test_config_volumes_are_materialised_under_the_job_dir(tmp_path: Path) -> None:
    job = tmp_path / "job"
    pod = make_pod(
        [
            {
                "name": "main",
                "volumeMounts": [
                    {"name": "cfg", "mountPath": "/etc/app"},
                    {"name": "scratch", "mountPath": "/scratch"},
                ],
            }
        ],
        [{"name": "cfg", "secret": {"secretName": "s", "defaultMode": 0o400}}, {"name": "scratch", "emptyDir": {}}],
    )
    prepare_mounts(pod, pod["spec"]["containers"][0], job, {"cfg": {"token": "t0p", "sub/x": "y"}})
    assert (job / "etc/app/token").read_text() == "t0p"
    assert (job / "etc/app/sub/x").read_text() == "y"
    assert oct((job / "secrets/cfg/token").stat().st_mode & 0o777) == "0o400"  # the volume's defaultMode
    assert (job / "scratch").is_dir()


def run_locally(tmp_path: Path, pod: dict[str, Any], env: dict[str, list[tuple[str, str]]]) -> tuple[Path, JobInfo]:
    script, limit = write_job(tmp_path, pod, env, {})
    backend = LocalBackend()
    job_dir = jobfiles.job_dir(tmp_path, pod)
    job_id = backend.submit(job_dir, script, limit)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = backend.query([job_id])[job_id]
        if info.state not in ("R", "PD"):
            return job_dir, info
        time.sleep(0.05)
    raise AssertionError("local job did not finish")


def test_job_script_runs_containers_in_job_dir_with_clean_env(tmp_path: Path) -> None:
    pod = make_pod(
        [
            {"name": "main", "command": ["/bin/sh", "-c", 'echo "cwd=$PWD secret=$SECRET"; echo x >&2']},
            {"name": "odd", "command": ["printenv", "a.b"]},
            {"name": "side", "command": ["/bin/sh", "-c", 'test -z "$HOSTNAME_FROM_HOST"; exit 4']},
        ],
        annotations={"slurm-job.vk.io/pre-exec": "export HOSTNAME_FROM_HOST=1"},
    )
    job_dir, info = run_locally(tmp_path, pod, {"main": [("SECRET", "it's $not expanded")], "odd": [("a.b", "dots")]})
    out = (job_dir / "run-main.out").read_text()
    assert out.startswith(f"cwd={job_dir} secret=it's $not expanded\nx\n")
    assert (job_dir / "run-odd.out").read_text().startswith("dots\n")  # any env name reaches the command
    assert "real\t" in out  # bash `time` output, as in the plugin's logs
    assert (job_dir / "run-main.status").read_text() == "0\n"
    assert (job_dir / "run-side.status").read_text() == "4\n"  # host env is not passed into the "container"
    assert info == JobInfo("F", str(4 << 8))  # exits with the highest code, reported as squeue would
    assert "End of script, highest exit code 4" in (job_dir / "job.out").read_text()
    assert (
        oct(os.stat(job_dir / "main_envfile.properties").st_mode & 0o777) == "0o644"
    )  # world-readable, as the plugin writes it
    assert "it's" not in (job_dir / "job.sh").read_text()  # values stay in the env file


def test_failed_init_container_stops_the_job(tmp_path: Path) -> None:
    pod = make_pod([{"name": "main", "command": ["echo", "never"]}])
    pod["spec"]["initContainers"] = [{"name": "setup", "command": ["sh", "-c", "exit 2"]}]
    job_dir, info = run_locally(tmp_path, pod, {})
    assert info.state == "F"
    assert (job_dir / "init-setup.status").read_text() == "2\n"
    assert not (job_dir / "run-main.out").exists()


def test_local_time_limit_gives_timeout(tmp_path: Path) -> None:
    pod = make_pod([{"name": "main", "command": ["sleep", "30"]}], annotations={"slurm-job.vk.io/flags": "--time=0:1"})
    _, info = run_locally(tmp_path, pod, {})
    assert info == JobInfo("TO", "15")


def test_local_cancel(tmp_path: Path) -> None:
    pod = make_pod([{"name": "main", "command": ["sleep", "30"]}])
    script, _ = write_job(tmp_path, pod, {}, {})
    backend = LocalBackend()
    job_id = backend.submit(jobfiles.job_dir(tmp_path, pod), script, None)
    backend.cancel(job_id)
    assert backend.query([job_id])[job_id] == JobInfo("CA", "15")


# ---------------------------------------------------------------------- a site job script template


def run_with_template(tmp_path: Path, pod: dict[str, Any], env: dict[str, list[tuple[str, str]]]) -> tuple[Path, Any]:
    script, limit = write_job(tmp_path, pod, env, {}, job_script_template=True)
    backend = LocalBackend()
    job_dir = jobfiles.job_dir(tmp_path, pod)
    job_id = backend.submit(job_dir, script, limit)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = backend.query([job_id])[job_id]
        if info.state not in ("R", "PD"):
            return job_dir, info
        time.sleep(0.05)
    raise AssertionError("local job did not finish")


def test_template_job_does_its_work_without_per_container_files(tmp_path: Path) -> None:
    pod = make_pod([{"name": "main", "command": ["/bin/sh", "-c", 'echo "$GREETING" > done.txt; echo out; exit 3']}])
    job_dir, info = run_with_template(tmp_path, pod, {"main": [("GREETING", "hello")]})
    assert (job_dir / "done.txt").read_text() == "hello\n"  # the command ran, with the pod's env
    assert not (job_dir / "run-main.status").exists() and not (job_dir / "run-main.out").exists()
    assert (job_dir / "run-jobScript.status").read_text() == "3\n"  # the plugin's name for it
    assert "runCtn jobScript " in (job_dir / "job.sh").read_text()
    assert oct((job_dir / "jobScript.sh").stat().st_mode & 0o777) == "0o770"
    assert info == JobInfo("F", "768")  # squeue's raw wait status


def test_template_exit_code_is_squeues_raw_field_read_with_the_plugins_regex(tmp_path: Path) -> None:
    pod = make_pod([{"name": "main", "command": ["/bin/sh", "-c", "echo out; exit 3"]}])
    job_dir, info = run_with_template(tmp_path, pod, {})
    view = JobView(info.state, squeue_exit_code(info.exit_field))
    view.status_files = jobfiles.status_files(job_dir, ["main"])
    remote = plugin_container_statuses(["main"], view)
    assert remote is not None and remote[0]["state"]["terminated"]["exitCode"] == 68  # 768 read as 68
    merged = vk_merge({"phase": "Pending"}, remote)
    assert merged["phase"] == "Failed" and merged["reason"] == "Error: 68"
    logs = read_logs(job_dir, "ns/p", "main", 0, 0)
    assert logs == (job_dir / "job.out").read_bytes() and b"out\n" not in logs  # job.out only


def test_template_success_and_init_containers(tmp_path: Path) -> None:
    pod = make_pod([{"name": "main", "command": ["/bin/sh", "-c", "cat init.txt > main.txt"]}])
    pod["spec"]["initContainers"] = [{"name": "setup", "command": ["/bin/sh", "-c", "echo ready > init.txt"]}]
    job_dir, info = run_with_template(tmp_path, pod, {})
    assert info == JobInfo("CD", "0")
    assert (job_dir / "main.txt").read_text() == "ready\n"
    assert not (job_dir / "init-setup.status").exists()


def test_output_tail_gathers_the_end_of_each_output_file(tmp_path):
    (tmp_path / "err").mkdir()
    (tmp_path / "err" / "mm_mul.err.7.0").write_text("FATAL: " + "x" * 3000 + "the end\n")
    (tmp_path / "run-job.out").write_text("")
    (tmp_path / "job.out").write_text("slurm says hi\n")
    tail = jobfiles.output_tail(tmp_path, limit=20)
    assert tail == "--- job.out\nslurm says hi\n--- err/mm_mul.err.7.0\n" + ("x" * 13 + "the end")
