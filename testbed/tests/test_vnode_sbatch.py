"""Pod -> sbatch translation (limits only, max over containers, the --mem=1 quirk, flags)."""

from __future__ import annotations

from typing import Any

import pytest

from vnode.sbatch import (
    ContainerRun,
    Limits,
    container_argv,
    pod_limits,
    render_job_sh,
    render_job_slurm,
    sbatch_flags,
    time_limit_seconds,
)


def ctn(
    name: str = "main", limits: dict[str, str] | None = None, requests: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if limits is not None:
        resources["limits"] = limits
    if requests is not None:
        resources["requests"] = requests
    return {"name": name, "image": "busybox", "resources": resources, **extra}


def make_pod(
    *containers: dict[str, Any],
    init: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "annotations": annotations or {}},
        "spec": {"containers": list(containers), "initContainers": init or [], **spec},
    }


GI = 1024**3


@pytest.mark.parametrize(
    ("pod", "limits"),
    [
        (make_pod(ctn(limits={"cpu": "2", "memory": "4Gi"})), Limits(2, 4 * GI, True, True)),
        (make_pod(ctn(limits={"cpu": "500m", "memory": "100Mi"})), Limits(1, 100 * 2**20, True, True)),
        (make_pod(ctn(limits={"cpu": "1.2"})), Limits(2, 2**20, True, False)),  # ceil; no memory -> 1 MiB
        (make_pod(ctn()), Limits(1, 2**20, False, False)),
        (make_pod(ctn(requests={"cpu": "4", "memory": "8Gi"})), Limits(1, 2**20, False, False)),  # requests ignored
        (
            make_pod(ctn("a", {"cpu": "1", "memory": "1Gi"}), ctn("b", {"cpu": "3", "memory": "512Mi"})),
            Limits(3, GI, True, True),
        ),  # max over containers
        (
            make_pod(ctn("a", {"cpu": "1"}), init=[ctn("i", {"cpu": "4", "memory": "2Gi"})]),
            Limits(4, 2 * GI, True, True),
        ),  # init containers count too
        (make_pod(ctn("a"), ctn("b", {"memory": "512Ki"})), Limits(1, 2**20, False, True)),  # default beats smaller
        (make_pod(ctn(limits={"memory": "1G"})), Limits(1, 10**9, False, True)),
    ],
    ids=["whole", "milli-cpu", "ceil-no-mem", "nothing", "requests-only", "max", "init", "512Ki", "decimal-G"],
)
def test_pod_limits(pod: dict[str, Any], limits: Limits) -> None:
    assert pod_limits(pod) == limits


@pytest.mark.parametrize(
    ("pod", "flags"),
    [
        (make_pod(ctn(limits={"cpu": "2", "memory": "4Gi"})), ["--cpus-per-task=2", "--mem=4096"]),
        (make_pod(ctn(limits={"cpu": "1", "memory": "1G"})), ["--cpus-per-task=1", "--mem=953"]),
        (make_pod(ctn()), ["--cpus-per-task=1", "--mem=1"]),  # the --mem=1 quirk
        (
            make_pod(ctn(limits={"cpu": "1"}), annotations={"slurm-job.vk.io/flags": "--mem=8G"}),
            ["--mem=8G", "--cpus-per-task=1"],
        ),  # --mem from flags only without a memory limit
        (
            make_pod(
                ctn(limits={"cpu": "2", "memory": "1Gi"}),
                annotations={"slurm-job.vk.io/flags": "-c 8 --mem 64G --cpus-per-task=16 -p gpu"},
            ),
            ["-p gpu", "--cpus-per-task=2", "--mem=1024"],
        ),  # cpu/mem flags dropped when limits exist
        (
            make_pod(ctn(limits={"memory": "1Gi"}), annotations={"slurm-job.vk.io/flags": "-c 4"}),
            ["-c 4", "--mem=1024"],
        ),  # no cpu limit: -c from flags kept, no default added
        (
            make_pod(
                ctn(limits={"cpu": "1", "memory": "1Gi"}),
                annotations={"slurm-job.vk.io/flags": "--partition=cpu -A proj --time=10 -p gpu -t 20"},
            ),
            ["-p gpu", "-A proj", "-t 20", "--cpus-per-task=1", "--mem=1024"],
        ),  # later duplicates win
        (
            make_pod(
                ctn(limits={"cpu": "1", "memory": "1Gi"}),
                annotations={"slurm-job.vk.io/flags": "--comment 'a b' --gres=gpu:1"},
            ),
            ["--comment a b", "--gres=gpu:1", "--cpus-per-task=1", "--mem=1024"],
        ),
        (
            make_pod(ctn(limits={"cpu": "1", "memory": "1Gi"}), securityContext={"runAsUser": 1000}),
            ["--uid=1000", "--cpus-per-task=1", "--mem=1024"],
        ),
    ],
    ids=["limits", "mib-floor", "no-limits", "mem-flag", "dropped", "cpu-flag", "duplicates", "quotes", "uid"],
)
def test_sbatch_flags(pod: dict[str, Any], flags: list[str]) -> None:
    assert sbatch_flags(pod) == flags


def test_job_slurm_has_name_output_flags_then_pre_exec_then_job_sh() -> None:
    pod = make_pod(
        ctn(limits={"cpu": "1", "memory": "1Gi"}),
        annotations={"slurm-job.vk.io/flags": "-p debug", "slurm-job.vk.io/pre-exec": "module load x"},
    )
    text = render_job_slurm(pod, "/jobs/ns-u-1", sbatch_flags(pod))
    assert text.splitlines() == [
        "#!/bin/bash",
        "#SBATCH --job-name=u-1",
        "#SBATCH --output=/jobs/ns-u-1/job.out",
        "#SBATCH -p debug",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --mem=1024",
        "",
        "module load x",
        "/jobs/ns-u-1/job.sh",
    ]


def test_job_sh_quotes_commands_and_orders_init_first() -> None:
    runs = [
        ContainerRun("setup", ["true"], init=True),
        ContainerRun(
            "main",
            ["/bin/sh", "-c", "echo 'it''s' $HOME"],
            env_file="/j/main_envfile.properties",
            binds=("/data:/data",),
        ),
    ]
    text = render_job_sh(make_pod(ctn()), "/j", runs)
    assert "runInit setup runtime - true\n" in text
    assert "# singularity would --bind /data:/data\n" in text
    assert (
        "runCtn main runtime /j/main_envfile.properties /bin/sh -c 'echo '\"'\"'it'\"'\"''\"'\"'s'\"'\"' $HOME'" in text
    )
    assert text.index("runInit setup") < text.index("runCtn main") < text.index("waitCtns\n")


@pytest.mark.parametrize(
    ("container", "argv"),
    [
        ({"command": ["/bin/sh", "-c"], "args": ["echo hi"]}, ["/bin/sh", "-c", "echo hi"]),
        ({"args": ["python", "x.py"]}, ["python", "x.py"]),  # `singularity run` + args: args run as given
        ({}, ["true"]),
    ],
)
def test_container_argv(container: dict[str, Any], argv: list[str]) -> None:
    assert container_argv(container) == argv


@pytest.mark.parametrize(
    ("flags", "seconds"), [(["--time=5"], 300), (["-t 1:00:00"], 3600), (["-p x"], None), (["--time=UNLIMITED"], None)]
)
def test_time_limit(flags: list[str], seconds: int | None) -> None:
    assert time_limit_seconds(flags) == seconds
