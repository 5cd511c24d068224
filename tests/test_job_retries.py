"""A rule's `retries:` must give each attempt a pod of its own: the job's Snakemake,
started the way a pod starts it, must not retry the rule itself."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from snakemake_executor_plugin_interlink.executor import Executor
from snakemake_executor_plugin_interlink.pod import NO_RETRIES_IN_JOB

ALWAYS_FAILS = """
rule flaky:
    output: "done.txt"
    retries: 2
    resources: mem_mb=lambda wc, attempt: 400 * attempt
    shell: "echo {resources.mem_mb} >> attempts.txt; exit 1"
"""


def run_as_in_a_pod(workdir: Path, attempt: int) -> subprocess.CompletedProcess:
    """The job command of format_job_exec, reduced to what decides retries: the main
    process's `--attempt` and `--retries 0`, our arguments, then `--mode remote`."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            "Snakefile",
            "--target-jobs",
            "flaky:",
            "--allowed-rules",
            "flaky",
            "--cores",
            "1",
            "--attempt",
            str(attempt),
            "--force-use-threads",
            "--force",
            "--retries",
            "0",
            "--nolock",
            "--ignore-incomplete",
            *shlex.split(NO_RETRIES_IN_JOB),
            "--mode",
            "remote",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("attempt", "mem_mb"), [(1, "400"), (2, "800")])
def test_the_jobs_snakemake_runs_its_attempt_once(
    tmp_path: Path, attempt: int, mem_mb: str
):
    (tmp_path / "Snakefile").write_text(ALWAYS_FAILS)
    done = run_as_in_a_pod(tmp_path, attempt)
    assert done.returncode != 0, done.stderr
    assert "Trying to restart" not in done.stderr
    # one run, with the resources of the attempt the main process asked for
    assert (tmp_path / "attempts.txt").read_text().split() == [mem_mb]


def test_every_job_command_carries_the_arguments():
    executor = object.__new__(Executor)  # the method needs no state
    assert executor.additional_general_args() == NO_RETRIES_IN_JOB
