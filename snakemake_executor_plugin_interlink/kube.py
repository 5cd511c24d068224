"""The Kubernetes API: configuration, one pooled HTTP client, one retry policy.

Errors raised here (nothing of httpx leaks out):

    KubeError                 any failed API call; .status is the HTTP code or None
    ├── TransientError        connection failure, 429 or 5xx that outlived the retries
    ├── Unauthorized (401)    after a retry with reloaded credentials
    ├── Forbidden (403)       RBAC: the message names the verb and resource
    ├── NotFound (404)
    ├── Conflict (409)
    └── Gone (410)            a watch or LIST continue token expired: LIST again

Configuration goes through the `kubernetes` package (kubeconfig contexts, exec
credential plugins, in-cluster service accounts and their token refresh); the requests
themselves are raw JSON over httpx, a tenth of the CPU of the typed client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml  # PyYAML: a dependency of the kubernetes package
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
)

logger = logging.getLogger("snakemake.interlink")

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_ERROR_TEXT = 500  # never echo more of a server's answer


class KubeError(Exception):
    def __init__(self, message: str, status: int | None = None, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after: float | None = None  # seconds, from a 429's Retry-After


class TransientError(KubeError):
    pass


class Unauthorized(KubeError):
    pass


class Forbidden(KubeError):
    pass


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class CreateUncertain(KubeError):
    """A create gave up on a transient error and the pod could not be deleted after
    it: the server may hold the pod (the create's answer was lost)."""


class Gone(KubeError):
    pass


_ERROR_CLASSES: dict[int, type[KubeError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
}


def error_from_status(status: int, body: bytes | str) -> KubeError:
    """The API's `kind: Status` answer as an exception; other bodies are cut short."""
    message, reason = "", ""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("kind") == "Status":
            message, reason = data.get("message", ""), data.get("reason", "")
    except (ValueError, TypeError):
        pass
    if not message:
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        message = text.strip()[:MAX_ERROR_TEXT] or f"HTTP {status}"
    cls = _ERROR_CLASSES.get(status)
    if cls is None:
        cls = TransientError if status in TRANSIENT_STATUS else KubeError
    return cls(message[:MAX_ERROR_TEXT], status=status, reason=reason)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TransientError)


def is_transient_for_logs(error: BaseException) -> bool:
    """A pods/log 500 is the virtual kubelet relaying an error of interLink or its
    plugin (refused parameters, an unreadable job file): asking again gives the same
    answer."""
    return is_transient(error) and getattr(error, "status", None) != 500


LOG_RETRY_SECONDS = 15.0
RBAC_SETTLE_SECONDS = 30.0
# A watch read one event at a time costs a network read per event, four fifths of the
# event's CPU (about 250 of 300 us here). After a read that had to wait, the next waits
# this long, so the events of a busy moment arrive together; at most every other such
# span is a pause, so the watch never falls behind.
WATCH_READ_PAUSE = 0.05
WATCH_READ_WAITED = 0.002  # a read longer than this waited for the network


@dataclass
class ClusterAccess:
    """Where the API server is and how to authenticate, whatever the source."""

    server: str
    namespace: str
    source: str  # "kubeconfig (context X)" or "in-cluster service account"
    verify: ssl.SSLContext | bool = True
    cert: tuple[str, str] | None = None
    token: Callable[[], str | None] | None = None  # "Bearer ..." header value
    # renews the credentials now (re-reads the token file, re-runs the exec plugin)
    reload: Callable[[], None] | None = field(default=None, repr=False)


def kubeconfig_files(kubeconfig: Path | None) -> list[Path]:
    """The kubeconfig files kubectl reads, in its order: the named one (which must
    exist); else each file of $KUBECONFIG (a colon-separated list: missing files are
    skipped, repeated ones read once); else ~/.kube/config if it exists."""
    if kubeconfig is not None:
        path = kubeconfig.expanduser()
        if not path.exists():
            raise KubeError(
                f"--interlink-kubeconfig {kubeconfig}: no such file. Give an existing "
                "kubeconfig, or leave the setting out to use $KUBECONFIG or "
                "~/.kube/config."
            )
        return [path]
    listed = os.environ.get("KUBECONFIG", "")
    names = (
        [n for n in listed.split(os.pathsep) if n] if listed else [DEFAULT_KUBECONFIG]
    )
    paths = dict.fromkeys(Path(n).expanduser() for n in names)
    return [p for p in paths if p.exists()]


def _current_context(files: list[Path]) -> str | None:
    """kubectl takes current-context from the first file that sets it; the kubernetes
    package, merging the same list, from the last."""
    for path in files:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise KubeError(f"Cannot read the kubeconfig {path}: {e}") from None
        if isinstance(data, dict) and data.get("current-context"):
            return str(data["current-context"])
    return None


def in_cluster_possible() -> bool:
    """client-go's test: the API's address in the environment and a token file."""
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and bool(os.environ.get("KUBERNETES_SERVICE_PORT"))
        and (SERVICE_ACCOUNT_DIR / "token").is_file()
    )


