"""The API layer against httpx.MockTransport: faults a real server won't make on demand."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from snakemake_executor_plugin_interlink import kube
from snakemake_executor_plugin_interlink.kube import (
    ClusterAccess,
    Conflict,
    Forbidden,
    KubeClient,
    KubeError,
    TransientError,
    error_from_status,
)


def status_body(code, reason, message):
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def client(handler, retry_seconds=5.0, **access):
    acc = ClusterAccess(
        server="https://k8s.test",
        namespace="ns",
        source="test",
        token=lambda: "Bearer t0k3n",
        **access,
    )
    return KubeClient(
        acc, transport=httpx.MockTransport(handler), retry_seconds=retry_seconds
    )


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    """Record tenacity's waits instead of sleeping them."""
    slept = []
    monkeypatch.setattr("tenacity.nap.time.sleep", slept.append)
    return slept


def test_429_honours_retry_after_then_succeeds(no_sleep):
    answers = iter(
        [
            httpx.Response(
                429,
                headers={"Retry-After": "3"},
                json=status_body(429, "TooManyRequests", "slow down"),
            ),
            httpx.Response(
                429,
                headers={"Retry-After": "1"},
                json=status_body(429, "TooManyRequests", "slow down"),
            ),
            httpx.Response(200, json={"metadata": {"name": "p"}}),
        ]
    )
    c = client(lambda request: next(answers))
    assert c.get_pod("ns", "p") == {"metadata": {"name": "p"}}
    assert no_sleep == [3, 1]
    assert c.stats.retries == 2 and c.stats.requests == 3


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_server_errors_are_retried(code):
    answers = iter(
        [
            httpx.Response(code, text="upstream broke"),
            httpx.Response(200, json={"ok": 1}),
        ]
    )
    assert client(lambda r: next(answers)).request("GET", "/x") == {"ok": 1}


def test_a_log_the_virtual_node_answers_with_500_is_not_retried():
    # the VK relays interLink's or the plugin's refusal as 500, every time
    c = client(
        lambda r: httpx.Response(
            500,
            json=status_body(
                500, "InternalError", "Unexpected error occured while getting logs"
            ),
        )
    )
    with pytest.raises(TransientError, match="getting logs"):
        c.pod_log("ns", "p", "snakejob", 1000)
    assert c.stats.requests == 1 and c.stats.retries == 0


def test_a_log_behind_a_503_is_retried():
    answers = iter(
        [httpx.Response(503, text="busy"), httpx.Response(200, text="out\n")]
    )
    c = client(lambda r: next(answers))
    assert c.pod_log("ns", "p", "snakejob", 1000) == "out\n"
    assert c.stats.requests == 2


def test_a_log_request_sends_limit_bytes_alone():
    # interLink refuses tailLines together with limitBytes:
    # 400 "Both Tail and LimitBytes set. Set only one of them"
    seen = []

    def answer(request):
        seen.append(dict(request.url.params))
        return httpx.Response(200, text="out\n")

    assert client(answer).pod_log("ns", "p", "snakejob", 1000) == "out\n"
    assert seen == [{"container": "snakejob", "limitBytes": "1000"}]


def test_retries_are_bounded_in_time(monkeypatch):
    monkeypatch.undo()  # real sleeps: 0.2 s, 0.4 s ... until 0.5 s have passed
    c = client(lambda r: httpx.Response(503, text="down"), retry_seconds=0.5)
    with pytest.raises(TransientError, match="down"):
        c.request("GET", "/x")
    assert 2 <= c.stats.requests <= 6


@pytest.mark.parametrize(
    ("code", "cls"),
    [(400, KubeError), (403, Forbidden), (409, Conflict), (422, KubeError)],
)
def test_client_errors_are_not_retried(code, cls):
    c = client(
        lambda r: httpx.Response(
            code,
            json=status_body(
                code, "X", 'pods is forbidden: User "u" cannot create resource "pods"'
            ),
        )
    )
    with pytest.raises(cls) as info:
        c.request("GET", "/x")
    assert c.stats.requests == 1
    assert info.value.status == code


def test_forbidden_message_names_verb_and_resource():
    c = client(
        lambda r: httpx.Response(
            403,
            json=status_body(
                403,
                "Forbidden",
                'pods is forbidden: User "snakemake-executor" cannot deletecollection resource "pods" in API group "" in the namespace "x"',
            ),
        )
    )
    with pytest.raises(Forbidden, match='cannot deletecollection resource "pods"'):
        c.delete_pods("x", "run=1")


