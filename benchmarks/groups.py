"""Many small jobs: N one-second jobs and one gather on the testbed's Slurm node (with
interLink's real status timing), ungrouped and with Snakemake's job groups applied
from the command line only (`--groups work=batch --group-components batch=K`, the
workflow unchanged), at K jobs per pod.

    .venv/bin/python benchmarks/groups.py [--jobs 1000] [--per-pod 10,50,200]

Prints, per case: makespan, batch jobs submitted (Slurm's accounting over the run's
time window, checked against the run report's distinct Slurm job ids), pods created
(the run report's distinct pods), the executor's CPU seconds (the snakemake process:
user + system; the jobs run under slurmd) and its API requests (its own count); then
each grouped case's ratios to the ungrouped one, against the targets at 50 per pod
(>= 10x fewer batch jobs, >= 5x shorter makespan). Uses the testbed as it runs (it is
shared): nothing is restarted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workflow_500 import STATE, env_of, interlink_args, report_rows, run

SNAKEFILE = """
rule all:
    input: "gathered.txt"
rule work:
    output: "out/{{i}}.txt"
    resources: mem_mb=100
    shell: "sleep 1; echo {{wildcards.i}} > {{output}}"
rule gather:
    input: expand("out/{{i}}.txt", i=range({n}))
    output: "gathered.txt"
    shell: "cat {{input}} > {{output}}"
"""
TARGET_PER_POD = 50
TARGET_FEWER_BATCH_JOBS = 10.0
TARGET_SHORTER_MAKESPAN = 5.0


def slurm_jobs_between(start: str, end: str) -> int:
    """Batch jobs Slurm accounted between two times (seconds resolution)."""
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-S", start, "-E", end, "-o", "JobID"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.split())


def report_counts(workdir: Path) -> tuple[int, int, int]:
    """Rows, distinct pods and distinct Slurm job ids of the run report."""
    rows = report_rows(workdir)
    return (
        len(rows),
        len({r["pod"] for r in rows}),
        len({r["remote_job_id"] for r in rows if r["remote_job_id"]}),
    )


def run_case(n: int, per_pod: int | None, parallel: int, cores: int) -> dict:
    bed = env_of(STATE / "env")
    grouping = (
        []
        if per_pod is None
        else ["--groups", "work=batch", "--group-components", f"batch={per_pod}"]
    )
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *interlink_args(bed),
        "--jobs",
        str(parallel),
        "--cores",
        str(cores),
        "--latency-wait",
        "5",
        *grouping,
    ]
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        workdir = Path(tmp)
        (workdir / "Snakefile").write_text(SNAKEFILE.format(n=n))
        start = time.strftime("%Y-%m-%dT%H:%M:%S")
        result = run(command, workdir)
        time.sleep(1)  # sacct's window is in whole seconds
        end = time.strftime("%Y-%m-%dT%H:%M:%S")
        rows, pods, job_ids = report_counts(workdir)
    result.update(
        batch_jobs=slurm_jobs_between(start, end),
        batch_jobs_in_report=job_ids,
        pods_created=pods,
        report_rows=rows,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--per-pod", default="10,50,200")
    parser.add_argument(
        "--parallel", type=int, default=100, help="snakemake --jobs: pods at once"
    )
    parser.add_argument(
        "--cores",
        type=int,
        default=1,
        help="--cores: the cpus of each group's pod (jobs side by side in it)",
    )
    args = parser.parse_args()
    cases: dict[str, int | None] = {"ungrouped": None}
    cases.update({f"{k} per pod": k for k in map(int, args.per_pod.split(","))})
    results = {}
    for name, per_pod in cases.items():
        results[name] = run_case(args.jobs, per_pod, args.parallel, args.cores)
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    for name, r in results.items():
        if r["batch_jobs"] != r["batch_jobs_in_report"]:
            print(
                f"note: {name}: Slurm accounted {r['batch_jobs']} jobs in the run's "
                f"window, the run report names {r['batch_jobs_in_report']}: others "
                "used the testbed meanwhile (or a create was retried)"
            )
    base = results["ungrouped"]
    header = (
        f"{'':14} {'makespan s':>10} {'batch jobs':>10} {'pods':>5} {'CPU s':>6} "
        f"{'requests':>8} {'fewer jobs':>10} {'shorter':>8}"
    )
    print(header)
    for name, r in results.items():
        fewer = base["batch_jobs"] / max(r["batch_jobs"], 1)
        shorter = base["makespan_s"] / r["makespan_s"]
        r["fewer_batch_jobs_x"], r["shorter_makespan_x"] = (
            round(fewer, 1),
            round(shorter, 2),
        )
        print(
            f"{name:14} {r['makespan_s']:>10} {r['batch_jobs']:>10} "
            f"{r['pods_created']:>5} {r['cpu_s']:>6} {r['api_requests']:>8} "
            f"{fewer:>9.1f}x {shorter:>7.2f}x"
        )
    print(json.dumps({"benchmark": "groups", "jobs": args.jobs, **results}))
    target = results.get(f"{TARGET_PER_POD} per pod")
    if target is not None:
        for what, got, goal in (
            ("fewer batch jobs", target["fewer_batch_jobs_x"], TARGET_FEWER_BATCH_JOBS),
            ("shorter makespan", target["shorter_makespan_x"], TARGET_SHORTER_MAKESPAN),
        ):
            verdict = "met" if got >= goal else f"missed by {goal / got:.1f}x"
            print(
                f"target at {TARGET_PER_POD} per pod, >= {goal:g}x {what}: {got}x, "
                f"{verdict}"
            )


if __name__ == "__main__":
    main()
