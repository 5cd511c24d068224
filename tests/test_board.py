"""The status board against a scripted API: every round decides every job from the
set of jobs, a watch that fails for good ends the jobs, and a failing lookup is a
job's outcome, never the end of the round."""

from __future__ import annotations

import queue
import time
from typing import Any

import httpx
import pytest

from snakemake_executor_plugin_interlink.board import StatusBoard
from snakemake_executor_plugin_interlink.kube import ClusterAccess, KubeClient
from snakemake_executor_plugin_interlink.settings import CheckedSettings
from snakemake_executor_plugin_interlink.status import State
from snakemake_executor_plugin_interlink.tracker import PodTracker
from tests.test_tracker import until


def pod(name: str, phase: str = "Running", rv: str = "5") -> dict[str, Any]:
    terminated = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    running = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    return {
        "metadata": {
            "name": name,
            "resourceVersion": rv,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"nodeName": "vk"},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {
                    "name": "snakemake",
                    "state": terminated if phase == "Succeeded" else running,
                }
            ],
        },
    }


class ScriptedAPI:
    """LIST answers `pods`; a WATCH answers the next status code queued in `watches`
    (200: an empty stream), and 403 for ever once `refuse` is set. GETs of single pods
    answer `get_status`."""

    def __init__(self, pods: dict[str, dict[str, Any]]):
        self.pods = pods
        self.watches: queue.Queue[int] = queue.Queue()
        self.refuse = False
        self.get_status = 404
        self.gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if self.refuse:
            return httpx.Response(
                403,
                json={
                    "kind": "Status",
                    "code": 403,
                    "reason": "Forbidden",
                    "message": 'pods is forbidden: User "u" cannot watch resource '
                    '"pods" in the namespace "ns"',
                },
            )
        if params.get("watch"):
            try:
                code = self.watches.get(timeout=0.2)
            except queue.Empty:
                code = 200
            return httpx.Response(code, text="")
        if not request.url.path.endswith("/pods"):  # a GET of one pod
            self.gets += 1
            return httpx.Response(
                self.get_status,
                json={"kind": "Status", "message": f"get refused: {self.get_status}"},
            )
        return httpx.Response(
            200,
            json={
                "metadata": {"resourceVersion": "10"},
                "items": list(self.pods.values()),
            },
        )


@pytest.fixture
def api() -> ScriptedAPI:
    return ScriptedAPI({"a": pod("a"), "b": pod("b")})


@pytest.fixture
def kube(api: ScriptedAPI) -> KubeClient:
    access = ClusterAccess(server="https://k8s.test", namespace="ns", source="test")
    return KubeClient(access, transport=httpx.MockTransport(api), retry_seconds=0.5)


@pytest.fixture
def tracker(kube: KubeClient):
    tracker = PodTracker(kube, "ns", "run=1", relist_interval=300)
    tracker.start()
    assert tracker.synced.wait(5)
    yield tracker
    tracker.stop()


def board_for(tracker: PodTracker, kube: KubeClient, **grace: float) -> StatusBoard:
    return StatusBoard(tracker, kube, "ns", CheckedSettings(), **grace)


def track(board: StatusBoard, *names: str) -> None:
    """What the executor does with every pod it created or re-attached to."""
    for name in names:
        board.track(name, None)