def test_connection_errors_are_retried_and_do_not_leak_httpx():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json={})

    assert client(handler).request("GET", "/x") == {}
    with pytest.raises(KubeError) as info:
        client(
            lambda r: (_ for _ in ()).throw(httpx.ReadError("reset")),
            retry_seconds=0.01,
        ).request("GET", "/x")
    assert not isinstance(info.value, httpx.HTTPError)


def test_401_reloads_credentials_once():
    tokens = iter(["Bearer old", "Bearer new"])
    current = {"token": next(tokens)}
    seen = []

    def handler(request):
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer old":
            return httpx.Response(401, json=status_body(401, "Unauthorized", "expired"))
        return httpx.Response(200, json={"ok": True})

    def reload():
        current["token"] = next(tokens)

    acc = ClusterAccess(
        server="https://k8s.test",
        namespace="ns",
        source="test",
        token=lambda: current["token"],
        reload=reload,
    )
    c = KubeClient(acc, transport=httpx.MockTransport(handler))
    assert c.request("GET", "/x") == {"ok": True}
    assert seen == ["Bearer old", "Bearer new"]


FORBIDDEN = status_body(
    403,
    "Forbidden",
    'pods is forbidden: User "snakemake-executor" cannot create resource "pods"',
)


def test_a_restarting_api_servers_403_on_create_is_waited_out(no_sleep):
    # its RBAC authorizer answers 403 until its cache has synced
    answers = iter(
        [httpx.Response(403, json=FORBIDDEN)] * 3
        + [httpx.Response(201, json={"metadata": {"name": "p"}})]
    )
    c = client(lambda request: next(answers))
    with ThreadPoolExecutor(1) as pool:
        ((_, result),) = list(c.create_pods("ns", [{"metadata": {"name": "p"}}], pool))
    assert result == {"metadata": {"name": "p"}}
    assert len(no_sleep) == 3


def test_a_lasting_403_on_create_fails_within_its_bound(monkeypatch):
    monkeypatch.undo()  # real sleeps until the bound (here 0.5 s) has passed
    c = client(lambda request: httpx.Response(403, json=FORBIDDEN), retry_seconds=0.5)
    with ThreadPoolExecutor(1) as pool:
        ((_, result),) = list(c.create_pods("ns", [{"metadata": {"name": "p"}}], pool))
    assert isinstance(result, Forbidden)
    assert 2 <= c.stats.requests <= 6


def test_409_on_create_adopts_our_pod():
    manifest = {"metadata": {"name": "p", "labels": {"run": "r1"}}}

    def handler(request):
        if request.method == "POST":
            return httpx.Response(
                409, json=status_body(409, "AlreadyExists", 'pods "p" already exists')
            )
        return httpx.Response(
            200, json={"metadata": {"name": "p", "labels": {"run": "r1"}, "uid": "u"}}
        )

    assert client(handler).create_pod("ns", manifest)["metadata"]["uid"] == "u"


def test_409_on_create_of_someone_elses_pod_raises():
    manifest = {"metadata": {"name": "p", "labels": {"run": "r1"}}}

    def handler(request):
        if request.method == "POST":
            return httpx.Response(409, json=status_body(409, "AlreadyExists", "exists"))
        return httpx.Response(
            200, json={"metadata": {"name": "p", "labels": {"run": "other"}}}
        )

    with pytest.raises(Conflict):
        client(handler).create_pod("ns", manifest)


def test_create_retried_after_a_lost_answer_adopts_the_pod():
    """The first POST reached the server but its answer was lost."""
    created = {}

    def handler(request):
        if request.method == "POST":
            if created:
                return httpx.Response(
                    409, json=status_body(409, "AlreadyExists", "exists")
                )
            created["pod"] = json.loads(request.content)
            raise httpx.RemoteProtocolError("server disconnected")
        return httpx.Response(200, json=created["pod"])

    manifest = {"metadata": {"name": "p", "labels": {"run": "r1"}}}
    assert client(handler).create_pod("ns", manifest) == manifest


def page(names, cont=None, rv="100"):
    return {
        "kind": "PodList",
        "metadata": {"resourceVersion": rv, **({"continue": cont} if cont else {})},
        "items": [{"metadata": {"name": n}} for n in names],
    }


def test_list_paginates_and_survives_a_reset_mid_pagination():
    calls = []

    def handler(request):
        calls.append(dict(request.url.params))
        token = request.url.params.get("continue")
        if token is None:
            return httpx.Response(200, json=page(["a", "b"], cont="t1"))
        if token == "t1" and calls.count({**calls[-1]}) == 1:
            raise httpx.ReadError("connection reset by peer")
        if token == "t1":
            return httpx.Response(200, json=page(["c"], cont="t2"))
        return httpx.Response(200, json=page(["d"], rv="123"))

    items, rv = client(handler).list_pods("ns", "run=1", page_size=2)
    assert [i["metadata"]["name"] for i in items] == ["a", "b", "c", "d"]
    assert rv == "123"
    assert all(c["labelSelector"] == "run=1" and c["limit"] == "2" for c in calls)


