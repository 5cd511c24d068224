"""End-to-end: a workflow of 500 trivial jobs through the testbed (virtual node in its
fast local mode) versus the same workflow with Snakemake's local executor.

    .venv/bin/python benchmarks/workflow_500.py [--jobs 500]

Prints makespan, the executor's CPU seconds (the snakemake process: user + system) and
the number of API requests the executor made (its own count), as a table and JSON.
The virtual node is switched to local mode for the run and back to Slurm afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("INTERLINK_TESTBED_STATE", "/tmp/interlink-testbed"))

SNAKEFILE = """
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))
rule work:
    output: "out/{{i}}.txt"
    resources: mem_mb=10
    shell: "echo {{wildcards.i}} > {{output}}"
"""


def run(cmd: list[str], workdir: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"run failed:\n{done.stderr[-3000:]}")
    found = re.search(r"interlink: (\d+) API requests", done.stderr)
    return {
        "makespan_s": round(wall, 2),
        "cpu_s": round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2
        ),
        "api_requests": int(found.group(1)) if found else 0,
    }


def env_of(path: Path) -> dict[str, str]:
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in path.read_text().splitlines()
        if line.startswith("export ")
    )


def interlink_args(bed: dict[str, str]) -> list[str]:
    """The executor on the testbed, as the executor user in its namespace."""
    return [
        "--executor",
        "interlink",
        "--interlink-kubeconfig",
        bed["TESTBED_EXECUTOR_KUBECONFIG"],
        "--interlink-namespace",
        bed["TESTBED_NAMESPACE"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    n = parser.parse_args().jobs
    up = str(REPO / "testbed" / "up.sh")
    subprocess.run(
        [up],
        check=True,
        env={
            **os.environ,
            "TESTBED_VNODE_MODE": "local",
            "TESTBED_VNODE_ARGS": f"--pods {n + 10}",
            # the executor alone, not interLink's status delays
            "TESTBED_VNODE_STATUS": "fast",
        },
    )
    bed = env_of(STATE / "env")
    snakemake = [sys.executable, "-m", "snakemake", "--jobs", str(n)]
    results = {}
    try:
        for name, extra in {
            "local executor": ["--executor", "local", "--cores", "2"],
            "interlink executor": [
                *interlink_args(bed),
                "--interlink-requests",
                "cpu=1m,memory=1Mi",
            ],
        }.items():
            with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
                workdir = Path(tmp)
                (workdir / "Snakefile").write_text(SNAKEFILE.format(n=n))
                results[name] = run([*snakemake, *extra], workdir)
                shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    finally:
        subprocess.run(
            [up], check=True, env={**os.environ, "TESTBED_VNODE_MODE": "slurm"}
        )
    ours, floor = results["interlink executor"], results["local executor"]
    print(f"{'':20} {'makespan s':>11} {'CPU s':>8} {'requests':>9}")
    for name, r in results.items():
        print(f"{name:20} {r['makespan_s']:>11} {r['cpu_s']:>8} {r['api_requests']:>9}")
    summary = {
        "jobs": n,
        "executor_cpu_ms_per_job": round(1000 * ours["cpu_s"] / n, 2),
        "requests_per_job": round(ours["api_requests"] / n, 2),
        "makespan_ratio_vs_local": round(ours["makespan_s"] / floor["makespan_s"], 2),
    }
    print(json.dumps({"benchmark": "workflow_500", **results, **summary}))
    print(
        f"targets: CPU < 5 ms/job: {summary['executor_cpu_ms_per_job']} ms; "
        f"<= 3 requests/job + watch: {summary['requests_per_job']}; "
        f"makespan <= 2x local: {summary['makespan_ratio_vs_local']}x"
    )


if __name__ == "__main__":
    main()
