"""Every way an API call can go wrong ends in the KubeError taxonomy, so that callers
that catch KubeError (status rounds, cleanup) are never ended by a stray exception."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from snakemake_executor_plugin_interlink.kube import (
    ClusterAccess,
    Conflict,
    CreateUncertain,
    KubeClient,
    KubeError,
    TransientError,
)


def client(handler) -> KubeClient:
    access = ClusterAccess(server="https://k8s.test", namespace="ns", source="test")
    return KubeClient(access, transport=httpx.MockTransport(handler), retry_seconds=0.2)


def too_many_redirects(request: httpx.Request) -> httpx.Response:
    raise httpx.TooManyRedirects("redirect loop", request=request)


def undecodable(request: httpx.Request) -> httpx.Response:
    raise httpx.DecodingError("bad gzip", request=request)


def not_json(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        content=b"<html>proxy login</html>",
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize("handler", [too_many_redirects, undecodable, not_json])
def test_odd_answers_are_kube_errors(handler):
    kube = client(handler)
    with pytest.raises(KubeError) as raised:
        kube.get_pod("ns", "p")
    assert not isinstance(raised.value, TransientError)  # asking again won't help


def test_a_watch_line_that_is_not_json_is_a_transient_error():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"type": "ADDED", "obj\n')

    kube = client(handler)
    with pytest.raises(TransientError):
        list(kube.watch_pods("ns", "run=1", "1", 5))


class Recorder:
    """Answers by (method, path suffix) from scripted queues; records every call."""

    def __init__(self, script: dict[tuple[str, str], list[int]]):
        self.script = script
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append((request.method, path, dict(request.url.params)))
        for (method, suffix), codes in self.script.items():
            if request.method == method and path.endswith(suffix):
                code = codes.pop(0) if len(codes) > 1 else codes[0]
                body: dict = {
                    "kind": "Status",
                    "code": code,
                    "message": f"answer {code}",
                }
                if code < 300 and method == "POST":
                    body = json.loads(request.content)
                if code < 300 and method == "GET":
                    body = {"metadata": {"resourceVersion": "9"}, "items": []}
                return httpx.Response(code, json=body)
        raise AssertionError(f"unexpected {request.method} {path}")


def manifest(name: str = "job-1") -> dict:
    return {"metadata": {"name": name, "labels": {"run": "r"}}}


def create_one(api: Recorder) -> dict | KubeError:
    """What create_pods gives for one manifest."""
    with ThreadPoolExecutor(1) as pool:
        [(_, result)] = list(client(api).create_pods("ns", [manifest()], pool))
    return result


def test_a_create_that_gave_up_deletes_the_pod_by_name_before_failing():
    api = Recorder({("POST", "/pods"): [503], ("DELETE", "/pods/job-1"): [200]})
    result = create_one(api)
    assert isinstance(result, TransientError)
    assert not isinstance(result, CreateUncertain)
    assert api.calls[-1][:2] == ("DELETE", "/api/v1/namespaces/ns/pods/job-1")


def test_a_create_that_gave_up_and_cannot_be_undone_is_uncertain():
    api = Recorder({("POST", "/pods"): [503], ("DELETE", "/pods/job-1"): [503]})
    result = create_one(api)
    assert isinstance(result, CreateUncertain)


def test_a_refused_create_is_not_followed_by_a_delete():
    api = Recorder({("POST", "/pods"): [422]})
    result = create_one(api)
    assert isinstance(result, KubeError) and result.status == 422
    assert [c[0] for c in api.calls] == ["POST"]


def test_a_secret_name_taken_before_this_run_is_refused():
    api = Recorder({("POST", "/secrets"): [409]})
    with pytest.raises(Conflict, match=r"already exists .* not this run's"):
        client(api).create_secret("ns", manifest("run-secret"))


def test_a_conflict_on_a_retried_secret_create_is_the_runs_own():
    api = Recorder({("POST", "/secrets"): [503, 409]})
    client(api).create_secret("ns", manifest("run-secret"))
    assert [c[0] for c in api.calls] == ["POST", "POST"]


def test_deleting_the_runs_pods_takes_two_requests_and_spares_kept_ones():
    api = Recorder({("DELETE", "/pods"): [200], ("GET", "/pods"): [200]})
    left = client(api).delete_pods_verified("ns", "run in (r)", {"kept-2", "kept-1"})
    assert left == []
    (delete, _, params), (listing, _, _) = api.calls
    assert (delete, listing) == ("DELETE", "GET")
    assert params["labelSelector"] == "run in (r)"
    assert params["fieldSelector"] == "metadata.name!=kept-1,metadata.name!=kept-2"