def _in_cluster_namespace() -> str:
    """client-go's order: $POD_NAMESPACE (downward API), the service account's
    namespace file, 'default'."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError):
        return (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or "default"
    return "default"


class _Credentials:
    """The kubernetes package's view of the credentials, renewable on demand.

    Its refresh hook re-reads a service-account token file (at most once a minute)
    and re-runs an exec plugin whose token expired, on every ask. After a 401, reload
    loads everything anew: the token file is read and the exec plugin run now, and
    the fresh configuration brings its own refresh hook, so that periodic refresh
    goes on after any number of 401s."""

    def __init__(self, load: Callable[[], Any]):
        self._load = load
        self.configuration = load()

    def token(self) -> str | None:
        value = self.configuration.get_api_key_with_prefix(
            "BearerToken", alias="authorization"
        )
        return value.strip() if value else None  # a token file may end in a newline

    def reload(self) -> None:
        self.configuration = self._load()


def load_access(
    context: str | None = None,
    kubeconfig: Path | None = None,
    namespace: str | None = None,
) -> ClusterAccess:
    """kubectl's order: a named context or kubeconfig; else the kubeconfig files of
    $KUBECONFIG or ~/.kube/config; only when none exists or none names a current
    context, the in-cluster service account. A named context or kubeconfig is always
    used (kubectl would fall back to the service account when it names no context)."""
    from kubernetes import client, config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    files = kubeconfig_files(kubeconfig)
    chosen = context or _current_context(files)
    explicit = context is not None or kubeconfig is not None

    def from_service_account() -> Any:
        cfg = client.Configuration()
        InClusterConfigLoader(
            token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
            cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        ).load_and_set(cfg)
        return cfg

    def from_kubeconfig() -> Any:
        cfg = client.Configuration()
        config.load_kube_config(
            config_file=os.pathsep.join(map(str, files)),
            context=chosen,
            client_configuration=cfg,
            persist_config=False,
        )
        return cfg

    try:
        if not explicit and chosen is None and in_cluster_possible():
            credentials = _Credentials(from_service_account)
            ns = _in_cluster_namespace()
            source = "in-cluster service account"
        elif not files:
            where = os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
            if context is not None:
                raise KubeError(
                    f"--interlink-context {context}: no kubeconfig at {where}. Set "
                    "KUBECONFIG or --interlink-kubeconfig to the file that defines it."
                )
            raise KubeError(
                f"No Kubernetes configuration: no kubeconfig at {where}, and not "
                "inside a pod (KUBERNETES_SERVICE_HOST/PORT and a service-account "
                "token). Use --interlink-kubeconfig or --interlink-context, or set "
                "KUBECONFIG."
            )
        else:
            credentials = _Credentials(from_kubeconfig)
            contexts, _ = config.list_kube_config_contexts(
                config_file=os.pathsep.join(map(str, files))
            )
            named = next((c for c in contexts if c["name"] == chosen), None)
            ns = str(((named or {}).get("context") or {}).get("namespace") or "")
            if not ns:  # kubectl in a pod: the pod's namespace, else 'default'
                ns = _in_cluster_namespace() if in_cluster_possible() else "default"
            source = f"kubeconfig (context {chosen})"
    except (config.ConfigException, OSError) as e:
        raise KubeError(
            f"Cannot load the Kubernetes configuration: {e}. Use --interlink-context "
            "or --interlink-kubeconfig, or set KUBECONFIG."
        ) from None

    cfg = credentials.configuration
    verify: ssl.SSLContext | bool = True
    if not cfg.verify_ssl:
        verify = False
    elif cfg.ssl_ca_cert:
        verify = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None
    if isinstance(verify, ssl.SSLContext) and cert:
        verify.load_cert_chain(*cert)

    def reload() -> None:
        try:
            credentials.reload()
        except (config.ConfigException, OSError) as e:
            raise KubeError(
                f"Cannot reload the Kubernetes credentials ({source}) after the API "
                f"server refused them: {e}"
            ) from None

    return ClusterAccess(
        server=cfg.host.rstrip("/"),
        namespace=namespace or ns or "default",
        source=source,
        verify=verify,
        cert=None if isinstance(verify, ssl.SSLContext) else cert,
        token=credentials.token,
        reload=reload,
    )


class _BearerAuth(httpx.Auth):
    """Adds the current token; on 401 retries once with renewed credentials.

    The token is asked for at most every TOKEN_TTL seconds: asking runs the
    kubernetes package's refresh hook, which costs more than a pod create's own work.
    Rotated tokens are picked up by then, and at once after a 401. Of the requests
    refused together, the first reloads the credentials and the others reuse them:
    reloading may run an exec plugin."""

    TOKEN_TTL = 30.0

    def __init__(self, access: ClusterAccess):
        self._access = access
        self._lock = threading.Lock()
        self._cached: tuple[float, str | None] | None = None

    def _ask(self) -> str | None:
        """The token of the moment, cached; called under self._lock."""
        token = self._access.token() if self._access.token else None
        self._cached = (time.monotonic(), token)
        return token

    def _header(self) -> str | None:
        with self._lock:
            if (
                self._cached is None
                or time.monotonic() - self._cached[0] > self.TOKEN_TTL
            ):
                return self._ask()
            return self._cached[1]

    def _renewed(self, refused: str | None) -> str | None:
        """A header other than the refused one, unless reloading gives the same."""
        with self._lock:
            if self._cached is not None and self._cached[1] != refused:
                return self._cached[1]  # another request reloaded meanwhile
            if self._access.reload:
                self._access.reload()
                logger.warning(  # rare: the package renews tokens before they expire
                    "interlink: the API server refused the credentials (401); "
                    "reloaded them from the %s",
                    self._access.source,
                )
            return self._ask()

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        header = self._header()
        if header:
            request.headers["Authorization"] = header
        response = yield request
        if response.status_code == 401 and self._access.reload:
            header = self._renewed(header)
            if header:
                request.headers["Authorization"] = header
            else:
                request.headers.pop("Authorization", None)
            yield request


@dataclass
class RequestStats:
    """Counters for benchmarks and for the tests that assert request counts."""

    requests: int = 0
    retries: int = 0
    bytes_received: int = 0
    by_verb: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, verb: str = "", received: int = 0, retry: bool = False) -> None:
        with self._lock:  # the submission pool's threads count concurrently
            if verb:
                self.requests += 1
                self.by_verb[verb] = self.by_verb.get(verb, 0) + 1
            self.bytes_received += received
            self.retries += retry


def _wait(state: RetryCallState) -> float:
    """Retry-After when the server gives one, else exponential backoff with jitter."""
    error = state.outcome.exception() if state.outcome else None
    retry_after = error.retry_after if isinstance(error, KubeError) else None
    if retry_after is not None:
        return min(float(retry_after), 30.0)
    return min(0.2 * 2.0 ** (state.attempt_number - 1), 10.0) * random.uniform(0.5, 1.5)


class KubeClient:
    """Raw-JSON access to the few endpoints the executor needs."""

    def __init__(
        self,
        access: ClusterAccess,
        *,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 8,
        retry_seconds: float = 120.0,
    ):
        self.access = access
        self.stats = RequestStats()
        # one policy object per kind of request (tenacity keeps per-call state per
        # thread); logs are fetched while a status round waits: a short budget, and a
        # 500 is the virtual node's plugin answering, which asking again won't change
        self._retrying = self._policy(is_transient, retry_seconds)
        # creates of a run come after its start-up check proved the permission: a 403
        # then is an API server whose authorizer has not caught up (a restart)
        self._forbidden_retrying = self._policy(
            lambda e: isinstance(e, Forbidden), min(retry_seconds, RBAC_SETTLE_SECONDS)
        )
        self._log_retrying = self._policy(
            is_transient_for_logs, min(retry_seconds, LOG_RETRY_SECONDS)
        )
        self._collections: dict[str, httpx.URL] = {}
        self._streams: set[httpx.Response] = set()
        self._streams_lock = threading.Lock()
        self._watches_closed = False
        self._http = httpx.Client(
            base_url=access.server,
            verify=access.verify,
            cert=access.cert,
            auth=_BearerAuth(access),
            transport=transport,
            timeout=httpx.Timeout(30.0, connect=10.0),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
            ),
            headers={"Accept": "application/json", "User-Agent": "snakemake-interlink"},
        )

    def _policy(
        self, transient: Callable[[BaseException], bool], seconds: float
    ) -> Retrying:
        return Retrying(
            retry=retry_if_exception(transient),
            wait=_wait,
            stop=stop_after_delay(seconds),
            reraise=True,
            before_sleep=self._log_retry,
        )

    def close(self) -> None:
        self.close_watches()
        self._http.close()

    def close_watches(self) -> None:
        """End the open watches and refuse new ones, so that a thread blocked reading
        one returns now rather than when the server ends the watch (minutes later).
        Closing the response from here would not wake a blocked read; shutting its
        socket down does."""
        with self._streams_lock:
            self._watches_closed = True
            streams = list(self._streams)
        for response in streams:
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def limit_retries(self, seconds: float) -> None:
        """From now on, give up on a request after this long: a run that was told to
        end (SIGTERM) must not spend minutes retrying its cleanup."""
        self._retrying = self._policy(is_transient, seconds)
        self._log_retrying = self._policy(is_transient_for_logs, seconds)

    # -- the one request path: retries, errors, counters ---------------------------

    def request(
        self,
        method: str,
        path: str | httpx.URL,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        verb: str | None = None,
    ) -> dict[str, Any]:
        """One API call with the retry policy: connection errors, 429 (Retry-After)
        and 500/502/503/504 are retried with backoff for at most retry_seconds. Every
        endpoint but pods/log answers a JSON object: anything else (a proxy's HTML
        page) is a KubeError, not a crash where the answer is read."""
        answer = self._retrying(self._send, method, path, params, body, verb or method)
        if isinstance(answer, str):
            raise KubeError(
                f"{method} {path}: the answer is not a JSON object: "
                f"{answer.strip()[:MAX_ERROR_TEXT]!r}"
            )
        return answer

    def _log_retry(self, state: RetryCallState) -> None:
        self.stats.count(retry=True)
        error = state.outcome.exception() if state.outcome else None
        logger.debug("Kubernetes API retry #%d after: %s", state.attempt_number, error)

    def _send(
        self,
        method: str,
        path: str | httpx.URL,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        verb: str,
        parse: bool = True,
    ) -> dict[str, Any] | str:
        """A JSON object answer parsed, any other answer as text (pods/log); with
        `parse` False, a success's answer is not read at all."""
        self.stats.count(verb)
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.TransportError as e:
            raise TransientError(f"cannot reach the API server: {e!r}") from None
        except httpx.HTTPError as e:  # redirects, undecodable bodies: not transient
            raise KubeError(f"{method} {path}: {e!r}") from None
        self.stats.count(received=len(response.content))
        if response.status_code >= 400:
            error = error_from_status(response.status_code, response.content)
            retry_after = response.headers.get("Retry-After")
            if retry_after and retry_after.isdigit():
                error.retry_after = int(retry_after)
            raise error
        if not parse:
            return ""
        if "json" in response.headers.get("content-type", ""):
            try:
                answer = response.json()
            except ValueError as e:
                raise KubeError(f"{method} {path}: answer not JSON: {e}") from None
            if isinstance(answer, dict):
                return answer
        return response.text

    # -- pods ----------------------------------------------------------------------

    def _pods_url(self, namespace: str) -> httpx.URL:
        """The namespace's pods collection as a ready URL: httpx would otherwise parse
        and merge the path with the base URL on every create. The server's own path
        (a proxy's, as Rancher's `/k8s/clusters/<id>`) is kept."""
        url = self._collections.get(namespace)
        if url is None:
            base = str(self._http.base_url).rstrip("/")
            url = httpx.URL(f"{base}/api/v1/namespaces/{namespace}/pods")
            self._collections[namespace] = url
        return url

    def _pod_url(self, namespace: str, name: str, sub: str = "") -> httpx.URL:
        """One pod's URL (or its `sub`resource's), absolute: merging a relative path
        with the base URL cost a sixth of a delete's client CPU."""
        return httpx.URL(f"{self._pods_url(namespace)}/{name}{sub}")

    def create_pod(self, namespace: str, manifest: dict[str, Any]) -> None:
        """Create a pod; when a retried create meets AlreadyExists, adopt the pod that
        the lost first attempt created (same name and run label), else raise. The
        created pod (5 KB of JSON) is not read: the run's watch brings it anyway, and
        reading it twice was a tenth of the client's CPU per create."""
        url = self._pods_url(namespace)
        try:
            self._retrying(self._send, "POST", url, None, manifest, "create", False)
        except Conflict:
            name = manifest["metadata"]["name"]
            existing = self.get_pod(namespace, name)
            ours = manifest["metadata"]["labels"]
            theirs = (existing or {}).get("metadata", {}).get("labels", {})
            if not existing or any(theirs.get(k) != v for k, v in ours.items()):
                raise

    def create_pods(
        self,
        namespace: str,
        manifests: list[dict[str, Any]],
        pool: ThreadPoolExecutor,
    ) -> Iterator[tuple[dict[str, Any], KubeError | None]]:
        """Create many pods concurrently (bounded by the pool), yielding each manifest
        with the error, or None once the pod exists, as they complete."""
        futures = {
            pool.submit(self._create_or_undo, namespace, m): m for m in manifests
        }
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except KubeError as e:
                yield futures[future], e

    def _create_or_undo(self, namespace: str, manifest: dict[str, Any]) -> None:
        """A create that gives up on a transient error may have gone through with its
        answer lost: the pod is deleted by name before the error is raised, or a retry
        of the job would run beside it. CreateUncertain when that delete fails too."""
        try:
            self._forbidden_retrying(self.create_pod, namespace, manifest)
        except TransientError as e:
            try:
                self.delete_pod(namespace, manifest["metadata"]["name"])
            except KubeError:
                raise CreateUncertain(str(e), e.status, e.reason) from None
            raise

    def dry_run_create_pod(self, namespace: str, manifest: dict[str, Any]) -> None:
        url = self._pods_url(namespace)
        self.request(
            "POST", url, params={"dryRun": "All"}, body=manifest, verb="create"
        )

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", self._pod_url(namespace, name), verb="get")
        except NotFound:
            return None

    def list_pods(
        self,
        namespace: str,
        selector: str,
        page_size: int = 500,
        keep: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """All pods matching the selector (paginated) and the list's resourceVersion.
        `keep` trims each pod as its page arrives, so that a large LIST never holds
        every full pod at once. An expired continue token (410) starts over."""
        while True:
            items: list[dict[str, Any]] = []
            params: dict[str, Any] = {"labelSelector": selector, "limit": page_size}
            try:
                while True:
                    page = self.request(
                        "GET", self._pods_url(namespace), params=params, verb="list"
                    )
                    found = page.get("items") or []
                    items.extend(map(keep, found) if keep else found)
                    meta = page.get("metadata") or {}
                    if not meta.get("continue"):
                        return items, meta.get("resourceVersion", "")
                    params["continue"] = meta["continue"]
            except Gone:
                logger.debug("LIST continue token expired; listing again")

    def watch_pods(
        self,
        namespace: str,
        selector: str,
        resource_version: str,
        timeout: int,
        read_pause: float = WATCH_READ_PAUSE,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Events after resource_version until the server ends the watch. Not retried:
        the caller re-lists. A 410 (too old) raises Gone. An event that had to be
        waited for is passed on at once; the read after it comes read_pause later."""
        params = {
            "watch": "1",
            "labelSelector": selector,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout),
        }
        self.stats.count("watch")
        try:
            with self._http.stream(
                "GET",
                self._pods_url(namespace),
                params=params,
                timeout=httpx.Timeout(10.0, read=timeout + 30.0),
            ) as response:
                if response.status_code >= 400:
                    raise error_from_status(response.status_code, response.read())
                with self._streams_lock:
                    if self._watches_closed:
                        raise TransientError("watches are closed: the executor stops")
                    self._streams.add(response)
                try:
                    lines = response.iter_lines()
                    pause_due, resumed = False, 0.0
                    while True:
                        if pause_due:
                            time.sleep(read_pause)
                            resumed = time.monotonic()
                        asked = time.monotonic()
                        line = next(lines, None)
                        if line is None:
                            break
                        now = time.monotonic()
                        pause_due = (
                            now - asked > WATCH_READ_WAITED
                            and now - resumed > read_pause > 0
                        )
                        if not line:
                            continue
                        self.stats.count(received=len(line))
                        try:
                            event = json.loads(line)
                        except ValueError as e:
                            raise TransientError(f"watch event not JSON: {e}") from None
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            raise error_from_status(
                                int(obj.get("code") or 500), json.dumps(obj)
                            )
                        yield kind, obj
                finally:
                    with self._streams_lock:
                        self._streams.discard(response)
        except (httpx.TransportError, httpx.StreamError) as e:
            raise TransientError(f"watch interrupted: {e!r}") from None
        except httpx.HTTPError as e:
            raise KubeError(f"watch failed: {e!r}") from None

    def delete_pod(
        self, namespace: str, name: str, grace_seconds: int | None = None
    ) -> bool:
        """False when the pod was already gone. The answer (the pod, 7 KB) is not
        read: the watch brings the deletion, and parsing it was a quarter of the
        client's CPU per delete."""
        params = (
            None if grace_seconds is None else {"gracePeriodSeconds": grace_seconds}
        )
        url = self._pod_url(namespace, name)
        try:
            self._retrying(self._send, "DELETE", url, params, None, "delete", False)
            return True
        except NotFound:
            return False

    def delete_pods(
        self, namespace: str, selector: str, except_names: Iterable[str] = ()
    ) -> None:
        """deletecollection: one request for all of a run's pods (but those named).
        Its answer, every pod deleted (7 KB each), is not parsed.

        Not for a round's finished pods: unless its watch cache serves consistent
        lists (Kubernetes 1.31 on), the server chooses them by reading every pod of
        the namespace from etcd, and the testbed's API server (1.20) takes
        resourceVersion=0, the watch cache, as a precondition (409 Conflict)."""
        params = {"labelSelector": selector}
        fields = ",".join(f"metadata.name!={name}" for name in sorted(except_names))
        if fields:
            params["fieldSelector"] = fields
        url = self._pods_url(namespace)
        self._retrying(
            self._send, "DELETE", url, params, None, "deletecollection", False
        )

    def delete_pods_verified(
        self, namespace: str, selector: str, except_names: Iterable[str] = ()
    ) -> list[str]:
        """One deletecollection, then one LIST: the pods (but those named) that are
        still there and not being deleted. Two requests, whatever the number of
        pods."""
        kept = set(except_names)
        self.delete_pods(namespace, selector, kept)
        pods, _ = self.list_pods(namespace, selector)
        return sorted(
            p["metadata"]["name"]
            for p in pods
            if p["metadata"]["name"] not in kept
            and not p["metadata"].get("deletionTimestamp")
        )

    def pod_log(
        self,
        namespace: str,
        name: str,
        container: str,
        limit_bytes: int,
        insecure_backend: bool = False,
    ) -> str:
        """The last `limit_bytes` of a container's log. Only limitBytes is sent:
        interLink answers 400 when tailLines comes with it (api/logs.go)."""
        params: dict[str, Any] = {"container": container, "limitBytes": limit_bytes}
        if insecure_backend:
            params["insecureSkipTLSVerifyBackend"] = "true"
        text = self._log_retrying(
            self._send,
            "GET",
            self._pod_url(namespace, name, "/log"),
            params,
            None,
            "log",
        )
        return text if isinstance(text, str) else json.dumps(text)

    # -- secrets and permissions ---------------------------------------------------

    def create_secret(self, namespace: str, manifest: dict[str, Any]) -> None:
        """A Conflict on a retry is this create's own first attempt, whose answer was
        lost; on the first attempt, the name is someone else's Secret (the Role
        grants no `get secrets` to look)."""
        attempts = 0

        def send() -> dict[str, Any] | str:
            nonlocal attempts
            attempts += 1
            path = f"/api/v1/namespaces/{namespace}/secrets"
            return self._send("POST", path, None, manifest, "create", parse=False)

        try:
            self._retrying(send)
        except Conflict as e:
            if attempts == 1:
                raise Conflict(
                    f"a Secret named {manifest['metadata']['name']} already exists "
                    f"in namespace {namespace} and is not this run's",
                    e.status,
                    e.reason,
                ) from None

    def delete_secret(self, namespace: str, name: str) -> bool:
        try:
            self.request(
                "DELETE",
                f"/api/v1/namespaces/{namespace}/secrets/{name}",
                verb="delete",
            )
            return True
        except NotFound:
            return False

    def can_i(
        self, namespace: str, verb: str, resource: str, subresource: str = ""
    ) -> bool:
        """SelfSubjectAccessReview, which every authenticated user may create."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "resource": resource,
                    "subresource": subresource,
                }
            },
        }
        answer = self.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=review,
            verb="create",
        )
        return bool(answer.get("status", {}).get("allowed"))


def backoff_delays(base: float = 0.5, cap: float = 10.0) -> Iterator[float]:
    """0.5, 1, 2, 4 ... cap seconds, each with jitter: for the watch's reconnects."""
    delay = base
    while True:
        yield delay * random.uniform(0.5, 1.5)
        delay = min(delay * 2, cap)
