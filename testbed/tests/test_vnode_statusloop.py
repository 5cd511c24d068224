"""When pod statuses change: interLink's timing (VK statusLoop, plugin cache, API relay) and
the fast mode, driven with a fake clock and a seeded random source (no threads, no sleeps)."""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest
from agentfakes import Clock, agent_with_pods, drive, first_time

from vnode.batch import JobInfo, LocalBackend
from vnode.statusloop import (
    ApiStatusCache,
    FastRounds,
    PluginError,
    PluginStatusCache,
    StatusLoop,
    check_pod_status,
)

# ---------------------------------------------------------------------- the plugin's cache


def test_cache_answers_another_pod_with_the_previous_answer_within_ten_seconds() -> None:
    clock = Clock(100.0)
    plugin: PluginStatusCache[str] = PluginStatusCache(10.0, clock)
    answer, fresh = plugin.ask(lambda: {"A": "A running"})
    assert (answer, fresh) == ({"A": "A running"}, True)
    clock.now = 109.9
    built: list[str] = []
    answer, fresh = plugin.ask(lambda: built.append("B") or {"B": "B done"})
    assert (answer, fresh) == ({"A": "A running"}, False)  # about A, though B was asked
    assert built == []  # no squeue
    clock.now = 110.0
    answer, fresh = plugin.ask(lambda: {"B": "B done"})
    assert (answer, fresh) == ({"B": "B done"}, True)


def test_batch_query_runs_at_most_once_per_cache_period() -> None:
    clock = Clock()
    plugin: PluginStatusCache[str] = PluginStatusCache(10.0, clock)
    queries: list[float] = []

    def build() -> dict[str, str]:
        queries.append(clock.now)
        clock.now += 0.3  # squeue takes a while: the timer starts when the answer is stored
        return {"p": "x"}

    while clock.now < 100:
        plugin.ask(build)
        clock.now += 0.1
    gaps = [b - a for a, b in pairwise(queries)]
    assert len(queries) == plugin.fresh == 10
    assert min(gaps) >= 10.3 - 1e-9


def test_a_failed_answer_is_not_cached_and_the_next_request_runs_squeue_again() -> None:
    clock = Clock()
    plugin: PluginStatusCache[str] = PluginStatusCache(10.0, clock)
    plugin.ask(lambda: {"A": "a"})
    clock.now = 12.0

    def failing() -> dict[str, str]:
        raise PluginError("unable to retrieve container status")

    with pytest.raises(PluginError):
        plugin.ask(failing)
    clock.now = 12.5
    assert plugin.ask(lambda: {"B": "b"}) == ({"B": "b"}, True)


def test_no_cache_answers_every_request_fresh() -> None:  # the HTCondor plugin
    plugin: PluginStatusCache[str] = PluginStatusCache(0.0, Clock())
    assert [plugin.ask(lambda u=u: {u: u})[0] for u in "ABC"] == [{"A": "A"}, {"B": "B"}, {"C": "C"}]


def test_api_relays_only_the_asked_pods_last_status() -> None:
    clock = Clock()
    plugin: PluginStatusCache[str] = PluginStatusCache(10.0, clock)
    api: ApiStatusCache[str] = ApiStatusCache()
    assert check_pod_status("B", plugin, api, lambda: {"B": "B pending"}) == "B pending"
    clock.now = 10.0
    assert check_pod_status("A", plugin, api, lambda: {"A": "A running"}) == "A running"
    clock.now = 11.0
    # the plugin answers about A (cached); the API stores it and relays what it has for B
    assert check_pod_status("B", plugin, api, lambda: {"B": "B done"}) == "B pending"
    assert check_pod_status("C", plugin, api, lambda: {"C": "C done"}) is None  # nothing yet
    api.forget("B")
    assert check_pod_status("B", plugin, api, lambda: {"B": "B done"}) is None


# ---------------------------------------------------------------------- the VK's loop


