"""The API layer against httpx.MockTransport: faults a real server won't make on demand."""

import datetime
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import certifi
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
    assert result is None  # created
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

    c = client(handler)
    c.create_pod("ns", manifest)  # no Conflict raised: the pod is ours
    assert c.stats.by_verb == {"create": 1, "get": 1}


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
    c = client(handler)
    c.create_pod("ns", manifest)  # adopted, not raised
    assert c.stats.by_verb == {"create": 2, "get": 1}


def test_a_create_does_not_read_the_created_pod():
    """The watch brings the new pod; reading the create's 5 KB answer as well cost a
    tenth of the client's CPU per create. An answer that is no JSON at all shows it."""
    c = client(lambda request: httpx.Response(201, text="not json"))
    c.create_pod("ns", {"metadata": {"name": "p", "labels": {}}})
    with pytest.raises(KubeError, match="not a JSON object"):
        c.get_pod("ns", "p")  # other answers are still read


def test_a_delete_does_not_read_the_deleted_pod():
    """The watch brings the deletion; parsing the delete's 7 KB answer was a quarter
    of the client's CPU per delete. An answer that is no JSON at all shows it."""
    c = client(lambda request: httpx.Response(200, text="not json"))
    assert c.delete_pod("ns", "p") is True


def test_a_deletecollection_does_not_read_the_deleted_pods():
    """Its answer lists every pod deleted: 70 MB when a run of 10,000 is cancelled."""
    c = client(lambda request: httpx.Response(200, text="not json"))
    c.delete_pods("ns", "run=r")


def test_pod_collection_urls_keep_the_servers_own_path():
    """A proxy's server URL (Rancher's /k8s/clusters/<id>) prefixes every path, also
    the ready-made URL of the pods collection."""
    seen = []

    def handler(request):
        seen.append((request.method, request.url.path))
        if request.method == "GET":
            return httpx.Response(200, json={"metadata": {"resourceVersion": "1"}})
        return httpx.Response(201, json={})

    acc = ClusterAccess("https://proxy.test/k8s/clusters/c-1/", "ns", "test")
    c = KubeClient(acc, transport=httpx.MockTransport(handler))
    c.create_pod("ns", {"metadata": {"name": "p", "labels": {}}})
    c.list_pods("ns", "run=r")
    c.delete_pods("ns", "run=r")
    c.get_pod("ns", "p")
    c.pod_log("ns", "p", "snakejob", 1024)
    c.delete_pod("ns", "p")
    pods = "/k8s/clusters/c-1/api/v1/namespaces/ns/pods"
    assert seen == [
        ("POST", pods),
        ("GET", pods),
        ("DELETE", pods),
        ("GET", f"{pods}/p"),
        ("GET", f"{pods}/p/log"),
        ("DELETE", f"{pods}/p"),
    ]


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


class NetworkClock:
    """Stands in for the watch's clock: the network's waits advance it, and so do
    the watch's pauses, which it records with how many events had been passed on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[tuple[float, int]] = []
        self.passed_on = 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append((seconds, self.passed_on))
        self.now += seconds


@pytest.mark.parametrize(
    "waits, read_pause, pauses",
    [
        # every event waited for: each is passed on at once, and a pause comes after
        # the first and then only once a pause's length has gone by since the last
        ([0.02] * 6, 0.05, [(0.05, 1), (0.05, 4)]),
        # a busy moment: what came with or right after one read is not paused for
        ([0.02, 0, 0, 0, 0, 0], 0.05, [(0.05, 1)]),
        ([0.02] * 6, 0.0, []),
    ],
)
def test_watch_reads_the_events_of_a_busy_moment_together(
    monkeypatch, waits, read_pause, pauses
):
    clock = NetworkClock()
    monkeypatch.setattr(kube, "time", clock)

    def body():
        for i, wait in enumerate(waits):
            clock.now += wait
            yield json.dumps({"type": "ADDED", "object": {"n": i}}).encode() + b"\n"

    c = client(lambda r: httpx.Response(200, content=body()))
    seen = []
    for _kind, obj in c.watch_pods("ns", "run=1", "4", 10, read_pause=read_pause):
        seen.append(obj["n"])
        clock.passed_on = len(seen)
    assert seen == list(range(len(waits)))
    assert clock.pauses == pauses


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
    monkeypatch.setenv("KUBECONFIG", str(path))
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


# ------------------------------------------------ which source: kubectl's order, in a pod

POD_CONFIG = """
apiVersion: v1
kind: Config
current-context: pod-cluster
clusters:
- name: pod-cluster
  cluster: {server: "https://c.example:6443", insecure-skip-tls-verify: true}
users:
- name: carol
  user: {token: token-c}
contexts:
- name: pod-cluster
  context: {cluster: pod-cluster, user: carol, namespace: jobs-c}
"""


@pytest.fixture
def pod(tmp_path, monkeypatch):
    """What a pod sees: the API's address in the environment, the service account's
    token, CA and namespace in a directory, no kubeconfig anywhere."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token-1")
    (account / "ca.crt").write_text(CA_CERT)
    (account / "namespace").write_text("pod-ns")
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    return account


