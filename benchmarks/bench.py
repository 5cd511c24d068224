"""Benchmarks of the executor's own cost against a real kube-apiserver.

    .venv/bin/python benchmarks/bench.py [--sizes 100,1000,5000] [--json out.jsonl]

Every pod lives in namespace `bench`, carries a run label unique to its case and
`schedulerName: no-scheduler`, so nothing but this script changes it; each case deletes
its pods (deletecollection) and waits until the namespace is empty. Status changes are
sent by a separate patcher process (this file with --patcher), so their cost is not
counted. What each figure means: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from snakemake_executor_plugin_interlink.board import StatusBoard  # noqa: E402
from snakemake_executor_plugin_interlink.kube import (  # noqa: E402
    ClusterAccess,
    KubeClient,
    load_access,
)
from snakemake_executor_plugin_interlink.pod import (  # noqa: E402
    RUN_LABEL,
    JobSpec,
    RunContext,
    pod_for_job,
)
from snakemake_executor_plugin_interlink.progress import Progress  # noqa: E402
from snakemake_executor_plugin_interlink.settings import CheckedSettings  # noqa: E402
from snakemake_executor_plugin_interlink.status import classify_pod  # noqa: E402
from snakemake_executor_plugin_interlink.tracker import (  # noqa: E402
    SETTLE_SECONDS,
    PodTracker,
)

KUBECONFIG = Path(
    os.environ.get("BENCH_KUBECONFIG", "/tmp/interlink-testbed/admin.kubeconfig")
)
NS = "bench"
PODS = f"/api/v1/namespaces/{NS}/pods"
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"
SETTINGS = CheckedSettings(namespace=NS)  # the executor's defaults
WORKDIR = "/data/projects/rnaseq-2024"

# ----------------------------------------------------------------------------- helpers


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def job_spec(jobid: int) -> JobSpec:
    """A job as Snakemake hands it over: its command is what format_job_exec builds."""
    sample = f"S{jobid:05d}"
    command = (
        f"python -m snakemake --snakefile {WORKDIR}/workflow/Snakefile "
        f"--target-jobs 'align:sample={sample}' --allowed-rules align --cores all "
        "--attempt 1 --force-use-threads --resources 'mem_mb=4000' 'mem_mib=3815' "
        "'disk_mb=1000' 'disk_mib=954' 'runtime=60' 'tmpdir=system_tmpdir' "
        f"--wait-for-files {WORKDIR}/.snakemake/tmp.k2x9q_r7 "
        f"{WORKDIR}/reads/{sample}_R1.fastq.gz {WORKDIR}/reads/{sample}_R2.fastq.gz "
        "--force --target-files-omit-workdir-adjustment --max-inventory-time 0 "
        "--nocolor --notemp --no-hooks --nolock --ignore-incomplete "
        "--rerun-triggers code input mtime params software-env "
        "--conda-frontend conda --shared-fs-usage persistence software-deployment "
        "input-output sources source-cache storage-local-copies "
        "--wrapper-prefix https://github.com/snakemake/snakemake-wrappers/raw/ "
        "--latency-wait 5 --scheduler ilp --local-storage-prefix .snakemake/storage "
        "--scheduler-solver-path /usr/bin "
        "--default-resources base64//dG1wZGlyPXN5c3RlbV90bXBkaXI= "
        "--executor interlink --mode remote"
    )
    return JobSpec(
        jobid=jobid,
        rule="align",
        attempt=1,
        threads=4,
        resources={
            "_cores": 4,
            "_nodes": 1,
            "mem_mb": 4000,
            "mem_mib": 3815,
            "disk_mb": 1000,
            "disk_mib": 954,
            "tmpdir": "/tmp",
            "runtime": 60,
        },
        command=command,
        wildcards={"sample": sample},
        outputs=(f"{WORKDIR}/results/aligned/{sample}.bam",),
    )


def run_context(run_id: str) -> RunContext:
    return RunContext(
        run_id=run_id, namespace=NS, workdir=WORKDIR, image="snakemake/snakemake:v9"
    )


def manifests_for(run_id: str, n: int) -> list[dict[str, Any]]:
    run = run_context(run_id)
    out = []
    for i in range(1, n + 1):
        manifest, _ = pod_for_job(job_spec(i), SETTINGS, run)
        manifest["spec"]["schedulerName"] = "no-scheduler"
        out.append(manifest)
    return out


def selector(run_id: str) -> str:
    return f"{RUN_LABEL}={run_id}"


class Raw:
    """Plain httpx: for setup, cleanup and the raw-create baseline (never counted)."""

    def __init__(self, access: ClusterAccess, connections: int = 4):
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        token = access.token() if access.token else None
        if token:
            headers["Authorization"] = token
        self.http = httpx.Client(
            base_url=access.server,
            verify=access.verify,
            cert=access.cert,
            headers=headers,
            timeout=httpx.Timeout(600.0, connect=10.0),
            limits=httpx.Limits(
                max_connections=connections, max_keepalive_connections=connections
            ),
        )

    def close(self) -> None:
        self.http.close()

    def post(self, body: bytes, path: str = PODS) -> None:
        r = self.http.post(path, content=body)
        if r.status_code != 201:
            raise RuntimeError(f"create failed: {r.status_code} {r.text[:300]}")

    def create_all(
        self, bodies: list[bytes], concurrency: int, path: str = PODS
    ) -> float:
        """Seconds to create all pods with `concurrency` requests in flight."""
        it = iter(bodies)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    body = next(it, None)
                if body is None:
                    return
                self.post(body, path)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0

    def count(self) -> int:
        """Pods left in the namespace (1 means 'some')."""
        r = self.http.get(f"/api/v1/namespaces/{NS}/pods", params={"limit": 1})
        r.raise_for_status()
        return len(r.json()["items"])

    def delete_jobs(self, run_id: str | None = None) -> None:
        params = {"propagationPolicy": "Background"}
        if run_id:
            params["labelSelector"] = selector(run_id)
        self.http.delete(JOBS, params=params).raise_for_status()
        deadline = time.monotonic() + 300
        while self.http.get(JOBS, params={"limit": 1}).json()["items"]:
            if time.monotonic() > deadline:
                raise RuntimeError("jobs of namespace bench were not deleted in 300 s")
            time.sleep(0.2)

    def delete_run(self, run_id: str | None = None) -> None:
        params = {"labelSelector": selector(run_id)} if run_id else {}
        params["gracePeriodSeconds"] = 0
        r = self.http.delete(f"/api/v1/namespaces/{NS}/pods", params=params)
        r.raise_for_status()
        deadline = time.monotonic() + 300
        while self.count():
            if time.monotonic() > deadline:
                raise RuntimeError("pods of namespace bench were not deleted in 300 s")
            time.sleep(0.2)


def ensure_server(access: ClusterAccess) -> None:
    """Reuse a running API server; else start the testbed and wait for /readyz."""

    def ready() -> bool:
        try:
            r = httpx.get(f"{access.server}/readyz", verify=access.verify, timeout=3)
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    deadline = time.monotonic() + 60  # it may be restarting: give it a minute
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(2)
    print("bench: API server not reachable; running testbed/up.sh", file=sys.stderr)
    subprocess.run([str(REPO / "testbed" / "up.sh")], check=True)
    deadline = time.monotonic() + 300
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit("bench: the API server did not become ready in 300 s")
        time.sleep(1)


def ensure_namespace(raw: Raw) -> None:
    body = json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    )
    r = raw.http.post("/api/v1/namespaces", content=body)
    if r.status_code not in (201, 409):
        raise SystemExit(f"bench: cannot create namespace {NS}: {r.text[:300]}")
    # pods need the namespace's default ServiceAccount (made by the controller manager)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = raw.http.get(f"/api/v1/namespaces/{NS}/serviceaccounts/default")
        if r.status_code == 200:
            return
        time.sleep(0.5)
    raise SystemExit("bench: namespace bench has no default ServiceAccount")


def server_version(raw: Raw) -> str:
    return raw.http.get("/version").json().get("gitVersion", "?")


def delete_and_reap(
    raw: Raw, run_id: str, trackers: list[tuple[PodTracker, KubeClient]]
) -> None:
    """Delete a run's pods, then end its stopped trackers: a watch blocked in a read
    leaves only when an event arrives (the deletions), closing the client does not
    interrupt it."""
    for tracker, _ in trackers:
        tracker.stop()
    raw.delete_run(run_id)
    for tracker, kube in trackers:
        tracker._thread.join(timeout=10)
        kube.close()


# ---------------------------------------------------------------------------- patcher


def patcher_main(kubeconfig: Path) -> None:
    """Separate process: reads commands (JSON lines) on stdin, PATCHes pod status."""
    import logging

    logging.disable(logging.CRITICAL)
    access = load_access(kubeconfig=kubeconfig)
    raw = Raw(access, connections=4)
    pool = ThreadPoolExecutor(max_workers=4)
    headers = {"Content-Type": "application/merge-patch+json"}

    def patch(name: str, status: dict[str, Any]) -> int:
        r = raw.http.patch(
            f"/api/v1/namespaces/{NS}/pods/{name}/status",
            content=json.dumps({"status": status}),
            headers=headers,
        )
        return int(r.status_code != 200)

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "tick":
            status = {
                "phase": "Running",
                "conditions": [
                    {"type": "BenchTick", "status": "True", "message": cmd["tick"]}
                ],
            }
            t0 = time.monotonic()
            errors = sum(pool.map(lambda n: patch(n, status), cmd["names"]))  # noqa: B023
        elif cmd["op"] == "succeed":
            t0 = time.monotonic()
            errors = patch(cmd["name"], {"phase": "Succeeded"})
        else:
            break
        print(json.dumps({"t0": t0, "t1": time.monotonic(), "errors": errors}))
        sys.stdout.flush()


def memory_child(mode: str, run_id: str) -> None:
    """Resident memory of a fresh process whose tracker holds a run's pods (after one
    status round), or with tracemalloc what the tracker's view, the board's cache and
    the progress line's states hold."""
    import logging
    import tracemalloc

    logging.disable(logging.CRITICAL)
    access = load_access(kubeconfig=KUBECONFIG)
    if mode == "tracemalloc":
        tracemalloc.start()
    gc.collect()
    before = rss_kib()
    _, tracker, board = start_tracker(access, run_id)
    tracker.start()
    tracker.synced.wait(120)
    names = tracker.names()
    rounds = ExecutorRounds(tracker, board, names)
    rounds.round()
    gc.collect()
    result: dict[str, Any] = {"pods": len(names)}
    if mode == "tracemalloc":
        full = tracemalloc.get_traced_memory()[0]
        with tracker._lock:
            tracker._pods = {}
        board._cache.clear()
        if board.progress is not None:  # its per-pod states
            board.progress._states.clear()
        gc.collect()
        result["traced_bytes_per_1000"] = (
            (full - tracemalloc.get_traced_memory()[0]) * 1000 / max(1, len(names))
        )
    else:
        peak = next(
            int(line.split()[1])
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        )
        result["rss_delta_kib"] = rss_kib() - before
        result["peak_rss_kib"] = peak
    print(json.dumps(result))