def passes(loop: StatusLoop, clock: Clock, pods: dict[str, str | None], count: int) -> list[list[str]]:
    """The order in which `count` passes ask the pods."""
    orders: list[list[str]] = []
    while loop.passes < count or loop.due == float("-inf"):  # until `count` passes ended
        asked = loop.take(clock.now, lambda: pods)
        if asked:
            assert len(asked) == 1  # one pod per request
            if len(orders) < loop.passes:
                orders.append([])
            orders[-1] += asked
            clock.now += 0.01
        elif loop.due > clock.now:
            clock.now = loop.due
    return orders


def test_passes_skip_terminal_and_initializing_pods() -> None:
    pods: dict[str, str | None] = {
        "pending": "Pending",
        "running": "Running",
        "done": "Succeeded",
        "failed": "Failed",
        "volumes": "Initializing",
    }
    orders = passes(StatusLoop(5.0, random.Random(0), 0.0), Clock(), pods, 3)
    assert all(sorted(order) == ["pending", "running"] for order in orders)


def test_a_pass_starts_five_seconds_after_the_previous_one_ended() -> None:
    clock = Clock()
    loop = StatusLoop(5.0, random.Random(0), 0.0)
    pods: dict[str, str | None] = {"a": "Running", "b": "Running"}
    assert loop.take(4.9, lambda: pods) == [] and loop.due == 5.0  # the loop waits first
    starts = []
    for _ in range(3):
        clock.now = loop.due
        starts.append(clock.now)
        while loop.take(clock.now, lambda: pods):
            clock.now += 1.0  # a slow request
        assert loop.due == clock.now + 5.0
    assert starts == [5.0, 12.0, 19.0]


def test_pass_order_is_random_and_seeded() -> None:
    pods: dict[str, str | None] = {f"p{i}": "Running" for i in range(6)}
    orders = passes(StatusLoop(5.0, random.Random(7), 0.0), Clock(), pods, 8)
    assert all(sorted(order) == sorted(pods) for order in orders)
    assert len({tuple(order) for order in orders}) > 4
    assert len({order[0] for order in orders}) > 2  # the pod that may get the fresh answer varies
    assert orders == passes(StatusLoop(5.0, random.Random(7), 0.0), Clock(), pods, 8)


def simulate(
    pods: dict[str, str | None],
    answer: Callable[[str, float], str],
    seed: int,
    until: float,
    stop: str | None = None,
) -> list[tuple[float, str, str | None]]:
    """The real chain for `until` seconds (or until pod `stop` is terminal): (time, asked pod,
    status applied) per request; pods whose answer starts with "terminated" leave the loop.
    answer(uid, t) is the batch system's truth."""
    clock = Clock()
    loop = StatusLoop(5.0, random.Random(seed), 0.0)
    plugin: PluginStatusCache[str] = PluginStatusCache(10.0, clock)
    api: ApiStatusCache[str] = ApiStatusCache()
    log: list[tuple[float, str, str | None]] = []
    while clock.now < until and not (stop and pods[stop] == "Succeeded"):
        asked = loop.take(clock.now, lambda: pods)
        if not asked:
            clock.now = max(clock.now, loop.due)
            continue
        uid = asked[0]
        applied = check_pod_status(uid, plugin, api, lambda uid=uid: {uid: answer(uid, clock.now)})
        log.append((clock.now, uid, applied))
        if applied and applied.startswith("terminated"):
            pods[uid] = "Succeeded"
        clock.now += 0.02  # one HTTP round trip
    return log


def test_at_most_one_pod_gets_a_fresh_status_per_cache_period() -> None:
    fresh: list[tuple[float, str]] = []

    def answer(uid: str, t: float) -> str:
        fresh.append((t, uid))
        return f"running at {t}"

    log = simulate({f"p{i}": "Running" for i in range(6)}, answer, seed=3, until=300)
    gaps = [b[0] - a[0] for a, b in pairwise(fresh)]
    assert 25 <= len(fresh) <= 31 and min(gaps) >= 10
    assert len(log) > 5 * len(fresh)  # every other request got a cached answer
    assert len({uid for _, uid in fresh}) == 6


