"""Status rounds of snakemake-executor-plugin-kubernetes, for comparison.

Runs in its own venv (python3 -m venv benchmarks/.venv-k8s, then
benchmarks/.venv-k8s/bin/pip install snakemake-executor-plugin-kubernetes==0.5.1);
bench.py skips it when that venv is missing. bench.py creates the Jobs (parallelism 0,
so the Job controller adds no pod) and one pod per Job labelled job-name=<job>, exactly
what that plugin reads, then starts this script with:

    python k8s_plugin.py KUBECONFIG NAMESPACE SELECTOR ROUNDS THROTTLED_JOBS

The plugin's own `check_active_jobs` runs unchanged; only the executor object is put
together by hand (the attributes that method reads), because a whole Snakemake workflow
is not needed to call it. One JSON line per figure on stdout.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time

import kubernetes
from snakemake_executor_plugin_kubernetes import Executor
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from throttler import Throttler


class Quiet:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def counting() -> dict[str, int]:
    """Count the plugin's requests and response bytes at the REST layer."""
    counts = {"requests": 0, "bytes": 0}
    original = kubernetes.client.rest.RESTClientObject.request

    def request(self, *args, **kwargs):
        response = original(self, *args, **kwargs)
        counts["requests"] += 1
        counts["bytes"] += len(response.data or b"")
        return response

    kubernetes.client.rest.RESTClientObject.request = request
    return counts


def executor(namespace: str, limiter) -> Executor:
    ex = Executor.__new__(Executor)
    ex.kubeapi = kubernetes.client.CoreV1Api()
    ex.batchapi = kubernetes.client.BatchV1Api()
    ex.namespace = namespace
    ex.lock = threading.Lock()
    ex.logger = Quiet()
    ex.status_rate_limiter = limiter
    return ex


async def one_round(ex: Executor, infos: list[SubmittedJobInfo]) -> int:
    return len([j async for j in ex.check_active_jobs(infos)])


def main() -> None:
    kubeconfig, namespace, selector, rounds, throttled = sys.argv[1:6]
    kubernetes.config.load_kube_config(config_file=kubeconfig)
    jobs = kubernetes.client.BatchV1Api().list_namespaced_job(
        namespace, label_selector=selector
    )
    names = [j.metadata.name for j in jobs.items]
    infos = [SubmittedJobInfo(job=None, external_jobid=name) for name in names]
    counts = counting()

    results = []
    ex = executor(namespace, _NoLimit())  # CPU and requests without the throttle
    for _ in range(int(rounds)):
        r0, b0 = counts["requests"], counts["bytes"]
        t0, c0 = time.perf_counter(), time.process_time()
        active = asyncio.run(one_round(ex, infos))
        results.append(
            {
                "requests": counts["requests"] - r0,
                "bytes": counts["bytes"] - b0,
                "wall_s": time.perf_counter() - t0,
                "cpu_s": time.process_time() - c0,
            }
        )
        assert active == len(infos), "a job left the active list"
    record = {"bench": "k8s-plugin", "n": len(infos), "rounds": len(results)}
    for key in ("requests", "bytes", "wall_s", "cpu_s"):
        record[key] = statistics.median(r[key] for r in results)
    print(json.dumps(record), flush=True)

    # the same round under Snakemake's default throttle (10 status checks per second)
    k = min(int(throttled), len(infos))
    if k:

        async def throttled_round() -> None:
            ex = executor(namespace, Throttler(rate_limit=10, period=1))
            await one_round(ex, infos[:k])

        t0 = time.perf_counter()
        asyncio.run(throttled_round())
        wall = time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "bench": "k8s-plugin-throttled",
                    "n": len(infos),
                    "jobs": k,
                    "wall_s": wall,
                    "wall_s_per_job": wall / k,
                }
            ),
            flush=True,
        )


class _NoLimit:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
