"""Request counts, exactly: status rounds cost nothing after the LIST + WATCH, and a
submission costs one create per pod, whatever the number of jobs."""

import json
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from snakemake_executor_plugin_interlink.board import StatusBoard
from snakemake_executor_plugin_interlink.kube import ClusterAccess, KubeClient
from snakemake_executor_plugin_interlink.settings import CheckedSettings
from snakemake_executor_plugin_interlink.status import State
from snakemake_executor_plugin_interlink.tracker import PodTracker

PAGE = 500  # the page size list_pods asks for


class OpenWatch(httpx.SyncByteStream):
    """A watch that stays open, sending nothing, until the test ends."""

    def __init__(self, closed: threading.Event):
        self.closed = closed

    def __iter__(self):
        self.closed.wait(30)
        yield b""


class FakeAPI:
    """Paginated LIST (continue = offset), an open WATCH, and pod creation."""

    def __init__(self, n: int):
        self.pods = [
            {
                "metadata": {"name": f"pod-{i}", "resourceVersion": str(i + 1)},
                "spec": {},
                "status": {"phase": "Running"},
            }
            for i in range(n)
        ]
        self.calls: Counter[str] = Counter()
        self.closed = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if request.method == "POST":
            verb = "create"
        elif params.get("watch"):
            verb = "watch"
        else:
            verb = "list"
        with self.lock:
            self.calls[verb] += 1
        if verb == "create":
            pod = json.loads(request.content)
            pod["metadata"]["resourceVersion"] = "1"
            return httpx.Response(201, json=pod)
        if verb == "watch":
            return httpx.Response(200, stream=OpenWatch(self.closed))
        start, limit = int(params.get("continue") or 0), int(params["limit"])
        meta = {"resourceVersion": str(len(self.pods))}
        if start + limit < len(self.pods):
            meta["continue"] = str(start + limit)
        return httpx.Response(
            200, json={"metadata": meta, "items": self.pods[start : start + limit]}
        )


def client(api: FakeAPI) -> KubeClient:
    access = ClusterAccess(server="https://k8s.test", namespace="ns", source="test")
    return KubeClient(access, transport=httpx.MockTransport(api))


@pytest.mark.parametrize("n", [10, 2000])
def test_status_rounds_send_no_request(n):
    api = FakeAPI(n)
    kube = client(api)
    tracker = PodTracker(kube, "ns", "run=1")
    board = StatusBoard(tracker, kube, "ns", CheckedSettings())
    tracker.start()
    try:
        deadline = time.monotonic() + 10
        while api.calls["watch"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        startup = {"list": math.ceil(n / PAGE), "watch": 1}
        assert api.calls == startup
        names = [p["metadata"]["name"] for p in api.pods]
        for _ in range(5):
            now = datetime.now(UTC)
            states = Counter(board.status(name, now).state for name in names)
            assert states == {State.RUNNING: n}
        assert api.calls == startup  # nothing per round, nothing per job
        assert kube.stats.requests == sum(startup.values())
    finally:
        tracker.stop()
        api.closed.set()


@pytest.mark.parametrize("m", [1, 300])
def test_creating_m_pods_sends_m_creates(m):
    api = FakeAPI(0)
    kube = client(api)
    manifests = [{"metadata": {"name": f"job-{i}", "labels": {}}} for i in range(m)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(kube.create_pods("ns", manifests, pool))
    assert [error for _, error in results] == [None] * m
    assert api.calls == {"create": m}  # counted by the server: exact