def test_finished_jobs_are_seen_one_per_ten_seconds() -> None:
    log = simulate({f"p{i}": "Running" for i in range(3)}, lambda uid, t: "terminated 0", seed=1, until=100)
    seen = [t for t, _, applied in log if applied == "terminated 0"]
    assert len(seen) == 3
    assert all(b - a >= 10 for a, b in pairwise(seen))


def time_to_see(n: int, seed: int) -> float:
    """Seconds until pod p0, whose job has finished, is seen finished among n running pods."""
    log = simulate(
        {f"p{i}": "Running" for i in range(n)},
        lambda uid, t: "terminated 0" if uid == "p0" else "running",
        seed=seed,
        until=10_000,
        stop="p0",
    )
    return next(t for t, uid, applied in log if uid == "p0" and applied == "terminated 0")


def test_the_more_active_pods_the_later_a_finished_one_is_seen() -> None:
    means = {n: statistics.mean(time_to_see(n, seed) for seed in range(300)) for n in (1, 3, 9)}
    assert means[1] == 5.0  # the first pass, fresh
    assert means[1] < means[3] < means[9]
    assert 55 < means[9] < 120  # about N x 10 s (5 + 10 x (N - 1) here)


def test_fast_rounds_ask_every_pod_each_poll() -> None:
    rounds = FastRounds(1.0, 0.0)
    pods: dict[str, str | None] = {"a": "Pending", "b": "Running", "c": "Succeeded"}
    assert sorted(rounds.take(0.0, lambda: pods)) == ["a", "b"]
    rounds.done(0.2)
    assert rounds.take(1.1, lambda: pods) == [] and rounds.due == 1.2
    assert sorted(rounds.take(1.2, lambda: pods)) == ["a", "b"]


# ---------------------------------------------------------------------- the agent, wired