# any PEM certificates serve as the pod's CA: no connection is made
CA_CERT = Path(certifi.where()).read_text()
IN_CLUSTER = ("https://10.0.0.1:443", "pod-ns", "bearer pod-token-1")


def test_kubeconfig_wins_over_the_service_account_inside_a_pod(
    pod, tmp_path, monkeypatch
):
    # kubectl's order: a kubeconfig found by $KUBECONFIG is used before the pod's
    (tmp_path / "config").write_text(TWO_CONTEXTS)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    access = kube.load_access()
    assert (access.server, access.namespace, access.token()) == (
        "https://a.example:6443",
        "jobs-a",
        "Bearer token-a",
    )
    assert access.source == "kubeconfig (context laptop)"


def test_inside_a_pod_a_context_without_namespace_takes_the_pods(
    pod, tmp_path, monkeypatch
):
    # kubectl does the same (client-go DeferredLoadingClientConfig.Namespace)
    (tmp_path / "config").write_text(TWO_CONTEXTS)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    access = kube.load_access(context="no-namespace")
    assert (access.server, access.namespace) == ("https://b.example:6443", "pod-ns")


def test_home_kubeconfig_wins_over_the_service_account_inside_a_pod(pod, tmp_path):
    (tmp_path / "home" / ".kube").mkdir(parents=True)
    (tmp_path / "home" / ".kube" / "config").write_text(POD_CONFIG)
    access = kube.load_access()
    assert (access.server, access.namespace) == ("https://c.example:6443", "jobs-c")


@pytest.mark.parametrize(
    "kubeconfig_env",
    [
        None,  # ~/.kube/config does not exist
        "{tmp}/missing:{tmp}/also-missing",  # no file of the list exists
        "{tmp}/no-current-context",  # kubectl: an empty configuration
    ],
)
def test_without_a_kubeconfig_a_pod_uses_its_service_account(
    pod, tmp_path, monkeypatch, kubeconfig_env
):
    (tmp_path / "no-current-context").write_text(
        TWO_CONTEXTS.replace("current-context: laptop", "")
    )
    if kubeconfig_env:
        monkeypatch.setenv("KUBECONFIG", kubeconfig_env.format(tmp=tmp_path))
    access = kube.load_access()
    assert (access.server, access.namespace, access.token()) == IN_CLUSTER
    assert access.source == "in-cluster service account"
    assert access.verify is not True, "the service account's CA is the trust root"


def test_pod_namespace_variable_wins_over_the_service_accounts(pod, monkeypatch):
    monkeypatch.setenv("POD_NAMESPACE", "downward")
    assert kube.load_access().namespace == "downward"


def test_kubeconfig_list_merges_first_wins_and_skips_missing_files(
    tmp_path, monkeypatch, kubeconfig
):
    # kubectl: missing files are skipped, the first file that sets current-context
    # (or a cluster, user, context name) wins; the kubernetes package alone would
    # take the last file's current-context
    second = tmp_path / "second"
    second.write_text(POD_CONFIG)
    listed = [tmp_path / "missing", kubeconfig, second]
    monkeypatch.setenv("KUBECONFIG", ":".join(map(str, listed)))
    assert kube.load_access().server == "https://a.example:6443"
    assert kube.load_access(context="pod-cluster").namespace == "jobs-c"


def test_a_broken_kubeconfig_is_an_error_not_a_reason_to_use_the_pods(
    pod, tmp_path, monkeypatch
):
    (tmp_path / "config").write_text("clusters: [")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    with pytest.raises(KubeError, match=str(tmp_path / "config")):
        kube.load_access()


def test_named_kubeconfig_must_exist(pod, tmp_path):
    with pytest.raises(KubeError, match="--interlink-kubeconfig") as caught:
        kube.load_access(kubeconfig=tmp_path / "nope")
    assert str(tmp_path / "nope") in str(caught.value)


def test_a_named_context_needs_a_kubeconfig_even_inside_a_pod(pod):
    with pytest.raises(KubeError, match="--interlink-context hpc: no kubeconfig"):
        kube.load_access(context="hpc")


def test_nothing_to_load_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeError, match=r"~/\.kube/config") as caught:
        kube.load_access()
    assert "--interlink-kubeconfig" in str(caught.value)


# ------------------------------------------------ tokens that rotate during a long run


class RotatingApiServer:
    """Accepts the tokens it currently trusts, answers 401 to the others (a rotated
    token whose bound object was deleted), and records which token each request
    carried."""

    def __init__(self) -> None:
        self.trusted: set[str] = set()
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # as the API server parses it: "Bearer <token>", any case, nothing more
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        self.seen.append(token)
        if scheme.lower() == "bearer" and token in self.trusted:
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(401, json=status_body(401, "Unauthorized", "expired"))


@dataclass
class TokenSource:
    """Where load_access finds its token, and how the outside world renews it."""

    load: Callable[[], ClusterAccess]
    rotate: Callable[[str], None]  # a new token where the source reads it
    expire: Callable[[], None]  # the kubernetes package considers its token stale


