"""Load: thousands of jobs through the testbed with the virtual node in its fast local mode (the
pods' commands run as processes instead of Slurm jobs). Every job accounted for, bounded
memory, nothing left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, Testbed

# every job runs its own Snakemake process (about 1 CPU-second): 2000 jobs take about
# 20 minutes on 2 cores; INTERLINK_LOAD_JOBS=N runs another size
N = int(os.environ.get("INTERLINK_LOAD_JOBS", "2000"))

# Runs a command and reports the peak RSS (KiB) and CPU seconds of that command alone:
# the test process's own RUSAGE_CHILDREN would include every earlier test's children.
OWN_RUSAGE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(f'RUSAGE {u.ru_maxrss} {u.ru_utime + u.ru_stime:.1f}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.fixture
def local_mode_node():
    up = str(REPO / "testbed" / "up.sh")
    subprocess.run(
        [up],
        check=True,
        env={
            **os.environ,
            "TESTBED_VNODE_MODE": "local",
            "TESTBED_VNODE_ARGS": "--pods 500",
            "TESTBED_VNODE_STATUS": "fast",  # the executor alone, not interLink's status delays
        },
    )
    yield
    subprocess.run([up], check=True, env={**os.environ, "TESTBED_VNODE_MODE": "slurm"})


def test_two_thousand_jobs(testbed: Testbed, workdir: Path, local_mode_node, figures):
    (workdir / "Snakefile").write_text(f"""
rule all:
    input: "summary.txt"
rule work:
    output: "out/{{i}}.txt"
    resources: mem_mb=10
    shell: "echo {{wildcards.i}} > {{output}}"
rule summary:
    input: expand("out/{{i}}.txt", i=range({N}))
    output: "summary.txt"
    resources: mem_mb=10
    shell: "cat {{input}} | wc -l > {{output}}"
""")
    done = testbed.snakemake(
        workdir,
        "--jobs",
        "500",
        "--interlink-requests",
        "cpu=1m,memory=1Mi",
        "--interlink-max-concurrent-submissions",
        "4",
        # the stand-in virtual node, on the same 2 cores as 500 running job processes,
        # can fall minutes behind its watch before it submits a pod: what is measured
        # here is the executor's accounting, not the stand-in's speed
        "--interlink-unschedulable-timeout",
        "0",
        timeout=3000,
        under=(sys.executable, "-c", OWN_RUSAGE),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (workdir / "summary.txt").read_text().strip() == str(N)
    assert f"0 pending, 0 running, {N + 1} done, 0 failed" in done.stderr
    max_rss_kb, cpu = re.search(r"RUSAGE (\d+) ([\d.]+)", done.stderr).groups()
    rss_mb, cpu = int(max_rss_kb) / 1024, float(cpu)
    requests = int(re.search(r"interlink: (\d+) API requests", done.stderr).group(1))
    figures(
        f"load: {N + 1} jobs, {requests} API requests ({requests / (N + 1):.2f}/job), "
        f"executor max RSS {rss_mb:.0f} MB, CPU {cpu:.1f} s"
    )
    assert requests <= 3 * (N + 1) + 50
    assert rss_mb < 1024, "bounded memory"
