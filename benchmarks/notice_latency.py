"""How long after a job's command ends does the executor report it? With interLink's
real status timing (a VK pass every 5 s, one pod per request, the Slurm plugin's 10 s
cache: about one pod refreshed per 10 s), at several widths.

    .venv/bin/python benchmarks/notice_latency.py [--jobs 20,200,1000] [--cap 1200]
    .venv/bin/python benchmarks/notice_latency.py --jobs 1000 --stub-jobs --slots 250

With --stub-jobs each job runs only its rule's command (sleep, write the time) under the
executor's job script, without its own `python -m snakemake` (workflow_500's stub_bin):
what is measured is then the executor's side alone, and 1000 jobs take minutes.

The jobs run on a virtual node of the benchmark's own (bench_node: the testbed's agent
in local mode, --local-slots job processes at once, the rest waiting in the batch
queue), since the testbed's Slurm has 2 cores: the status loop walks every pod the node
holds, so its lag grows with the width whatever runs at the moment. Three ways of
noticing, each a full run of the same workflow (N jobs, each sleeping a random 5-60 s,
then writing the time its command ended):
- pod status alone: the exit-status directory is blocked (a file stands where it would
  be) and the log probe is off (--interlink-log-probe-rate 0);
- exit-status files (the default with a shared filesystem);
- log probe (what a run without a shared filesystem uses): the directory is blocked;
  the probe reads the jobs' end lines (default rate).
The notice time is Snakemake's "Finished jobid" line (1 s resolution) minus the time the
command ended. A run still going after --cap seconds is stopped with Ctrl-C; its
unreported jobs count with the time they had waited (a lower bound, marked ≥ where it
reaches the median). Prints median / p90 / max per way, the ratio to pod status alone,
the API requests, the snakemake process's CPU (its scheduler included) and the
executor's own (thread CPU clocks, executor_cpu.py), as a table and JSON; and the
median delay's two parts: the job's own Snakemake finishing after the rule's command
(its "teardown", from the run report's job end), and from the pod's end to Snakemake's
report.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import datetime
from pathlib import Path

from workflow_500 import (
    STATE,
    bench_node,
    env_of,
    executor_cpu,
    interlink_args,
    report_rows,
    snakemake_command,
    stub_bin,
)

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

# --stub-jobs: what rule `work` does, without the job's own Snakemake around it
STUB_JOB = """sleep "$(sed -n "$(($1 + 1))p" sleeps.txt)"
date +%s.%N > "out/$1.txt"
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


def ended_times(workdir: Path) -> dict[int, float]:
    """Output index -> epoch second at which the job's command ended (its output)."""
    texts = {int(p.stem): p.read_text() for p in (workdir / "out").glob("*.txt")}
    return {index: float(text) for index, text in texts.items() if text.strip()}


def job_ends(workdir: Path) -> dict[int, float]:
    """Output index -> epoch second at which the job's pod command (its own Snakemake,
    which still checks and records the outputs after the rule's command) ended, as the
    run report has it (the job's own word)."""
    return {
        int(row["wildcards"].removeprefix("i=")): datetime.fromisoformat(
            row["finished"]
        ).timestamp()
        for row in report_rows(workdir)
        if row["rule"] == "work" and row["finished"]
    }


def median_gap(later: dict[int, float], earlier: dict[int, float]) -> float | None:
    gaps = [later[i] - earlier[i] for i in later.keys() & earlier.keys()]
    return round(statistics.median(gaps), 1) if gaps else None


def notice_delays(
    reported: dict[int, float], ended: dict[int, float], stopped_at: float
) -> list[tuple[float, bool]]:
    """(delay, censored) of every job whose command ended, by delay. A job never
    reported counts with the time it had waited when the run was stopped, a lower
    bound: a capped run understates the delays, never flatters them."""
    return sorted(
        (max(0.0, reported[i] - end), False)
        if i in reported
        else (max(0.0, stopped_at - end), True)
        for i, end in ended.items()
    )