class Patcher:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--patcher", str(KUBECONFIG)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        assert self.proc.stdout
        answer = json.loads(self.proc.stdout.readline())
        if answer["errors"]:
            raise RuntimeError(f"patcher: {answer['errors']} PATCH requests failed")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


# ----------------------------------------------------------------------- measurements


class Meter:
    """Deltas of the client's counters, the wall clock and this process's CPU."""

    def __init__(self, kube: KubeClient):
        self.kube = kube
        self.start()

    def start(self) -> None:
        self.r0 = self.kube.stats.requests
        self.b0 = self.kube.stats.bytes_received
        self.t0 = time.perf_counter()
        self.c0 = time.process_time()

    def read(self) -> dict[str, float]:
        return {
            "requests": self.kube.stats.requests - self.r0,
            "bytes": self.kube.stats.bytes_received - self.b0,
            "wall_s": time.perf_counter() - self.t0,
            "cpu_s": time.process_time() - self.c0,
        }


class ExecutorRounds:
    """What the executor's status loop does, through the package's own pieces:
    `StatusBoard.decide` is its `check_active_jobs` round (minus fetching logs and
    reporting, which happen once per finished job) and `PodTracker.wait_for_change`
    its `sleep()`. A finished job is recorded with the time it was noticed."""

    def __init__(self, tracker: PodTracker, board: StatusBoard, names: list[str]):
        self.tracker, self.board = tracker, board
        self.active = list(names)
        self.noticed: dict[str, float] = {}
        for name in names:  # as run_jobs does with every pod it creates
            board.track(name, None)

    def round(self) -> None:
        self.active, finished = self.board.decide(self.active, str)
        for name, _ in finished:
            self.noticed[name] = time.monotonic()
            self.board.forget(name)

    def sleep(self) -> None:
        self.tracker.wait_for_change(SETTINGS.status_interval)

    def close(self) -> None:
        pass