def test_a_watch_refused_for_good_fails_running_jobs_after_the_grace(
    api, kube, tracker
):
    """All jobs Running, then the Role is removed: the rounds that follow must see the
    failure even though no pod changes (they used to return 'unchanged' for ever)."""
    board = board_for(tracker, kube, refusal_grace=0.3)
    jobs = ["a", "b"]
    assert board.decide(jobs, str) == (jobs, [])
    api.refuse = True
    assert until(lambda: tracker.error is not None)
    deadline = time.monotonic() + 5
    while not (finished := board.decide(jobs, str)[1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [job for job, _ in finished] == jobs
    status = finished[0][1]
    assert status.state == State.FAILED
    assert "cannot watch resource" in status.reason


def test_a_failing_watch_wakes_the_status_loop(api, kube, tracker):
    tracker.changed.clear()
    assert tracker.error is None
    api.refuse = True
    assert tracker.changed.wait(5)
    assert tracker.error is not None  # what the woken round's watch_failure reads


def test_a_new_job_set_of_the_same_size_is_looked_at(api, kube, tracker):
    """A finished pod that replaces a just-reported job at the same count is decided
    in the very next round, not at the next relist."""
    board = board_for(tracker, kube)
    board.track("a", None)
    for _ in range(2):  # the second round finds nothing changed
        assert board.decide(["a"], str) == (["a"], [])
    board.track("c", pod("c", "Succeeded", rv="11"))  # re-attached: no event
    board.forget("a")
    active, finished = board.decide(["c"], str)
    assert active == []
    assert [(job, status.state) for job, status in finished] == [("c", State.SUCCEEDED)]


def test_a_failing_lookup_of_a_missing_pod_is_that_jobs_outcome(
    api, kube, tracker, monkeypatch
):
    """The one GET of a board (a pod absent from the view) fails with a refusal: the
    job fails with that reason; the round goes on for the others."""
    monkeypatch.setattr(
        "snakemake_executor_plugin_interlink.board.MISSING_POD_GRACE", 0
    )
    board = board_for(tracker, kube)
    track(board, "a", "gone")
    api.get_status = 403
    active, finished = board.decide(["a", "gone"], str)
    assert active == ["a"]
    assert [job for job, _ in finished] == ["gone"]
    assert finished[0][1].state == State.FAILED
    assert "get refused: 403" in finished[0][1].reason


def test_a_lookup_that_cannot_reach_the_server_keeps_the_job_waiting(
    api, kube, tracker, monkeypatch
):
    monkeypatch.setattr(
        "snakemake_executor_plugin_interlink.board.MISSING_POD_GRACE", 0
    )
    board = board_for(tracker, kube)
    track(board, "a", "gone")
    api.get_status = 503
    active, finished = board.decide(["a", "gone"], str)
    assert (active, finished) == (["a", "gone"], [])
    assert api.gets >= 1


def counting_lookups(board: StatusBoard, monkeypatch) -> list[str]:
    """The pods whose state a round looked up."""
    looked: list[str] = []
    real = board.status

    def status(name: str, now: Any) -> Any:
        looked.append(name)
        return real(name, now)

    monkeypatch.setattr(board, "status", status)
    return looked


def test_a_round_looks_only_at_the_pods_that_changed(api, kube, monkeypatch):
    """With 1000 running jobs, a quiet round looks at no pod and a round after one
    event looks at that one pod: O(changes), not O(jobs)."""
    api.pods = {f"p{i}": pod(f"p{i}") for i in range(1000)}
    tracker = PodTracker(kube, "ns", "run=1", relist_interval=300)
    tracker.start()
    try:
        assert tracker.synced.wait(5)
        board = board_for(tracker, kube)
        jobs = list(api.pods)
        track(board, *jobs)
        looked = counting_lookups(board, monkeypatch)
        assert board.decide(jobs, str) == (jobs, [])
        assert len(looked) == 1000  # each job's first round
        looked.clear()
        assert board.decide(jobs, str) == (jobs, [])
        assert looked == []
        tracker._apply("MODIFIED", pod("p7", "Succeeded", rv="12"))
        active, finished = board.decide(jobs, str)
        assert looked == ["p7"]
        assert active == [job for job in jobs if job != "p7"]
        assert [(job, status.state) for job, status in finished] == [
            ("p7", State.SUCCEEDED)
        ]
    finally:
        tracker.stop()


def test_a_job_that_ended_before_snakemake_listed_it_is_reported_later(
    api, kube, tracker
):
    """A pod is tracked when created, a moment before Snakemake counts its job as
    active: a round that sees it finished in between must not lose it."""
    board = board_for(tracker, kube)
    track(board, "a")
    board.track("c", pod("c", "Succeeded", rv="11"))
    assert board.decide(["a"], str) == (["a"], [])  # "c" is not in the list yet
    active, finished = board.decide(["a", "c"], str)
    assert active == ["a"]
    assert [(job, status.state) for job, status in finished] == [("c", State.SUCCEEDED)]


def test_a_waiting_pods_timeout_ends_it_without_any_event(api, kube):
    """No event comes for a pod that its node never submits: the round at its
    timeout looks at it."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    stuck = pod("a", "Pending")
    stuck["status"] = {"phase": "Pending"}
    stuck["metadata"]["creationTimestamp"] = created
    api.pods = {"a": stuck, "b": pod("b")}
    tracker = PodTracker(kube, "ns", "run=1", relist_interval=300)
    tracker.start()
    try:
        assert tracker.synced.wait(5)
        board = StatusBoard(
            tracker, kube, "ns", CheckedSettings(unschedulable_timeout=2)
        )
        track(board, "a", "b")
        assert board.decide(["a", "b"], str) == (["a", "b"], [])
        assert tracker.take_touched() == set()  # no event from here on
        deadline = time.monotonic() + 10
        while not (finished := board.decide(["a", "b"], str)[1]):
            assert time.monotonic() < deadline, "the timeout was never looked at"
            time.sleep(0.1)
        assert [job for job, _ in finished] == ["a"]
        assert "--interlink-unschedulable-timeout" in finished[0][1].reason
    finally:
        tracker.stop()
