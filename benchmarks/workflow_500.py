"""End-to-end: a workflow of 500 trivial jobs through the testbed, on a virtual node of
the benchmark's own (the testbed's agent in its fast local mode: pods run as local
processes, status at once), versus the same workflow with Snakemake's local executor.

    .venv/bin/python benchmarks/workflow_500.py [--jobs 500] [--profile]

Prints makespan, the snakemake process's CPU seconds (user + system), the executor's
own share of it (thread CPU clocks, executor_cpu.py) and the number of API requests the
executor made (its own count), as a table and JSON. --profile also samples the
interlink run with py-spy (`.venv/bin/pip install 'py-spy>=0.3.14'`) and splits its
thread time between this package's code (and what it calls: httpx, json, ...) and the
rest (Snakemake's scheduler, DAG and job bookkeeping, and the
executor base class).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("INTERLINK_TESTBED_STATE", "/tmp/interlink-testbed"))
# py-spy names files relative to sys.path: "snakemake_executor_plugin_interlink/kube.py"
PACKAGE_PATH = "snakemake_executor_plugin_interlink/"

# The benchmarks' own virtual node (bench_node)
NODE = "vk-bench"
PORT = 10550
TAINT = "testbed.interlink/site=bench:NoSchedule"

SNAKEFILE = """
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))
rule work:
    output: "out/{{i}}.txt"
    resources: mem_mb=10
    shell: "echo {{wildcards.i}} > {{output}}"
"""


# The job's own Snakemake, stubbed: `python -m snakemake ... --target-jobs 'work:i=7'`
# runs `sh stub-job.sh 7` in the job's working directory (the workflow's, on the shared
# filesystem), which does what the benchmark's rule would; any other use of python is
# the real one (the job script's exit-status reporter).
PYTHON_STUB = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "snakemake" ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = "--target-jobs" ]; then
      exec sh stub-job.sh "${{2##*i=}}"
    fi
    shift
  done
  echo "python stub: no --target-jobs" >&2
  exit 2
fi
exec {python} "$@"
"""


def stub_bin(parent: Path) -> Path:
    """A directory whose `python` is PYTHON_STUB: bench_node's `image_path` for runs
    that measure the executor at a size where real jobs would cost hours."""
    path = parent / "stub-bin"
    path.mkdir()
    stub = path / "python"
    stub.write_text(PYTHON_STUB.format(python=shlex.quote(sys.executable)))
    stub.chmod(0o755)
    return path


@contextmanager
def bench_node(
    bed: dict[str, str],
    timing: str,
    slots: int,
    pods: int = 2000,
    image_path: Path | None = None,
) -> Iterator[list[str]]:
    """A virtual node of the benchmark's own: local processes (no Slurm queue of 2
    cores to wait in), the given status timing (`real`: interLink's; `fast`: at once),
    room for `pods` pods, its own taint, in the load test's namespace, so nothing else
    lands there and the shared testbed keeps serving other tests as it was. Jobs find
    their programs first in `image_path` (default: this Python's). Yields the executor
    arguments that target it."""
    state = STATE / "vnode-bench"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    kubectl = [
        f"{bed['TESTBED_BIN']}/kubectl",
        "--kubeconfig",
        bed["TESTBED_ADMIN_KUBECONFIG"],
    ]
    agent_args = ["--node", NODE, "--kubeconfig", bed["TESTBED_ADMIN_KUBECONFIG"]]
    agent_args += ["--port", str(PORT), "--batch", "local", "--status-timing", timing]
    agent_args += [
        "--state-dir",
        str(state),
        "--image-path",
        str(image_path or Path(sys.executable).parent),
    ]
    agent_args += ["--taint", TAINT, "--static-capacity", "--cpu", "2000"]
    agent_args += ["--memory", "4000Gi", "--pods", str(pods)]
    agent_args += ["--local-slots", str(slots)]
    agent_args += ["--ping-interval", "5", "--poll", "1.0"]
    with open(STATE / "logs" / f"{NODE}.log", "ab") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "vnode", *agent_args],
            env={
                **os.environ,
                "PYTHONPATH": str(REPO / "testbed"),
                "PYTHONUNBUFFERED": "1",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = [*kubectl, "get", "node", NODE, "-o"]
        ready.append('jsonpath={.status.conditions[?(@.type=="Ready")].status}')
        deadline = time.monotonic() + 90
        while subprocess.run(ready, capture_output=True, text=True).stdout != "True":
            if agent.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"virtual node {NODE} did not become Ready (see its log)")
            time.sleep(1)
        yield [
            "--interlink-namespace",
            bed["TESTBED_LOCAL_NAMESPACE"],
            "--interlink-node",
            NODE,
            "--interlink-tolerations",
            TAINT,
            # room for every pod of the run on one node
            "--interlink-requests",
            "cpu=1m,memory=1Mi",
        ]
    finally:
        agent.terminate()
        agent.wait(30)
        subprocess.run(
            [*kubectl, "delete", "node", NODE, "--ignore-not-found"],
            capture_output=True,
        )


