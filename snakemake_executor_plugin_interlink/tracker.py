"""A local view of one run's pods, kept current by LIST + WATCH (informer style).

A status round reads this view and sends no request. The view only moves forward: it is
replaced by a fresh LIST or updated by watch events in the server's order, so a round
never sees a job finish from stale data. The watch resumes from the last
resourceVersion (bookmarks keep it fresh), re-lists after 410 Gone or any gap, and
re-lists every `relist_interval` seconds to guard against missed events.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .kube import (
    Forbidden,
    Gone,
    KubeClient,
    KubeError,
    NotFound,
    Unauthorized,
    backoff_delays,
)

logger = logging.getLogger("snakemake.interlink")
SETTLE_SECONDS = 0.05

_KEEP_METADATA = (
    "name",
    "uid",
    "labels",
    "annotations",
    "creationTimestamp",
    "deletionTimestamp",
    "resourceVersion",
)


def slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """The parts of a pod that status and reports read (a re-attached pod's report
    row, its container's resources); managedFields and the rest of the spec would
    otherwise triple the memory per tracked job."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    return {
        "metadata": {k: meta[k] for k in _KEEP_METADATA if k in meta},
        "spec": {
            "nodeName": spec.get("nodeName"),
            "containers": [
                {"resources": {"limits": _cpu_and_memory(c)}}
                for c in spec.get("containers", [])[:1]
            ],
        },
        "status": pod.get("status") or {},
    }


def _cpu_and_memory(container: dict[str, Any]) -> dict[str, str]:
    limits = (container.get("resources") or {}).get("limits") or {}
    return {k: limits[k] for k in ("cpu", "memory") if k in limits}


def _newer_than(pod: dict[str, Any], version: str) -> bool:
    """Whether the pod's state is newer than a LIST's resourceVersion. Versions are
    etcd revisions; one that is not a number counts as newer, so a pod is never
    declared deleted on a doubt (the status board's grace and GET decide then)."""
    try:
        return int(pod["metadata"].get("resourceVersion", "")) > int(version)
    except ValueError:
        return True


def _version(pod: dict[str, Any] | None) -> str | None:
    return None if pod is None else pod["metadata"].get("resourceVersion")


