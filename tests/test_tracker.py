"""The informer against a scripted API: events in order, relists, no leaks."""

import json
import queue
import time

import httpx
import pytest

from snakemake_executor_plugin_interlink.kube import ClusterAccess, KubeClient
from snakemake_executor_plugin_interlink.pod import requested
from snakemake_executor_plugin_interlink.tracker import PodTracker, slim_pod


def pod(name, phase="Pending", rv="1"):
    return {
        "metadata": {
            "name": name,
            "resourceVersion": rv,
            "managedFields": [{"big": "x" * 1000}],
        },
        "spec": {"nodeName": "vk", "containers": [{"name": "c"}]},
        "status": {"phase": phase},
    }


class FakeAPI:
    """LIST answers from `pods`; each WATCH replays one batch from `batches`."""

    def __init__(self, pods):
        self.pods = pods
        self.batches: queue.Queue = queue.Queue()
        self.lists = 0
        self.watches = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("watch"):
            self.watches.append(request.url.params["resourceVersion"])
            try:
                batch = self.batches.get(timeout=0.2)
            except queue.Empty:
                batch = []
            if isinstance(batch, int):
                return httpx.Response(batch, json={"kind": "Status", "code": batch})
            return httpx.Response(
                200, text="".join(json.dumps(e) + "\n" for e in batch)
            )
        self.lists += 1
        return httpx.Response(
            200,
            json={
                "metadata": {"resourceVersion": "10"},
                "items": list(self.pods.values()),
            },
        )


def until(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def api_and_tracker():
    api = FakeAPI({"a": pod("a"), "b": pod("b")})
    acc = ClusterAccess(server="https://k8s.test", namespace="ns", source="test")
    kube = KubeClient(acc, transport=httpx.MockTransport(api))
    tracker = PodTracker(kube, "ns", "run=1", relist_interval=300)
    tracker.start()
    yield api, tracker, kube
    tracker.stop()


def test_list_then_watch_events_in_order(api_and_tracker):
    api, tracker, kube = api_and_tracker
    assert tracker.synced.wait(5)
    assert tracker.get("a")["status"]["phase"] == "Pending"
    api.batches.put(
        [
            {"type": "MODIFIED", "object": pod("a", "Running", "11")},
            {"type": "MODIFIED", "object": pod("a", "Succeeded", "12")},
            {"type": "DELETED", "object": pod("b", "Running", "13")},
        ]
    )
    assert until(lambda: tracker.deleted("b") is not None)
    assert tracker.get("a")["status"]["phase"] == "Succeeded"
    assert tracker.get("b") is None
    assert api.watches[0] == "10"
    # a round reads the view without any request
    before = kube.stats.requests
    for _ in range(100):
        tracker.get("a")
    assert kube.stats.requests == before


def test_watch_resumes_from_the_last_version(api_and_tracker):
    api, _, _ = api_and_tracker
    api.batches.put(
        [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "42"}}}]
    )
    assert until(lambda: "42" in api.watches)
    assert api.lists == 1


def test_gone_relists(api_and_tracker):
    api, tracker, _ = api_and_tracker
    assert tracker.synced.wait(5)
    api.pods["c"] = pod("c", "Running")
    api.batches.put(410)
    assert until(lambda: tracker.get("c") is not None)
    assert api.lists == 2


def test_relist_notices_pods_deleted_during_a_gap(api_and_tracker):
    api, tracker, _ = api_and_tracker
    assert tracker.synced.wait(5)
    del api.pods["b"]
    api.batches.put(500)  # the watch breaks; after the backoff the tracker lists again
    assert until(lambda: tracker.deleted("b") is not None, timeout=10)


def test_forgotten_pods_do_not_come_back(api_and_tracker):
    api, tracker, _ = api_and_tracker
    assert tracker.synced.wait(5)
    tracker.forget("a")
    api.batches.put(
        [
            {"type": "MODIFIED", "object": pod("a", "Succeeded", "20")},
            {"type": "DELETED", "object": pod("a", "Succeeded", "21")},
            {"type": "MODIFIED", "object": pod("b", "Running", "22")},
        ]
    )
    assert until(lambda: tracker.get("b")["status"]["phase"] == "Running")
    assert tracker.get("a") is None and tracker.deleted("a") is None
    assert tracker.names() == ["b"]


def test_observe_never_overwrites_newer_state(api_and_tracker):
    _, tracker, _ = api_and_tracker
    assert tracker.synced.wait(5)
    tracker.observe(pod("a", "Pending", "0"))
    tracker.observe(pod("new", "Pending", "0"))
    assert tracker.get("new") is not None


def test_slim_pod_drops_what_nobody_reads():
    full = pod("a")
    limits = {"cpu": "2", "memory": "3000Mi"}
    full["spec"]["containers"][0].update(
        resources={"limits": {**limits, "nvidia.com/gpu": "1"}, "requests": limits},
        command=["/bin/sh", "-c", "x" * 1000],
    )
    slim = slim_pod(full)
    assert "managedFields" not in slim["metadata"]
    # cpu and memory limits stay: a re-attached job's report row shows what it asked
    assert slim["spec"] == {
        "nodeName": "vk",
        "containers": [{"resources": {"limits": limits}}],
    }
    assert requested(slim) == requested(full) == (2.0, 3000.0)


def test_a_relist_older_than_a_created_pod_does_not_delete_it(api_and_tracker):
    """The create's answer (observed) can be newer than the snapshot a LIST serves."""
    api, tracker, _ = api_and_tracker
    assert tracker.synced.wait(5)
    tracker.observe(pod("fresh", "Pending", rv="11"))  # the LIST below is at "10"
    tracker.observe(pod("old", "Pending", rv="9"))  # was in an older view, now gone
    api.batches.put(410)
    assert until(lambda: api.lists == 2)
    assert until(lambda: tracker.deleted("old") is not None)
    assert tracker.get("fresh") is not None and tracker.deleted("fresh") is None


def test_a_change_right_after_a_wait_timed_out_wakes_the_next_wait(api_and_tracker):
    """The flag was cleared after every wait, also one that timed out: an event
    that came between the timeout and the clear woke nobody."""
    _, tracker, _ = api_and_tracker
    assert tracker.synced.wait(5)
    tracker.wait_for_change(1)  # the sync's own change
    wait = tracker.changed.wait

    def event_just_after_the_timeout(timeout):
        woke = wait(timeout)
        tracker.changed.set()  # the watch thread, right then
        return woke

    tracker.changed.wait = event_just_after_the_timeout
    assert tracker.wait_for_change(0.01) is False
    tracker.changed.wait = wait
    assert tracker.wait_for_change(0) is True