def snakemake_command(account: Path | None = None) -> list[str]:
    """`python -m snakemake`, or with `account`, Snakemake under executor_cpu.py,
    which writes the executor's own CPU (thread CPU clocks) to that file."""
    if account is None:
        return [sys.executable, "-m", "snakemake"]
    return [
        sys.executable,
        str(Path(__file__).with_name("executor_cpu.py")),
        str(account),
    ]


def executor_cpu(account: Path) -> dict:
    """What executor_cpu.py wrote at the process's exit; a process killed before its
    exit handlers ran wrote nothing, and that is an error, not a zero."""
    if not account.exists():
        sys.exit(f"{account}: no executor CPU figures (the run did not exit cleanly)")
    return json.loads(account.read_text())


def run(
    cmd: list[str],
    workdir: Path,
    profile: Path | None = None,
    kept_as: str = "workflow_500.py-spy.txt",
    account: Path | None = None,
) -> dict:
    """The command's own CPU (os.wait4: a profiler beside it is not counted), and with
    `profile`, py-spy sampling it from outside into that file, kept in the temporary
    directory as `kept_as` (the workdir goes). With `account` (the file the command
    was given by snakemake_command), the executor's own CPU from it."""
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            cmd, cwd=workdir, stderr=stderr, stdout=subprocess.DEVNULL
        )
        spy = None
        if profile is not None:  # 100 samples/s of every thread; IDLE_FRAMES decide
            exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            spy = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--idle",
                    "-r",
                    "100",
                    "-f",
                    "raw",
                    "-o",
                    str(profile),
                    "--pid",
                    str(process.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        if spy is not None:
            spy.wait(60)  # it writes its file when the process is gone
        stderr.seek(0)
        text = stderr.read()
    if process.returncode != 0:
        sys.exit(f"run failed:\n{text[-3000:]}")
    found = re.search(r"interlink: (\d+) API requests", text)
    result = {
        "makespan_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "api_requests": int(found.group(1)) if found else 0,
    }
    if account is not None:
        own = executor_cpu(account)
        result["executor_cpu_s"] = own["seconds"].get("executor", 0.0)
        result["executor_cpu_parts"] = own["by_entry_point"]
    if profile is not None:
        result.update(executor_share(profile))
        kept = Path(tempfile.gettempdir()) / kept_as
        shutil.copyfile(profile, kept)
        result["profile"] = str(kept)
    return result


def report_rows(workdir: Path) -> list[dict[str, str]]:
    """The rows of the run report(s) in a working directory (jobs.tsv)."""
    rows: list[dict[str, str]] = []
    for report in (workdir / ".snakemake" / "interlink_reports").glob("*/jobs.tsv"):
        with report.open() as f:
            rows += csv.DictReader(f, delimiter="\t")
    return rows


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


# Where a thread waits. py-spy can leave idle threads out by asking the OS whether they
# run, but some kernels (gVisor) do not tell, and on others a thread busy in a system
# call looks idle: it samples every thread (--idle), and samples whose innermost frame
# is one of these waits are the idle ones.
IDLE_FRAMES = (
    "_worker (",  # a thread pool's worker waiting for work
    "Condition.wait (",
    "Event.wait (",
    "SSLSocket.read (",  # a watch or a request waiting for the server
    "SyncStream.read (",
    "EpollSelector.select (",  # Snakemake's event loop waiting
    "_read_from_self (",
    "ThreadLock.__enter__ (",  # a request waiting for httpcore's connection pool
    "PodTracker.wait_for_change (",  # the executor's sleep between rounds
)


def executor_share(samples: Path) -> dict[str, float]:
    """py-spy's raw output (one `frame;frame;... count` line per stack): the share of
    the busy samples (IDLE_FRAMES left out) with a frame of this package on the stack,
    and the same split by what the executor was doing (its outermost frame)."""
    ours = busy = 0
    parts: dict[str, int] = {}
    for line in samples.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if frames[-1].startswith(IDLE_FRAMES):
            continue
        busy += int(count)
        if PACKAGE_PATH in stack:
            ours += int(count)
            outer = next(f for f in frames if PACKAGE_PATH in f).split(" (")[0]
            parts[outer] = parts.get(outer, 0) + int(count)
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:8]
    return {
        "busy_samples": busy,
        "executor_share": round(ours / busy, 4) if busy else 0.0,
        "executor_parts": {name: round(n / busy, 3) for name, n in top} if busy else {},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--slots", type=int, default=4, help="job processes at once")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy: the executor's share"
    )
    args = parser.parse_args()
    n = args.jobs
    bed = env_of(STATE / "env")
    results = {}
    with bench_node(bed, "fast", args.slots) as node_args:
        for name, extra in {
            "local executor": ["--executor", "local", "--cores", "2"],
            "interlink executor": [*interlink_args(bed), *node_args],
        }.items():
            with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
                workdir = Path(tmp)
                (workdir / "Snakefile").write_text(SNAKEFILE.format(n=n))
                interlink = name == "interlink executor"
                account = workdir / "executor-cpu.json" if interlink else None
                results[name] = run(
                    [*snakemake_command(account), "--jobs", str(n), *extra],
                    workdir,
                    workdir / "py-spy.txt" if interlink and args.profile else None,
                    account=account,
                )
                shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    ours, floor = results["interlink executor"], results["local executor"]
    print(f"{'':20} {'makespan s':>11} {'CPU s':>8} {'requests':>9}")
    for name, r in results.items():
        print(f"{name:20} {r['makespan_s']:>11} {r['cpu_s']:>8} {r['api_requests']:>9}")
    summary = {
        "jobs": n,
        "process_cpu_ms_per_job": round(1000 * ours["cpu_s"] / n, 2),
        "requests_per_job": round(ours["api_requests"] / n, 2),
        "makespan_ratio_vs_local": round(ours["makespan_s"] / floor["makespan_s"], 2),
    }
    summary["executor_cpu_ms_per_job"] = round(1000 * ours["executor_cpu_s"] / n, 2)
    print(json.dumps({"benchmark": "workflow_500", **results, **summary}))
    own = summary["executor_cpu_ms_per_job"]
    print(
        f"targets: the executor's own CPU < 2 ms/job: {own} "
        f"({'met' if own < 2 else f'missed by {own / 2:.2f}x'}; thread CPU clocks) "
        f"(whole process {summary['process_cpu_ms_per_job']} ms/job); "
        f"<= 3 requests/job + watch: {summary['requests_per_job']}; "
        f"makespan <= 2x local: {summary['makespan_ratio_vs_local']}x"
    )


if __name__ == "__main__":
    main()