def board_round(board: StatusBoard, names: list[str]) -> None:
    """The brief's definition of a full round: board.status(name, now) per job."""
    now = datetime.now(UTC)
    for name in names:
        board.status(name, now)


def states(board: StatusBoard, names: list[str]) -> dict[str, int]:
    now = datetime.now(UTC)
    counts: dict[str, int] = {}
    for name in names:
        status = board.status(name, now)
        key = status.state.value if status else "unknown"
        counts[key] = counts.get(key, 0) + 1
    return counts


def summarize(rounds: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {"rounds": len(rounds)}
    for key in ("requests", "bytes", "wall_s", "cpu_s"):
        values = [r[key] for r in rounds]
        out[key] = median(values)
        out[f"{key}_mean"] = statistics.fmean(values)
        out[f"{key}_max"] = max(values)
    return out


def create_tracked(raw: Raw, n: int) -> tuple[str, list[str]]:
    run_id = str(uuid.uuid4())
    manifests = manifests_for(run_id, n)
    raw.create_all([json.dumps(m).encode() for m in manifests], concurrency=4)
    return run_id, [m["metadata"]["name"] for m in manifests]


LIVE_TRACKERS: list[PodTracker] = []  # stopped all at once when a case is retried


def new_tracker(kube: KubeClient, run_id: str) -> PodTracker:
    tracker = PodTracker(kube, NS, selector(run_id), SETTINGS.relist_interval)
    LIVE_TRACKERS.append(tracker)
    return tracker


def start_tracker(access: ClusterAccess, run_id: str):
    kube = KubeClient(access, max_connections=SETTINGS.max_concurrent_submissions + 2)
    tracker = new_tracker(kube, run_id)
    board = StatusBoard(
        tracker, kube, NS, SETTINGS, progress=Progress(logging.getLogger("bench.quiet"))
    )
    return kube, tracker, board


def tick_seen(tracker: PodTracker, names: list[str], tick: str) -> bool:
    for name in names:
        pod = tracker.get(name)
        conds = (pod or {}).get("status", {}).get("conditions") or []
        if not any(c.get("message") == tick for c in conds):
            return False
    return True


def wait_seen(tracker: PodTracker, names: list[str], tick: str) -> float:
    """Wait until the view holds every patched pod's new state; returns the CPU this
    thread spent checking (subtracted: the executor does not check)."""
    spent = 0.0
    deadline = time.monotonic() + 120
    while True:
        c = time.thread_time()
        done = tick_seen(tracker, names, tick)
        spent += time.thread_time() - c
        if done:
            return spent
        if time.monotonic() > deadline:
            raise RuntimeError("the tracker did not see the patches within 120 s")
        time.sleep(0.005)


def bench_status(
    access: ClusterAccess,
    raw: Raw,
    patcher: Patcher,
    n: int,
    rounds: int,
    baseline_rounds: int,
    emit: Callable[[dict[str, Any]], None],
) -> None:
    run_id, names = create_tracked(raw, n)
    trackers: list[tuple[PodTracker, KubeClient]] = []
    try:
        _status_cases(
            access, patcher, n, run_id, names, rounds, baseline_rounds, trackers, emit
        )
    finally:
        delete_and_reap(raw, run_id, trackers)


def _status_cases(
    access: ClusterAccess,
    patcher: Patcher,
    n: int,
    run_id: str,
    names: list[str],
    rounds: int,
    baseline_rounds: int,
    trackers: list[tuple[PodTracker, KubeClient]],
    emit: Callable[[dict[str, Any]], None],
) -> None:
    interval = SETTINGS.status_interval

    def record(case: str, results: list[dict[str, float]], **extra: Any) -> None:
        emit({"bench": "status", "n": n, "case": case, **summarize(results), **extra})

    # start-up: the paginated LIST, then one WATCH
    kube, tracker, board = start_tracker(access, run_id)
    trackers.append((tracker, kube))
    meter = Meter(kube)
    tracker.start()
    if not tracker.synced.wait(120):
        raise RuntimeError("tracker did not sync")
    while len(tracker.names()) < n:
        time.sleep(0.01)
    time.sleep(0.2)  # the WATCH request has been sent
    emit(
        {
            "bench": "status",
            "n": n,
            "case": "startup (LIST pages + WATCH)",
            **meter.read(),
            "by_verb": dict(kube.stats.by_verb),
        }
    )
    rounds_ = ExecutorRounds(tracker, board, names)
    rounds_.round()  # the first, full round

    # (a) nothing changes: the executor's cycle is sleep() (wait_for_change for up to
    # status_interval) + check_active_jobs; CPU counts the whole cycle, the watch
    # thread included; wall only the round
    def idle(case: str) -> None:
        results = []
        for _ in range(rounds):
            meter.start()
            rounds_.sleep()
            t0 = time.perf_counter()
            rounds_.round()
            r = meter.read()
            r["wall_s"] = time.perf_counter() - t0
            results.append(r)
        record(case, results, states=states(board, names))

    idle("a: no change, executor round (Pending)")

    # (a-full) the brief's definition: board.status(name, now) for every job
    results = []
    for _ in range(rounds):
        meter.start()
        board_round(board, names)
        results.append(meter.read())
    record("a-full: no change, board.status per job", results)

    # (b) 10 % of the pods change between rounds (a different tenth each time); one
    # round once the tracker has seen every change; CPU from the first PATCH on
    tenth = max(1, n // 10)
    subsets = [names[i * tenth : (i + 1) * tenth] for i in range(10)]
    results = []
    for k in range(rounds):
        subset, tick = subsets[k % 10], f"tick-{k}"
        tracker.wait_for_change(0)
        meter.start()
        patcher.send({"op": "tick", "names": subset, "tick": tick})
        patcher.reply()
        poll_cpu = wait_seen(tracker, subset, tick)
        t0 = time.perf_counter()
        rounds_.round()
        r = meter.read()
        r["wall_s"] = time.perf_counter() - t0
        r["cpu_s"] -= poll_cpu
        results.append(r)
    record("b: 10% change, one executor round", results)

    # (b') the same changes with the executor's own loop (round, then sleep(), which
    # wakes on a change and lets a burst settle) running meanwhile: the CPU and the
    # rounds one batch of changes costs
    batches = max(3, rounds // 2)
    loop_rounds = [0]
    stop = threading.Event()
    sleeping = threading.Event()
    quiet = 0.1  # longer than the settle pause of sleep()

    def executor_loop() -> None:
        loop = ExecutorRounds(tracker, board, names)
        try:
            while not stop.is_set():
                loop.round()
                loop_rounds[0] += 1
                sleeping.set()
                loop.sleep()
                sleeping.clear()
        finally:
            loop.close()

    def until_quiet() -> float:
        """Wait until the loop has slept for `quiet` s on end: it has taken in every
        change; returns this thread's CPU spent waiting."""
        c = time.thread_time()
        since = None
        while True:
            now = time.monotonic()
            if not sleeping.is_set():
                since = None
            elif since is None:
                since = now
            elif now - since > quiet:
                return time.thread_time() - c
            time.sleep(0.002)

    results = []
    thread = threading.Thread(target=executor_loop)
    thread.start()
    try:
        for k in range(rounds, rounds + batches):
            subset, tick = subsets[k % 10], f"tick-{k}"
            time.sleep(interval * 1.5)  # the loop is asleep in wait_for_change
            meter.start()
            before = loop_rounds[0]
            patcher.send({"op": "tick", "names": subset, "tick": tick})
            patcher.reply()
            poll_cpu = wait_seen(tracker, subset, tick) + until_quiet()
            r = meter.read()
            r["wall_s"] -= quiet
            r["cpu_s"] -= poll_cpu
            r["rounds_per_batch"] = loop_rounds[0] - before
            results.append(r)
    finally:
        stop.set()
        tracker.changed.set()
        thread.join()
    record(
        "b': 10% change, executor loop (per batch)",
        results,
        rounds_per_batch=median(r["rounds_per_batch"] for r in results),
    )

    # (a') nothing changes, every pod Running (after ten 10 % batches)
    for k in range(rounds + batches, 10):
        subset, tick = subsets[k % 10], f"tick-{k}"
        patcher.send({"op": "tick", "names": subset, "tick": tick})
        patcher.reply()
        wait_seen(tracker, subset, tick)
    idle("a': no change, executor round (Running)")
    rounds_.close()
    tracker.stop()

    # baseline: one GET per job per round (same KubeClient class), classified
    kube = KubeClient(access, max_connections=6)
    meter = Meter(kube)
    results = []
    for _ in range(baseline_rounds):
        meter.start()
        now = datetime.now(UTC)
        for name in names:
            pod = kube.get_pod(NS, name)
            if pod is not None:
                classify_pod(pod, now, SETTINGS.unschedulable_timeout)
        results.append(meter.read())
    kube.close()
    record("baseline: 1 GET per job per round", results)

    # memory, each figure in a fresh process (a used heap would hide growth); the
    # same process tracking an empty run gives the fixed cost (client, threads, TLS)
    def child(mode: str, run: str) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", mode, run],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out)

    fixed = child("rss", str(uuid.uuid4()))["rss_delta_kib"]
    for mode in ("rss", "tracemalloc"):
        r = child(mode, run_id)
        if "rss_delta_kib" in r:
            r["fixed_kib"] = fixed
            r["rss_kib_per_1000"] = (r["rss_delta_kib"] - fixed) * 1000 / n
        emit({"bench": "memory", "n": n, "case": mode, **r})


def bench_notice(
    access: ClusterAccess,
    raw: Raw,
    patcher: Patcher,
    n: int,
    samples: int,
    emit: Callable[[dict[str, Any]], None],
) -> None:
    """Time from the PATCH to phase Succeeded until the executor's round notices it,
    with the executor's loop: check_active_jobs, then sleep()."""
    run_id, names = create_tracked(raw, n)
    kube, tracker, board = start_tracker(access, run_id)
    try:
        tracker.start()
        tracker.synced.wait(120)
        emit(_notice(tracker, board, patcher, n, names, samples))
    finally:
        delete_and_reap(raw, run_id, [(tracker, kube)])


def _notice(
    tracker: PodTracker,
    board: StatusBoard,
    patcher: Patcher,
    n: int,
    names: list[str],
    samples: int,
) -> dict[str, Any]:
    stop = threading.Event()
    round_walls: list[float] = []
    holder: list[ExecutorRounds] = []

    def executor_loop() -> None:
        loop = ExecutorRounds(tracker, board, names)
        holder.append(loop)
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                loop.round()
                round_walls.append(time.perf_counter() - t0)
                loop.sleep()
        finally:
            loop.close()

    thread = threading.Thread(target=executor_loop)
    thread.start()
    while not holder:
        time.sleep(0.01)
    noticed = holder[0].noticed
    latencies = []
    rng = random.Random(1)
    try:
        for name in rng.sample(names, samples):
            time.sleep(rng.uniform(0.2, 1.2))  # lands anywhere in the loop's cycle
            patcher.send({"op": "succeed", "name": name})
            t0 = patcher.reply()["t0"]
            deadline = time.monotonic() + 30
            while name not in noticed and time.monotonic() < deadline:
                time.sleep(0.001)
            latencies.append(noticed.get(name, float("inf")) - t0)
    finally:
        stop.set()
        tracker.changed.set()
        thread.join()
    latencies.sort()
    return {
        "bench": "notice",
        "n": n,
        "samples": len(latencies),
        "median_s": median(latencies),
        "p90_s": latencies[int(0.9 * (len(latencies) - 1))],
        "max_s": latencies[-1],
        "min_s": latencies[0],
        "round_wall_s": median(round_walls),
        "settle_s": SETTLE_SECONDS,
    }


def bench_submit(
    access: ClusterAccess,
    raw: Raw,
    n: int,
    reps: int,
    emit: Callable[[dict[str, Any]], None],
) -> None:
    """Pods/s for n jobs, and this process's CPU per pod: the executor's path against
    sequential and raw creates."""

    def ours(workers: int) -> tuple[float, float]:
        run_id = str(uuid.uuid4())
        run = run_context(run_id)
        kube = KubeClient(access, max_connections=workers + 2)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="interlink")
        tracker = new_tracker(kube, run_id)
        tracker.start()  # as in __post_init__: the watch runs during submission
        tracker.synced.wait(30)
        specs = [job_spec(i) for i in range(1, n + 1)]  # Snakemake's part
        cpu, t0 = time.process_time(), time.perf_counter()
        manifests = []
        for spec in specs:
            manifest, _ = pod_for_job(spec, SETTINGS, run)
            manifest["spec"]["schedulerName"] = "no-scheduler"  # bench isolation
            manifests.append(manifest)
        failed = sum(  # (before 2026-12-02 a create gave the pod, not None)
            isinstance(result, Exception)
            for _, result in kube.create_pods(NS, manifests, pool)
        )
        elapsed = time.perf_counter() - t0
        if failed:
            raise RuntimeError(f"{failed} creates failed")
        while len(tracker.names()) < n:  # the CPU counts the watch's share too
            time.sleep(0.01)
        cpu = time.process_time() - cpu
        pool.shutdown()
        delete_and_reap(raw, run_id, [(tracker, kube)])
        return elapsed, cpu

    def sequential() -> tuple[float, float]:
        run_id = str(uuid.uuid4())
        run = run_context(run_id)
        kube = KubeClient(access, max_connections=6)
        specs = [job_spec(i) for i in range(1, n + 1)]
        cpu, t0 = time.process_time(), time.perf_counter()
        for spec in specs:
            manifest, _ = pod_for_job(spec, SETTINGS, run)
            manifest["spec"]["schedulerName"] = "no-scheduler"
            kube.create_pod(NS, manifest)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu
        kube.close()
        raw.delete_run(run_id)
        return elapsed, cpu

    def raw_at(concurrency: int) -> Callable[[], tuple[float, float]]:
        def case() -> tuple[float, float]:
            run_id = str(uuid.uuid4())
            bodies = [json.dumps(m).encode() for m in manifests_for(run_id, n)]
            client = Raw(access, connections=concurrency)
            cpu = time.process_time()
            elapsed = client.create_all(bodies, concurrency)
            cpu = time.process_time() - cpu
            client.close()
            raw.delete_run(run_id)
            return elapsed, cpu

        return case

    default = SETTINGS.max_concurrent_submissions
    cases: dict[str, Callable[[], tuple[float, float]]] = {
        f"ours: pod_for_job + create_pods ({default} workers)": lambda: ours(default),
        "ours with 4 workers (the old default)": lambda: ours(4),
        "sequential: pod_for_job + create_pod": sequential,
        **{f"raw: pre-built JSON, {c} in flight": raw_at(c) for c in (1, 2, 4, 8, 16)},
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(reps):  # interleaved, so that drift hits every case alike
        for name, case in cases.items():
            times[name].append(case())
    for name, values in times.items():
        emit(
            {
                "bench": "submit",
                "n": n,
                "case": name,
                "reps": reps,
                "pods_per_s": n / median(t for t, _ in values),
                "best_pods_per_s": n / min(t for t, _ in values),
                "cpu_ms_per_pod": 1e3 * median(c for _, c in values) / n,
            }
        )


def bench_k8s_plugin(
    raw: Raw,
    sizes: list[int],
    rounds: int,
    emit: Callable[[dict[str, Any]], None],
) -> None:
    """snakemake-executor-plugin-kubernetes 0.5.1's own check_active_jobs, run in its
    own venv against N Jobs (parallelism 0) each with one pod labelled job-name."""
    python = REPO / "benchmarks" / ".venv-k8s" / "bin" / "python"
    if not python.exists():
        print(
            "bench: no benchmarks/.venv-k8s; skipping the kubernetes plugin",
            file=sys.stderr,
        )
        return
    for n in sizes:
        run_id = str(uuid.uuid4())
        pods = manifests_for(run_id, n)
        jobs = []
        for pod in pods:
            name = pod["metadata"]["name"]
            pod["metadata"]["labels"]["job-name"] = name
            pod["spec"]["containers"][0]["name"] = "snakemake"
            template = {"spec": {**pod["spec"], "restartPolicy": "Never"}}
            jobs.append(
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": name, "labels": {RUN_LABEL: run_id}},
                    "spec": {"parallelism": 0, "backoffLimit": 0, "template": template},
                }
            )
        raw.create_all([json.dumps(p).encode() for p in pods], concurrency=4)
        raw.create_all([json.dumps(j).encode() for j in jobs], concurrency=4, path=JOBS)
        try:
            out = subprocess.run(
                [
                    str(python),
                    str(REPO / "benchmarks" / "k8s_plugin.py"),
                    str(KUBECONFIG),
                    NS,
                    selector(run_id),
                    str(rounds),
                    str(min(n, 100)),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        finally:
            raw.delete_jobs(run_id)
            raw.delete_run(run_id)
        for line in out.splitlines():
            emit(json.loads(line))


# ----------------------------------------------------------------------------- report


def machine(raw: Raw) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem = next(
        line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "bench": "machine",
        "nproc": os.cpu_count(),
        "mem_gib": round(int(mem) / 2**20, 1),
        "cpu": cpu,
        "apiserver_gitVersion": server_version(raw),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "python": sys.version.split()[0],
        "httpx": httpx.__version__,
    }


def fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def report(records: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    add = lines.append
    m = next(r for r in records if r["bench"] == "machine")
    add(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']} GiB, kube-apiserver "
        f"{m['apiserver_gitVersion']}, Python {m['python']}, httpx {m['httpx']}"
    )
    end = next((r for r in records if r["bench"] == "end"), {})
    add(
        f"load average (1, 5, 15 min) at start {' '.join(m['loadavg_at_start'])}, "
        f"at end {' '.join(end.get('loadavg_at_end', ['?']))}"
    )
    add("")
    add(
        "1. Status tracking, per round (median; CPU = this process, watch thread "
        "included)"
    )
    add(
        f"| {'N':>5} | {'case':<44} | {'requests':>8} | {'bytes':>9} | "
        f"{'wall ms':>8} | {'CPU ms':>7} | {'CPU ms mean/max':>15} |"
    )
    add(f"|{'-' * 7}|{'-' * 46}|{'-' * 10}|{'-' * 11}|{'-' * 10}|{'-' * 9}|{'-' * 17}|")
    status = [r for r in records if r["bench"] == "status"]
    for r in status:
        if r["case"].startswith("startup"):
            continue
        case = r["case"]
        if "rounds_per_batch" in r:
            case = f"b': executor loop, {r['rounds_per_batch']:.0f} rounds per batch"
        add(
            f"| {r['n']:>5} | {case[:44]:<44} | {r['requests']:>8.0f} | "
            f"{fmt_bytes(r['bytes']):>9} | {r['wall_s'] * 1e3:>8.2f} | "
            f"{r['cpu_s'] * 1e3:>7.2f} | "
            f"{r['cpu_s_mean'] * 1e3:>6.1f}/{r['cpu_s_max'] * 1e3:<8.1f} |"
        )
        plugin = next(
            (x for x in records if x["bench"] == "k8s-plugin" and x["n"] == r["n"]),
            None,
        )
        if r["case"].startswith("baseline") and plugin:
            add(
                f"| {r['n']:>5} | {'k8s plugin 0.5.1, measured (no throttle)':<44} | "
                f"{plugin['requests']:>8.0f} | {fmt_bytes(plugin['bytes']):>9} | "
                f"{plugin['wall_s'] * 1e3:>8.0f} | {plugin['cpu_s'] * 1e3:>7.0f} | "
                f"{'':>15} |"
            )
        if r["case"].startswith("baseline"):
            add(
                f"| {r['n']:>5} | {'derived: 2 requests per job (2x the above)':<44} | "
                f"{2 * r['requests']:>8.0f} | {fmt_bytes(2 * r['bytes']):>9} | "
                f"{2 * r['wall_s'] * 1e3:>8.0f} | {2 * r['cpu_s'] * 1e3:>7.0f} | "
                f"{'':>15} |"
            )
    for x in records:
        if x["bench"] == "k8s-plugin-throttled":
            add(
                f"kubernetes plugin with Snakemake's default throttle (10 checks/s): a "
                f"round over {x['jobs']} of N={x['n']} jobs took {x['wall_s']:.1f} s "
                f"({x['wall_s_per_job'] * 1e3:.0f} ms per job)"
            )
    add("")
    add(
        "start-up and amortized cost (relist every "
        f"{SETTINGS.relist_interval} s, a round every {SETTINGS.status_interval:g} s)"
    )
    ratios: dict[int, dict[str, float]] = {}
    for r in status:
        if not r["case"].startswith("startup"):
            continue
        n = r["n"]
        per_cycle = SETTINGS.relist_interval / SETTINGS.status_interval
        amort_req = (r["requests"] + 1) / per_cycle  # + the watch re-opened at 290 s
        amort_cpu = r["cpu_s"] / per_cycle
        base = next(x for x in status if x["n"] == n and x["case"].startswith("base"))
        idle = next(x for x in status if x["n"] == n and x["case"].startswith("a:"))
        idle2 = next(x for x in status if x["n"] == n and x["case"].startswith("a'"))
        change = next(x for x in status if x["n"] == n and x["case"].startswith("b:"))
        loop = next(x for x in status if x["n"] == n and x["case"].startswith("b':"))
        full = next(x for x in status if x["n"] == n and x["case"].startswith("a-f"))
        ratios[n] = {
            "req": base["requests"] / amort_req,
            "cpu_idle": base["cpu_s"] / max(idle["cpu_s"] + amort_cpu, 1e-9),
            "cpu_idle_mean": base["cpu_s"] / max(idle["cpu_s_mean"] + amort_cpu, 1e-9),
            "cpu_change": base["cpu_s"] / max(change["cpu_s"] + amort_cpu, 1e-9),
            "cpu_loop": base["cpu_s"] / max(loop["cpu_s"] + amort_cpu, 1e-9),
            "cpu_full": base["cpu_s"] / max(full["cpu_s"] + amort_cpu, 1e-9),
            "full_cpu": full["cpu_s"],
            "idle_cpu_max": idle["cpu_s_max"],
            "idle_cpu": idle["cpu_s"],
            "idle_cpu_mean": idle["cpu_s_mean"],
            "idle2_cpu": idle2["cpu_s"],
            "idle_requests": max(idle["requests_max"], idle2["requests_max"]),
            "amort_req": amort_req,
        }
        add(
            f"  N={n}: start-up {r['requests']:.0f} requests "
            f"({r['by_verb']}), {fmt_bytes(r['bytes'])}, {r['wall_s'] * 1e3:.0f} ms "
            f"wall, {r['cpu_s'] * 1e3:.0f} ms CPU; amortized {amort_req:.3f} requests "
            f"and {amort_cpu * 1e3:.2f} ms CPU per round"
        )
    add("")
    add("ratios, baseline (1 GET per job) / ours:")
    for n, q in ratios.items():
        add(
            f"  N={n}: requests {q['req']:,.0f}x fewer (amortized; 0 per round); CPU "
            f"{q['cpu_idle']:,.0f}x less idle (median; {q['cpu_idle_mean']:,.0f}x "
            f"by mean; {q['cpu_full']:,.0f}x for a full board.status round), "
            f"{q['cpu_change']:,.0f}x less with 10% changing (one round), "
            f"{q['cpu_loop']:,.0f}x less with 10% changing (executor loop, per batch)"
        )
    add("")
    memory = [r for r in records if r["bench"] == "memory"]
    if memory:
        add(
            "4. memory per 1000 tracked jobs (fresh process, after one round, minus "
            "the same process tracking no pod)"
        )
    for n in sorted({r["n"] for r in memory}):
        by = {r["case"]: r for r in memory if r["n"] == n}
        parts = []
        for r in by.values():
            if "traced_bytes_per_1000" in r:
                parts.append(
                    f"tracemalloc {r['traced_bytes_per_1000'] / 2**20:.1f} MiB"
                )
            else:
                parts.append(
                    f"RSS {r['rss_kib_per_1000'] / 1024:.1f} MiB (process peak "
                    f"{r['peak_rss_kib'] / 1024:.0f} MiB)"
                )
        add(f"  N={n}: " + "; ".join(parts))
    notice = next((r for r in records if r["bench"] == "notice"), None)
    if notice:
        add(
            f"2. notice latency N={notice['n']}, {notice['samples']} samples: median "
            f"{notice['median_s'] * 1e3:.1f} ms, p90 {notice['p90_s'] * 1e3:.1f} ms, "
            f"max {notice['max_s'] * 1e3:.1f} ms (round wall "
            f"{notice['round_wall_s'] * 1e3:.2f} ms; sleep() settles "
            f"{notice['settle_s'] * 1e3:.0f} ms after a wake-up)"
        )
    submit = [r for r in records if r["bench"] == "submit"]
    raw_best = max(
        (r["pods_per_s"] for r in submit if r["case"].startswith("raw")),
        default=float("nan"),
    )
    ours_rate = next(
        (r["pods_per_s"] for r in submit if r["case"].startswith("ours:")),
        float("nan"),
    )
    if submit:
        add(f"3. submission of {submit[0]['n']} jobs (median of {submit[0]['reps']})")
        for r in submit:
            cpu = r.get("cpu_ms_per_pod")
            add(
                f"  {r['case']:<46} {r['pods_per_s']:>6.0f} pods/s "
                f"(best {r['best_pods_per_s']:.0f})"
                + (f", client CPU {cpu:.2f} ms per pod" if cpu is not None else "")
            )
        add(f"  ours / raw best = {ours_rate / raw_best:.2f}")
    add("")
    add("targets:")
    big = max(ratios) if ratios else None

    def verdict(ok: bool) -> str:
        return "MET " if ok else "MISSED"

    if ratios:
        zero = all(q["idle_requests"] == 0 for q in ratios.values())
        add(f"  [{verdict(zero)}] a status round with no change sends 0 requests")
        q = ratios[big]
        add(
            f"  [{verdict(q['req'] >= 100)}] N={big}: >= 100x fewer requests than the "
            f"per-job baseline ({q['req']:,.0f}x, amortized)"
        )
        add(
            f"  [{verdict(q['idle_cpu'] < 0.010)}] N={big}: < 10 ms CPU per round "
            f"(executor round, median {q['idle_cpu'] * 1e3:.2f} ms Pending, "
            f"{q['idle2_cpu'] * 1e3:.2f} ms Running; Pending mean "
            f"{q['idle_cpu_mean'] * 1e3:.2f} ms, max {q['idle_cpu_max'] * 1e3:.1f} ms; "
            f"a full board.status round {q['full_cpu'] * 1e3:.2f} ms)"
        )
    if notice:
        add(
            f"  [{verdict(notice['median_s'] < 0.5)}] median notice < 0.5 s "
            f"({notice['median_s'] * 1e3:.1f} ms)"
        )
    if submit:
        add(
            f"  [{verdict(ours_rate >= 0.8 * raw_best)}] submission >= 80% of raw best "
            f"({100 * ours_rate / raw_best:.0f}%)"
        )
    return lines


class Session:
    """Access, the setup client and the patcher; all renewed when the API server
    restarts under a case (the testbed is shared), and the case is run again."""

    def __init__(self) -> None:
        self.connect()

    def connect(self) -> None:
        self.access = load_access(kubeconfig=KUBECONFIG)  # tokens may be new
        ensure_server(self.access)
        self.raw = Raw(self.access, connections=4)
        ensure_namespace(self.raw)
        self.raw.delete_jobs(None)  # leftovers of an interrupted case
        if self.raw.count():
            self.raw.delete_run(None)
        self.patcher = Patcher()

    def close(self) -> None:
        for tracker in LIVE_TRACKERS:
            tracker.stop()
        LIVE_TRACKERS.clear()
        self.patcher.close()
        with contextlib.suppress(Exception):
            if self.raw.count():
                self.raw.delete_run(None)
        self.raw.close()

    def run(
        self,
        name: str,
        section: Callable[[Callable[[dict[str, Any]], None]], None],
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        for attempt in range(1, 4):
            buffered: list[dict[str, Any]] = []
            try:
                section(buffered.append)
            except Exception as e:
                print(f"bench: {name} failed: {e!r}", file=sys.stderr)
                if attempt == 3:
                    break
                print(
                    "bench: waiting for the API server, then running it again",
                    file=sys.stderr,
                )
                self.close()
                time.sleep(5)
                self.connect()
                continue
            for record in buffered:
                emit(record)
            return
        raise SystemExit(f"bench: {name} failed three times")


# ------------------------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--patcher":
        patcher_main(Path(sys.argv[2]))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--memory-child":
        memory_child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--json", type=Path, help="also write the JSON lines here")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--baseline-rounds", type=int, default=3)
    parser.add_argument("--notice-samples", type=int, default=25)
    parser.add_argument("--submit-jobs", type=int, default=1000)
    parser.add_argument("--submit-reps", type=int, default=5)
    parser.add_argument("--only", default="status,notice,submit,k8s")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    only = set(args.only.split(","))

    import logging

    logging.basicConfig(level=logging.WARNING)
    session = Session()
    records: list[dict[str, Any]] = []
    out = args.json.open("w") if args.json else None

    def emit(record: dict[str, Any]) -> None:
        records.append(record)
        line = json.dumps(record)
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()

    emit(machine(session.raw))
    s = session
    sections: list[tuple[str, Callable[[Callable[[dict[str, Any]], None]], None]]] = []
    if "status" in only:
        for n in sizes:
            sections.append(
                (
                    f"status N={n}",
                    lambda e, n=n: bench_status(
                        s.access,
                        s.raw,
                        s.patcher,
                        n,
                        args.rounds,
                        args.baseline_rounds,
                        e,
                    ),
                )
            )
    if "notice" in only:
        sections.append(
            (
                "notice",
                lambda e: bench_notice(
                    s.access, s.raw, s.patcher, 1000, args.notice_samples, e
                ),
            )
        )
    if "submit" in only:
        sections.append(
            (
                "submit",
                lambda e: bench_submit(
                    s.access, s.raw, args.submit_jobs, args.submit_reps, e
                ),
            )
        )
    if "k8s" in only:
        k8s_sizes = [n for n in sizes if n <= 1000]
        sections.append(
            (
                "kubernetes plugin",
                lambda e: bench_k8s_plugin(
                    s.raw, k8s_sizes, min(args.baseline_rounds, 3), e
                ),
            )
        )
    try:
        for name, section in sections:
            session.run(name, section, emit)
    finally:
        session.close()
    emit(
        {
            "bench": "end",
            "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
        }
    )
    print()
    print("\n".join(report(records)))


if __name__ == "__main__":
    main()
