"""How long after a job's command ends does the executor report it? On the testbed's
Slurm node with interLink's real status timing (a VK pass every 5 s, one pod per
request, the Slurm plugin's 10 s cache: about one pod refreshed per 10 s).

    .venv/bin/python benchmarks/notice_latency.py [--jobs 20]

Three ways of noticing, each a full run of the same workflow (N jobs, each sleeping a
random 5-60 s, then writing the time its command ended):
- pod status alone: the exit-status directory is blocked (a file stands where it would
  be) and the log probe is off (--interlink-log-probe-rate 0);
- exit-status files (the default with a shared filesystem);
- log probe: the directory is blocked; the probe reads the jobs' end lines (default
  rate).
The notice time is Snakemake's "Finished jobid" line (1 s resolution) minus the time the
command ended. Prints median / p90 / max per way, the ratio to pod status alone, and the
API requests of each run (the executor's own count), as a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from workflow_500 import STATE, env_of, interlink_args

SNAKEFILE = """
SLEEP = {sleeps}
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))
rule work:
    output: "out/{{i}}.txt"
    params: seconds=lambda wc: SLEEP[int(wc.i)]
    resources: mem_mb=50
    shell: "sleep {{params.seconds}}; date +%s.%N > {{output}}"
"""

WAYS = {
    "pod status alone": (True, ["--interlink-log-probe-rate", "0"]),
    "exit-status files": (False, []),
    "log probe": (True, []),
}
_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]{8} \d{4})\]$")
_FINISHED = re.compile(r"^Finished jobid: (\d+)")
_JOB = re.compile(r"^\s+jobid: (\d+)$")
_OUTPUT = re.compile(r"^\s+output: out/(\d+)\.txt$")


def finished_times(log: str) -> dict[int, float]:
    """Output index -> epoch second at which Snakemake reported the job finished."""
    stamp, output, outputs, done = 0.0, None, {}, {}
    for line in log.splitlines():
        if found := _STAMP.match(line):
            when = datetime.strptime(found.group(1), "%a %b %d %H:%M:%S %Y")
            stamp = when.timestamp()
        elif found := _OUTPUT.match(line):
            output = int(found.group(1))
        elif (found := _JOB.match(line)) and output is not None:
            outputs[int(found.group(1))] = output
            output = None
        elif found := _FINISHED.match(line):
            jobid = int(found.group(1))
            if jobid in outputs:
                done[outputs[jobid]] = stamp
    return done


def run_way(n: int, sleeps: list[int], blocked: bool, extra: list[str]) -> dict:
    bed = env_of(STATE / "env")
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        workdir = Path(tmp)
        (workdir / "Snakefile").write_text(SNAKEFILE.format(n=n, sleeps=sleeps))
        if blocked:
            (workdir / ".snakemake").mkdir()
            (workdir / ".snakemake" / "interlink_exit").write_text("blocked\n")
        start = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                *interlink_args(bed),
                "--jobs",
                str(n),
                "--latency-wait",
                "5",
                *extra,
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
        )
        makespan = time.monotonic() - start
        if done.returncode != 0:
            sys.exit(f"run failed:\n{done.stderr[-3000:]}")
        reported = finished_times(done.stderr)
        ended = {i: float((workdir / "out" / f"{i}.txt").read_text()) for i in range(n)}
    delays = sorted(max(0.0, reported[i] - ended[i]) for i in range(n) if i in reported)
    requests = re.search(r"interlink: (\d+) API requests", done.stderr)
    return {
        "jobs_seen": len(delays),
        "median_s": round(statistics.median(delays), 1),
        "p90_s": round(delays[int(0.9 * (len(delays) - 1))], 1),
        "max_s": round(delays[-1], 1),
        "makespan_s": round(makespan, 1),
        "api_requests": int(requests.group(1)) if requests else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sleeps = [rng.randint(5, 60) for _ in range(args.jobs)]
    results = {name: run_way(args.jobs, sleeps, *way) for name, way in WAYS.items()}
    base = results["pod status alone"]["median_s"] or 1.0
    header = ("median s", 9), ("p90 s", 7), ("max s", 7), ("ratio", 6), ("requests", 9)
    print(f"{'':18} " + " ".join(f"{title:>{width}}" for title, width in header))
    for name, r in results.items():
        ratio = round(r["median_s"] / base, 3)
        r["median_ratio_to_pod_status"] = ratio
        print(
            f"{name:18} {r['median_s']:>9} {r['p90_s']:>7} {r['max_s']:>7} "
            f"{ratio:>6} {r['api_requests']:>9}"
        )
    print(json.dumps({"benchmark": "notice_latency", "jobs": args.jobs, **results}))


if __name__ == "__main__":
    main()