def test_agent_writes_pending_then_containers_with_the_job_id(tmp_path: Path) -> None:
    _, kube, _, _ = agent_with_pods(tmp_path, 1)
    (_, _, first), (_, _, second) = kube.patches
    assert first["status"]["startTime"] and "containerStatuses" not in first["status"]
    assert "metadata" not in first
    assert second["metadata"] == {"annotations": {"JobID": "100"}}
    waiting = second["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "Remote pod submitted"


def test_agent_real_timing_sees_finished_jobs_ten_seconds_apart(tmp_path: Path) -> None:
    agent, kube, backend, clock = agent_with_pods(tmp_path, 3)
    for job_id in backend.jobs:
        backend.finish(job_id)
    drive(agent, clock, 60)
    done = sorted(first_time(kube, "Succeeded").values())
    assert len(done) == 3
    assert done[0] == pytest.approx(5.0, abs=0.2)  # first pass, fresh cache
    assert all(10 <= b - a < 10.5 for a, b in pairwise(done))
    assert len(backend.queries) == 3 and all(len(q) == 1 for q in backend.queries)  # one squeue per fresh answer


def test_agent_real_timing_stops_asking_about_finished_pods(tmp_path: Path) -> None:
    agent, _, backend, clock = agent_with_pods(tmp_path, 1)
    backend.finish("100")
    drive(agent, clock, 200)
    assert backend.queries == [["100"]]


def test_agent_fast_timing_updates_every_pod_each_round(tmp_path: Path) -> None:
    agent, kube, backend, clock = agent_with_pods(tmp_path, 3, timing="fast")
    drive(agent, clock, 2.5)
    assert len(backend.queries) == 3 and all(len(q) == 3 for q in backend.queries)  # one query for all jobs
    for job_id in backend.jobs:
        backend.finish(job_id)
    drive(agent, clock, 4)
    done = first_time(kube, "Succeeded")
    assert len(done) == 3 and len(set(done.values())) == 1  # all in the same round


def test_agent_htcondor_has_no_plugin_cache(tmp_path: Path) -> None:
    agent, kube, backend, clock = agent_with_pods(tmp_path, 3, flavour="htcondor")
    for job_id in backend.jobs:
        backend.finish(job_id)
    drive(agent, clock, 9)
    done = sorted(first_time(kube, "Succeeded").values())
    assert len(done) == 3 and done[-1] < 5.2  # all in the first pass, one condor query per pod


def test_agent_real_timing_keeps_a_running_pod_whose_job_squeue_forgot(tmp_path: Path) -> None:
    # a job killed by its time limit leaves no run-<ctn>.status; once Slurm forgot it
    # (MinJobAge) the plugin answers an error and the pod stays Running
    agent, kube, backend, clock = agent_with_pods(tmp_path, 1)
    backend.jobs["100"] = JobInfo("R", "0")
    drive(agent, clock, 6)
    assert first_time(kube, "Running")
    del backend.jobs["100"]
    drive(agent, clock, 300)
    assert len(backend.queries) > 10  # errors are not cached: squeue again at every pass
    assert not first_time(kube, "Succeeded") and not first_time(kube, "Failed")


# ---------------------------------------------------------------------- MinJobAge in local mode


@pytest.mark.parametrize(("age", "known"), [(10.0, True), (400.0, False)])
def test_local_backend_forgets_jobs_after_min_job_age(tmp_path: Path, age: float, known: bool) -> None:
    (tmp_path / "local.rc").write_text("0\n")
    ended = time.time() - age
    os.utime(tmp_path / "local.rc", (ended, ended))
    backend = LocalBackend(min_job_age=300.0)
    backend.adopt("999999999", tmp_path)  # no such process: it ended
    assert backend.query(["999999999"]) == ({"999999999": JobInfo("CD", "0")} if known else {})
    never = LocalBackend(min_job_age=None)
    never.adopt("999999999", tmp_path)
    assert never.query(["999999999"]) == {"999999999": JobInfo("CD", "0")}


def _wait_for(backend: LocalBackend, job_id: str, state: str) -> None:
    deadline = time.monotonic() + 10
    while backend.query([job_id])[job_id].state != state:
        assert time.monotonic() < deadline, f"{job_id} never reached {state}"
        time.sleep(0.05)


def test_local_slots_queue_jobs_as_pending_and_start_them_as_slots_free(tmp_path: Path) -> None:
    backend = LocalBackend(slots=1, nice=5)
    ids = []
    for name in ("a", "b"):
        job_dir = tmp_path / name
        job_dir.mkdir()
        script = job_dir / "job.slurm"
        script.write_text("sleep 0.3; cut -d' ' -f19 /proc/$$/stat > nice.txt\n")
        ids.append(backend.submit(job_dir, script, None))
    first, second = ids
    assert backend.query(ids) == {first: JobInfo("R", "0"), second: JobInfo("PD", "0")}
    _wait_for(backend, first, "CD")
    _wait_for(backend, second, "CD")
    assert (tmp_path / "b" / "nice.txt").read_text().strip() == "5"


def test_a_job_cancelled_while_it_waits_never_runs(tmp_path: Path) -> None:
    backend = LocalBackend(slots=1)
    ids = []
    for name in ("a", "b"):
        job_dir = tmp_path / name
        job_dir.mkdir()
        (job_dir / "job.slurm").write_text("sleep 0.2; touch ran\n")
        ids.append(backend.submit(job_dir, job_dir / "job.slurm", None))
    backend.cancel(ids[1])
    _wait_for(backend, ids[0], "CD")
    time.sleep(0.4)
    assert backend.query([ids[1]]) == {ids[1]: JobInfo("CA", "15")}
    assert (tmp_path / "a" / "ran").exists() and not (tmp_path / "b" / "ran").exists()
