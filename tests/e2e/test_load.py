"""Load: thousands of jobs through the testbed's vk-local node, in the fast local mode (the
pods' commands run as local processes instead of Slurm jobs, four at a time, the others
pending). Every job accounted for, bounded memory, nothing left behind. The node and the
namespace are the load test's own, so scripts/test.sh runs it beside the other tests."""

from __future__ import annotations

import math
import os
import re
import sys
import time
from pathlib import Path

import pytest

from .conftest import Testbed

pytestmark = pytest.mark.load

# Every job runs its own Snakemake process (about 2 CPU-seconds), so the jobs, not the
# executor, set the test's length: 1000 jobs, 500 of them in flight at a time, take
# about 20 minutes of both cores beside the other tests. The executor's work per status
# round grows with the jobs in flight, not with the total. INTERLINK_LOAD_JOBS=N runs
# another size (2000 measured: 6046 API requests, 150 MB RSS).
N = int(os.environ.get("INTERLINK_LOAD_JOBS", "1000"))

# Runs a command and reports the peak RSS (KiB) and CPU seconds of that command alone:
# the test process's own RUSAGE_CHILDREN would include every earlier test's children.
OWN_RUSAGE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(f'RUSAGE {u.ru_maxrss} {u.ru_utime + u.ru_stime:.1f}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def test_a_thousand_jobs_500_in_flight(local_testbed: Testbed, workdir: Path, figures):
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
    started = time.monotonic()
    done = local_testbed.snakemake(
        workdir,
        "--jobs",
        "500",
        "--interlink-requests",
        "cpu=1m,memory=1Mi",
        "--interlink-max-concurrent-submissions",
        "4",
        # the stand-in node shares 2 cores with the load's jobs and the other tests and
        # can fall minutes behind its watch: what is measured here is the executor's
        # accounting, not the stand-in's speed
        "--interlink-unschedulable-timeout",
        "0",
        timeout=3000,
        under=(sys.executable, "-c", OWN_RUSAGE),
    )
    minutes = (time.monotonic() - started) / 60
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
    # per job: create and delete (its log is the output it kept on the shared
    # filesystem), and now and then a GET of a pod the lagging watch has not shown yet
    # (under 0.1 per job; one request per job more means polling or log requests);
    # per run: start-up checks and the final cleanup; per 5 minutes
    # (--interlink-relist-interval): a LIST and a new watch
    assert requests <= 2.1 * (N + 1) + 50 + 2 * math.ceil(minutes / 5)
    assert rss_mb < 1024, "bounded memory"