def in_cluster_source(pod: Path, monkeypatch) -> TokenSource:
    def expire() -> None:  # the package re-reads the token file once a minute
        later = datetime.datetime.now() + datetime.timedelta(minutes=2)
        clock = SimpleNamespace(now=lambda: later)
        monkeypatch.setattr(
            "kubernetes.config.incluster_config.datetime",
            SimpleNamespace(datetime=clock, timedelta=datetime.timedelta),
        )

    return TokenSource(
        load=kube.load_access,
        rotate=(pod / "token").write_text,
        expire=expire,
    )


def exec_plugin_source(tmp_path: Path, monkeypatch) -> TokenSource:
    """A kubeconfig whose user is an exec credential plugin (OIDC, cloud logins):
    its tokens expire in an hour, and the plugin prints the current one."""
    token = tmp_path / "issued-token"
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(
        "#!/bin/sh\n"
        'printf \'%s\' \'{"apiVersion": "client.authentication.k8s.io/v1", '
        '"kind": "ExecCredential", "status": {"token": "\'"$(cat '
        f"{token}"
        ')"\'", "expirationTimestamp": "\'"$(date -u -d \'+1 hour\' '
        "+%Y-%m-%dT%H:%M:%SZ)\"'\"}}'\n"
    )
    plugin.chmod(0o755)
    config = tmp_path / "exec-config"
    config.write_text(
        EXEC_CONFIG.format(plugin=plugin),
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    def expire() -> None:
        monkeypatch.setattr("kubernetes.config.kube_config._is_expired", lambda e: True)

    return TokenSource(load=kube.load_access, rotate=token.write_text, expire=expire)


EXEC_CONFIG = """
apiVersion: v1
kind: Config
current-context: oidc
clusters:
- name: site
  cluster: {{server: "https://site.example:6443", insecure-skip-tls-verify: true}}
users:
- name: plugin-user
  user:
    exec: {{apiVersion: client.authentication.k8s.io/v1, command: "{plugin}"}}
contexts:
- name: oidc
  context: {{cluster: site, user: plugin-user}}
"""


@pytest.fixture(params=["in-cluster", "exec-plugin"])
def token_source(request, tmp_path, monkeypatch) -> TokenSource:
    if request.param == "in-cluster":
        return in_cluster_source(request.getfixturevalue("pod"), monkeypatch)
    return exec_plugin_source(tmp_path, monkeypatch)


def test_every_rotation_is_recovered_after_a_401_and_refresh_goes_on(
    token_source, monkeypatch
):
    server = RotatingApiServer()
    token_source.rotate("t1")
    server.trusted = {"t1"}
    c = KubeClient(token_source.load(), transport=httpx.MockTransport(server))
    assert c.request("GET", "/x") == {"ok": True}
    for old, new in [("t1", "t2"), ("t2", "t3")]:
        token_source.rotate(new)
        server.trusted = {new}  # the old token is refused from now on
        assert c.request("GET", "/x") == {"ok": True}
        assert server.seen[-2:] == [old, new], "one 401, then the token just read"
    # the periodic refresh still runs: once the package deems its token stale, a
    # rotated token is sent before the old one is refused
    token_source.rotate("t4")
    server.trusted = {"t3", "t4"}
    token_source.expire()
    monkeypatch.setattr(kube._BearerAuth, "TOKEN_TTL", 0.0)
    assert c.request("GET", "/x") == {"ok": True}
    assert server.seen[-1] == "t4"


def test_concurrent_401s_reload_the_credentials_once():
    """Each request that met a 401 retries with the token of the moment; only the
    first reloads (re-running an exec plugin per request would be a storm)."""
    requests = 8
    everyone_refused = threading.Barrier(requests)
    reloads = []
    current = {"token": "Bearer old"}

    def server(request):
        if request.headers["Authorization"] == "Bearer old":
            everyone_refused.wait(timeout=10)  # all hold the old token before a 401
            return httpx.Response(401, json=status_body(401, "Unauthorized", "old"))
        return httpx.Response(200, json={"ok": True})

    def reload():
        reloads.append(1)
        current["token"] = f"Bearer new-{len(reloads)}"

    access = ClusterAccess(
        server="https://k8s.test",
        namespace="ns",
        source="test",
        token=lambda: current["token"],
        reload=reload,
    )
    c = KubeClient(access, transport=httpx.MockTransport(server))
    with ThreadPoolExecutor(requests) as pool:
        answers = list(pool.map(lambda _: c.request("GET", "/x"), range(requests)))
    assert answers == [{"ok": True}] * requests
    assert len(reloads) == 1


def test_an_answer_that_is_not_a_json_object_is_a_kube_error():
    # a proxy or a wrong --interlink-context server answering with a web page
    c = client(lambda r: httpx.Response(200, html="<html>Sign in</html>"))
    with pytest.raises(KubeError, match=r"not a JSON object.*Sign in"):
        c.list_pods("ns", "run=1")
    with pytest.raises(KubeError, match="not a JSON object"):
        client(lambda r: httpx.Response(200, json=["a list"])).get_pod("ns", "p")
