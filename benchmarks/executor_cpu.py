"""The executor's own CPU, read from thread CPU clocks instead of a profiler.

    python benchmarks/executor_cpu.py OUT.json [snakemake arguments]

runs Snakemake in this process with the executor's entry points wrapped: every call
into this package from Snakemake (submission, the status round, the sleep between
rounds) and every function the package runs on a thread of its own (the watch, the log
probe, creates in the pool, the log fetch and delete of a finished job) charges the
CPU its thread spent inside it (CLOCK_THREAD_CPUTIME_ID) to the executor. Snakemake's
own work that the executor calls back into (reporting a job's submission, success or
error, which runs Snakemake's job post-processing) is charged to Snakemake, and
formatting the job's command line (Snakemake's `format_job_exec`, which every remote
executor must call) is counted apart. Calls nest: the innermost wrapped call is the
one charged. At exit OUT.json holds the seconds per entry point.

py-spy on this machine's kernel (gVisor) samples waiting threads as running, so its
shares are of thread time, not CPU; the thread CPU clock is exact and costs about
0.4 µs a reading, and only the entry points are wrapped (about ten calls per job).
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

# (module, class, method) -> what it is charged to
ENTRY_POINTS: dict[tuple[str, str, str], str] = {
    ("executor", "Executor", "__post_init__"): "executor",
    ("executor", "Executor", "run_jobs"): "executor",
    ("executor", "Executor", "check_active_jobs"): "executor",
    ("executor", "Executor", "sleep"): "executor",
    ("executor", "Executor", "_collect"): "executor",
    ("executor", "Executor", "_cancel_after_grace"): "executor",
    ("executor", "Executor", "cancel_jobs"): "executor",
    ("executor", "Executor", "shutdown"): "executor",
    ("board", "StatusBoard", "decide"): "executor",
    ("board", "StatusBoard", "wait_for_change"): "executor",
    ("tracker", "PodTracker", "_run"): "executor",
    ("completion", "LogProbe", "_run"): "executor",
    ("kube", "KubeClient", "_create_or_undo"): "executor",
    ("kube", "KubeClient", "can_i"): "executor",
    # Snakemake's code, called by the executor
    ("executor", "Executor", "report_job_submission"): "snakemake",
    ("executor", "Executor", "report_job_success"): "snakemake",
    ("executor", "Executor", "report_job_error"): "snakemake",
    ("executor", "Executor", "run_job_pre"): "snakemake",
    ("executor", "Executor", "format_job_exec"): "job command formatting",
}

_threads: list[dict[str, float]] = []  # one dict per thread: seconds per entry point
_local = threading.local()


def _stack() -> list[list[Any]]:
    """This thread's open calls, innermost last: [label, CPU clock at (re)start]."""
    if not hasattr(_local, "stack"):
        _local.stack = []
        _local.spent = defaultdict(float)
        _threads.append(_local.spent)
    return _local.stack


def _enter(label: str) -> None:
    stack = _stack()
    now = time.thread_time()
    if stack:  # the caller's slice ends here
        _local.spent[stack[-1][0]] += now - stack[-1][1]
    stack.append([label, now])


def _leave() -> None:
    stack = _local.stack
    now = time.thread_time()
    label, start = stack.pop()
    _local.spent[label] += now - start
    if stack:  # the caller's slice starts again
        stack[-1][1] = now


def _charged(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def each_step(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            steps = fn(*args, **kwargs)
            while True:
                _enter(label)
                try:
                    item = await steps.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    _leave()
                yield item

        return each_step
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awaited(*args: Any, **kwargs: Any) -> Any:
            _enter(label)
            try:
                return await fn(*args, **kwargs)
            finally:
                _leave()

        return awaited

    @functools.wraps(fn)
    def called(*args: Any, **kwargs: Any) -> Any:
        _enter(label)
        try:
            return fn(*args, **kwargs)
        finally:
            _leave()

    return called


def install(out: Path) -> None:
    """Wrap the entry points (before any executor exists) and write OUT at exit."""
    import importlib

    for (module, cls, name), charged_to in ENTRY_POINTS.items():
        owner = getattr(
            importlib.import_module(f"snakemake_executor_plugin_interlink.{module}"),
            cls,
        )
        label = f"{charged_to}: {cls}.{name}"
        setattr(owner, name, _charged(label, getattr(owner, name)))
    atexit.register(write, out)


def totals() -> dict[str, Any]:
    by_entry: dict[str, float] = defaultdict(float)
    for spent in list(_threads):
        for label, seconds in list(spent.items()):
            by_entry[label] += seconds
    by_charge: dict[str, float] = defaultdict(float)
    for label, seconds in by_entry.items():
        by_charge[label.split(":")[0]] += seconds
    return {
        "seconds": {k: round(v, 3) for k, v in sorted(by_charge.items())},
        "by_entry_point": {
            k: round(v, 3) for k, v in sorted(by_entry.items(), key=lambda kv: -kv[1])
        },
    }


def write(out: Path) -> None:
    out.write_text(json.dumps(totals(), indent=1))


def main() -> None:
    out = Path(sys.argv[1])
    install(out)
    from snakemake.cli import main as snakemake_main

    sys.argv = ["snakemake", *sys.argv[2:]]
    snakemake_main()


if __name__ == "__main__":
    main()