class PodTracker:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        selector: str,
        relist_interval: float = 300.0,
        watch_timeout: int = 290,
    ):
        self._kube = kube
        self._namespace = namespace
        self._selector = selector
        self._relist_interval = relist_interval
        self._watch_timeout = max(1, int(min(watch_timeout, relist_interval)))
        self._lock = threading.Lock()
        self._pods: dict[str, dict[str, Any]] = {}
        self._deleted: dict[str, dict[str, Any]] = {}  # last state of vanished pods
        self._forgotten: set[str] = set()  # finished jobs whose deletion may still echo
        self._stop = threading.Event()
        self.changed = threading.Event()
        self._touched: set[str] = set()  # pods whose view changed since take_touched
        self.synced = threading.Event()
        self.error: KubeError | None = None  # the last failure, None once healthy
        self.error_since: float | None = None
        self.lists = 0
        self._thread = threading.Thread(
            target=self._run, name="interlink-pod-tracker", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop and join the informer thread: nothing the executor starts outlives
        it."""
        self._stop.set()
        self.changed.set()
        self._kube.close_watches()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    # -- what status rounds read -------------------------------------------------

    def get(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._pods.get(name)

    def deleted(self, name: str) -> dict[str, Any] | None:
        """The last state of a pod that disappeared, or None."""
        with self._lock:
            return self._deleted.get(name)

    def take_touched(self) -> set[str]:
        """The pods whose view changed (added, updated, deleted) since the last call:
        a status round looks at these, not at every pod."""
        with self._lock:
            touched, self._touched = self._touched, set()
        return touched

    def names(self) -> list[str]:
        with self._lock:
            return list(self._pods)

    def pods(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._pods.values())

    def observe(self, pod: dict[str, Any]) -> None:
        """Record a pod the executor knows from elsewhere (a re-attached job's), so the
        first round need not wait for the watch; a newer state from the watch is never
        overwritten. (Created pods enter by the watch: reading each create's answer
        too cost a tenth of the client's CPU per create.)"""
        name = pod["metadata"]["name"]
        with self._lock:
            if name not in self._pods and name not in self._deleted:
                self._pods[name] = slim_pod(pod)
                self._touched.add(name)

    def forget(self, name: str) -> None:
        """The job is finished and reported: stop remembering its pod."""
        with self._lock:
            self._deleted.pop(name, None)
            if self._pods.pop(name, None) is not None:
                self._forgotten.add(name)

    def wait_for_change(self, timeout: float) -> bool:
        """Until the view changes (then a little longer, so that a burst of events
        makes one status round, not one per event) or the timeout passes."""
        if not self.changed.wait(timeout):
            return False  # not cleared: a change that comes now wakes the next wait
        if not self._stop.is_set():
            time.sleep(SETTLE_SECONDS)
        self.changed.clear()
        return True

    # -- the informer loop -------------------------------------------------------

    def _run(self) -> None:
        delays = backoff_delays()
        while not self._stop.is_set():
            try:
                version = self._relist()
                delays = backoff_delays()
                self._watch(version)
            except Gone:
                logger.debug("pod watch expired (410); listing again")
            except KubeError as e:
                if self._stop.is_set():  # stop() closed the watch
                    return
                self._failed(e)
                if self._stop.wait(next(delays)):
                    return
            except Exception as e:  # never let the tracker die silently
                if self._stop.is_set():
                    return
                logger.warning("interlink: pod tracker error: %r", e)
                self._failed(KubeError(repr(e)))
                if self._stop.wait(next(delays)):
                    return

    def _failed(self, error: KubeError) -> None:
        """Record the failure and wake the status rounds: a failure that lasts must
        end the jobs even when no pod changes (board.watch_failure)."""
        with self._lock:
            if self.error is None:
                self.error_since = time.monotonic()
            self.error = error
        self.changed.set()
        level = (
            logging.WARNING
            if isinstance(error, Forbidden | Unauthorized | NotFound)
            else logging.DEBUG
        )
        logger.log(level, "interlink: watching pods failed, retrying: %s", error)

    def _relist(self) -> str:
        items, version = self._kube.list_pods(
            self._namespace, self._selector, keep=slim_pod
        )
        self.lists += 1
        with self._lock:
            fresh = {
                p["metadata"]["name"]: p
                for p in items
                if p["metadata"]["name"] not in self._forgotten
            }
            self._forgotten &= {p["metadata"]["name"] for p in items}
            for name in self._pods.keys() - fresh.keys():
                if _newer_than(self._pods[name], version):
                    # newer than the LIST's snapshot (observed): absent from the
                    # list, not deleted
                    fresh[name] = self._pods[name]
                else:
                    self._deleted[name] = self._pods[name]
                    self._touched.add(name)
            self._touched.update(
                name
                for name, pod in fresh.items()
                if _version(self._pods.get(name)) != _version(pod)
            )
            self._pods = fresh
        self.error, self.error_since = None, None
        self.synced.set()
        self.changed.set()
        return version

    def _watch(self, version: str) -> None:
        deadline = time.monotonic() + self._relist_interval
        while not self._stop.is_set() and time.monotonic() < deadline:
            timeout = max(1, min(self._watch_timeout, int(deadline - time.monotonic())))
            for kind, obj in self._kube.watch_pods(
                self._namespace, self._selector, version, timeout
            ):
                version = (obj.get("metadata") or {}).get("resourceVersion", version)
                if kind == "BOOKMARK":
                    continue
                self._apply(kind, obj)
                if self._stop.is_set():
                    return

    def _apply(self, kind: str, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        with self._lock:
            if name in self._forgotten:
                if kind == "DELETED":
                    self._forgotten.discard(name)
                return
            if kind == "DELETED":
                if self._pods.pop(name, None) is not None:
                    self._deleted[name] = slim_pod(pod)
            else:
                self._pods[name] = slim_pod(pod)
            self._touched.add(name)
        self.changed.set()