def run_way(
    n: int, sleeps: list[int], way: str, node_args: list[str], cap: float
) -> dict:
    blocked, extra = WAYS[way]
    bed = env_of(STATE / "env")
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        workdir = Path(tmp)
        (workdir / "Snakefile").write_text(SNAKEFILE.format(n=n, sleeps=sleeps))
        (workdir / "out").mkdir()  # made by the job's Snakemake, which a stub is not
        (workdir / "stub-job.sh").write_text(STUB_JOB)
        (workdir / "sleeps.txt").write_text("".join(f"{s}\n" for s in sleeps))
        if blocked:
            (workdir / ".snakemake").mkdir()
            (workdir / ".snakemake" / "interlink_exit").write_text("blocked\n")
        log = workdir / "snakemake.log"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        with open(log, "w") as stderr:
            run = subprocess.Popen(
                [
                    *snakemake_command(account := workdir / "executor-cpu.json"),
                    *interlink_args(bed),
                    *node_args,
                    "--jobs",
                    str(n),
                    "--latency-wait",
                    "5",
                    "--keep-going",
                    *extra,
                ],
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                # a shell without job control starts us with SIGINT ignored
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
            with suppress(subprocess.TimeoutExpired):
                run.wait(cap)
            stopped_at = time.time()
            capped = run.poll() is None
            if capped:  # Ctrl-C: the executor deletes its pods
                run.send_signal(signal.SIGINT)
                run.wait(300)
        makespan = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        text = log.read_text()
        if run.returncode != 0 and not capped:
            sys.exit(f"{way}: run failed:\n{text[-3000:]}")
        reported, ended = finished_times(text), ended_times(workdir)
        samples = notice_delays(reported, ended, stopped_at)
        pods_ended = job_ends(workdir)
        own = executor_cpu(account)["seconds"].get("executor", 0.0)
    requests = re.search(r"interlink: (\d+) API requests", text)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    delays = [delay for delay, _ in samples]
    middle = (len(samples) - 1) // 2
    return {
        "jobs_ended": len(samples),
        "unseen_when_stopped": sum(censored for _, censored in samples),
        "capped_at_s": round(cap) if capped else None,
        "median_s": round(statistics.median(delays), 1),
        # a censored sample at or below the median: the true median is at least this
        "median_is_lower_bound": any(censored for _, censored in samples[: middle + 1]),
        "p90_s": round(delays[int(0.9 * (len(delays) - 1))], 1),
        "max_s": round(delays[-1], 1),
        "makespan_s": round(makespan, 1),
        "api_requests": int(requests.group(1)) if requests else 0,
        "process_cpu_s": round(cpu, 1),
        "executor_cpu_s": round(own, 1),
        # the median delay in two parts: the job's own Snakemake finishing after the
        # rule's command, then the executor and Snakemake reporting it
        "median_job_teardown_s": median_gap(pods_ended, ended),
        "median_pod_end_to_report_s": median_gap(reported, pods_ended),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", default="20,200", help="widths, comma-separated")
    parser.add_argument("--ways", default=",".join(WAYS), help="comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cap", type=float, default=1200, help="seconds after which a run is stopped"
    )
    parser.add_argument(
        "--slots", type=int, default=60, help="job processes at once on the node"
    )
    parser.add_argument(
        "--stub-jobs",
        action="store_true",
        help="the jobs' own Snakemake replaced by a shell stub (workflow_500's "
        "stub_bin): 1000 real ones cost 20 minutes of both cores per way",
    )
    args = parser.parse_args()
    ways = args.ways.split(",")
    header = ("median s", 9), ("p90 s", 7), ("max s", 7), ("ratio", 6), ("unseen", 7)
    header += ("requests", 9), ("req/job", 8), ("cpu s", 7), ("cpu ms/job", 11)
    header += (("executor ms/job", 16),)
    header += ("teardown s", 11), ("pod end→report s", 17)
    bed = env_of(STATE / "env")
    with (
        tempfile.TemporaryDirectory(dir="/tmp") as tmp,
        bench_node(
            bed,
            "real",
            args.slots,
            image_path=stub_bin(Path(tmp)) if args.stub_jobs else None,
        ) as node_args,
    ):
        for n in map(int, args.jobs.split(",")):
            rng = random.Random(args.seed)
            sleeps = [rng.randint(5, 60) for _ in range(n)]
            results = {
                way: run_way(n, sleeps, way, node_args, args.cap) for way in ways
            }
            base = results.get("pod status alone", {}).get("median_s") or None
            print(f"N = {n}")
            print(f"{'':18} " + " ".join(f"{t:>{w}}" for t, w in header))
            for way, r in results.items():
                ratio = round(r["median_s"] / base, 3) if base else "-"
                r["median_ratio_to_pod_status"] = ratio
                median = ("≥" if r["median_is_lower_bound"] else "") + str(
                    r["median_s"]
                )
                print(
                    f"{way:18} {median:>9} {r['p90_s']:>7} {r['max_s']:>7} {ratio:>6} "
                    f"{r['unseen_when_stopped']:>7} {r['api_requests']:>9} "
                    f"{r['api_requests'] / n:>8.2f} {r['process_cpu_s']:>7} "
                    f"{1000 * r['process_cpu_s'] / n:>11.1f} "
                    f"{1000 * r['executor_cpu_s'] / n:>16.1f} "
                    f"{r['median_job_teardown_s']!s:>11} "
                    f"{r['median_pod_end_to_report_s']!s:>17}",
                    flush=True,
                )
            print(json.dumps({"benchmark": "notice_latency", "jobs": n, **results}))


if __name__ == "__main__":
    main()
