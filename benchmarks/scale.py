"""Scale: the same trivial workflow at growing sizes (default 1000, 3000 and 10,000
jobs), to see whether anything of the executor grows faster than the number of jobs.

    .venv/bin/python benchmarks/scale.py [--sizes 1000,3000,10000] [--jobs-at-once 1000]

Every job is a real pod through the real executor (create, watch, exit-status file,
log, delete) on a virtual node of the benchmark's own in its fast local mode. Only the
job's own `python -m snakemake` is replaced (workflow_500.stub_bin) by a shell stub that
writes the rule's one output: a real one costs about 1.2 CPU-seconds, which would make
10,000 jobs take hours of this machine's 2 cores and measure the jobs, not the executor.
For each size: makespan, the snakemake process's CPU (its scheduler included) and peak
RSS, the executor's own CPU (thread CPU clocks, executor_cpu.py), API requests, each per
job, and the ratio of each per-job figure to the smallest
size's (1.0: linear). Figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from workflow_500 import (
    SNAKEFILE,
    STATE,
    bench_node,
    env_of,
    interlink_args,
    report_rows,
    run,
    snakemake_command,
    stub_bin,
)

STUB_JOB = 'echo "$1" > "out/$1.txt"\n'  # what rule `work` does


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,3000,10000")
    parser.add_argument(
        "--jobs-at-once", type=int, default=1000, help="snakemake --jobs"
    )
    parser.add_argument("--slots", type=int, default=8, help="job processes at once")
    parser.add_argument(
        "--scheduler", default="ilp", help="snakemake --scheduler (ilp or greedy)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy each run: the executor's share (/tmp/scale-N.py-spy.txt)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    bed = env_of(STATE / "env")
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        stubs = stub_bin(Path(tmp))
        with bench_node(
            bed, "fast", args.slots, pods=args.jobs_at_once + 100, image_path=stubs
        ) as node_args:
            for n in sizes:
                workdir = Path(tmp) / f"n{n}"
                (workdir / "out").mkdir(parents=True)
                (workdir / "Snakefile").write_text(SNAKEFILE.format(n=n))
                (workdir / "stub-job.sh").write_text(STUB_JOB)
                account = workdir / "executor-cpu.json"
                command = snakemake_command(account)
                command += ["--jobs", str(args.jobs_at_once)]
                command += ["--scheduler", args.scheduler]
                command += [*interlink_args(bed), *node_args]
                profile = workdir / "py-spy.txt" if args.profile else None
                result = run(
                    command, workdir, profile, f"scale-{n}.py-spy.txt", account
                )
                rows = len(report_rows(workdir))
                if rows != n:
                    sys.exit(f"n={n}: the run report has {rows} rows, not {n}")
                results[n] = result
                print(json.dumps({"benchmark": "scale", "jobs": n, **result}))
    print(table(results, args.jobs_at_once, args.scheduler))


def table(results: dict[int, dict], at_once: int, scheduler: str) -> str:
    base_n = min(results)
    base = results[base_n]
    lines = [
        f"scale: trivial jobs, --jobs {at_once}, --scheduler {scheduler}, "
        "the jobs' own Snakemake stubbed",
        f"{'jobs':>6} {'makespan s':>11} {'CPU s':>7} {'CPU ms/job':>11} "
        f"{'peak RSS MiB':>13} {'requests/job':>13} {'CPU/job vs ' + str(base_n):>16}"
        f"{'executor ms/job':>16}",
    ]
    for n, r in sorted(results.items()):
        per_job = 1000 * r["cpu_s"] / n
        growth = per_job / (1000 * base["cpu_s"] / base_n)
        lines.append(
            f"{n:>6} {r['makespan_s']:>11.1f} {r['cpu_s']:>7.1f} {per_job:>11.2f} "
            f"{r['max_rss_mib']:>13.1f} {r['api_requests'] / n:>13.2f} {growth:>16.2f}"
            + f"{1000 * r['executor_cpu_s'] / n:>16.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