def test_list_starts_over_when_the_continue_token_expired():
    calls = []

    def handler(request):
        calls.append(request.url.params.get("continue"))
        if len(calls) == 1:
            return httpx.Response(200, json=page(["a"], cont="old"))
        if len(calls) == 2:
            return httpx.Response(410, json=status_body(410, "Expired", "too old"))
        return httpx.Response(200, json=page(["a", "b"]))

    items, _ = client(handler).list_pods("ns", "run=1")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert calls == [None, "old", None]


def test_watch_yields_events_and_raises_gone():
    lines = [
        {
            "type": "ADDED",
            "object": {"metadata": {"name": "a", "resourceVersion": "5"}},
        },
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}},
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "code": 410,
                "message": "too old resource version",
            },
        },
    ]
    body = "\n".join(json.dumps(x) for x in lines) + "\n"
    c = client(lambda r: httpx.Response(200, text=body))
    events = []
    with pytest.raises(kube.Gone):
        for kind, obj in c.watch_pods("ns", "run=1", "4", 10):
            events.append((kind, obj["metadata"].get("name")))
    assert events == [("ADDED", "a"), ("BOOKMARK", None)]


def test_error_text_is_cut_short():
    error = error_from_status(500, b"x" * 10_000)
    assert len(str(error)) <= kube.MAX_ERROR_TEXT


def test_pool_is_shared_across_threads():
    seen = []
    lock = threading.Lock()

    def handler(request):
        with lock:
            seen.append(request.url.path)
        return httpx.Response(201, json={"metadata": {"name": "x"}})

    c = client(handler)
    threads = [
        threading.Thread(
            target=c.create_pod,
            args=("ns", {"metadata": {"name": f"p{i}", "labels": {}}}),
        )
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 20 and c.stats.by_verb["create"] == 20


# ------------------------------------------------------------ which cluster: kubeconfig contexts

TWO_CONTEXTS = """
apiVersion: v1
kind: Config
current-context: laptop
clusters:
- name: site-a
  cluster: {server: "https://a.example:6443", insecure-skip-tls-verify: true}
- name: site-b
  cluster: {server: "https://b.example:6443", insecure-skip-tls-verify: true}
users:
- name: alice
  user: {token: token-a}
- name: bob
  user: {token: token-b}
contexts:
- name: laptop
  context: {cluster: site-a, user: alice, namespace: jobs-a}
- name: hpc
  context: {cluster: site-b, user: bob, namespace: jobs-b}
- name: no-namespace
  context: {cluster: site-b, user: bob}
"""


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    path = tmp_path / "config"
    path.write_text(TWO_CONTEXTS)
    # what a process started with KUBECONFIG=path sees: the kubernetes package reads
    # the variable once, when it is first imported
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(
        "kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path)
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


@pytest.mark.parametrize(
    "context, server, namespace, token",
    [
        (None, "https://a.example:6443", "jobs-a", "Bearer token-a"),
        ("hpc", "https://b.example:6443", "jobs-b", "Bearer token-b"),
        ("no-namespace", "https://b.example:6443", "default", "Bearer token-b"),
    ],
)
def test_context_picks_cluster_user_and_namespace(
    kubeconfig, context, server, namespace, token
):
    access = kube.load_access(context=context)
    assert (access.server, access.namespace, access.token()) == (
        server,
        namespace,
        token,
    )
    assert f"context {context or 'laptop'}" in access.source


def test_namespace_setting_wins_over_the_contexts(kubeconfig):
    assert kube.load_access(context="hpc", namespace="mine").namespace == "mine"


def test_a_named_context_wins_inside_a_pod(kubeconfig, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    access = kube.load_access(context="hpc")
    assert access.server == "https://b.example:6443"


def test_unknown_context_is_named_in_the_error(kubeconfig):
    with pytest.raises(KubeError, match="nowhere") as caught:
        kube.load_access(context="nowhere")
    assert "--interlink-context" in str(caught.value)


def test_an_answer_that_is_not_a_json_object_is_a_kube_error():
    # a proxy or a wrong --interlink-context server answering with a web page
    c = client(lambda r: httpx.Response(200, html="<html>Sign in</html>"))
    with pytest.raises(KubeError, match=r"not a JSON object.*Sign in"):
        c.list_pods("ns", "run=1")
    with pytest.raises(KubeError, match="not a JSON object"):
        client(lambda r: httpx.Response(200, json=["a list"])).get_pod("ns", "p")
