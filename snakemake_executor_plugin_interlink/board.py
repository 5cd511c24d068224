"""Each tracked job's fate from the watched view of its pod.

Reading the board sends no request: it reads the tracker's view and classifies a pod
again only when its resourceVersion changed (or, for a waiting pod, now and then, since
its timeouts depend on the clock). The one exception is a pod missing from the view for
longer than a grace period: a single GET confirms it is gone before its job fails.
"""

from __future__ import annotations

import time
from datetime import datetime

from .kube import Forbidden, KubeClient, NotFound, Unauthorized
from .settings import CheckedSettings
from .status import PodStatus, State, classify_pod
from .tracker import PodTracker

MISSING_POD_GRACE = 60.0  # seconds a created pod may be absent from the watched view
WAITING_RECHECK = 5.0  # seconds between re-classifications of an unchanged waiting pod
PERMANENT_ERROR_GRACE = 300.0  # 401/403/404 while watching: then the jobs fail
TRANSIENT_ERROR_GRACE = 1800.0  # API server unreachable: then the jobs fail


class StatusBoard:
    def __init__(
        self,
        tracker: PodTracker,
        kube: KubeClient,
        namespace: str,
        settings: CheckedSettings,
    ):
        self._tracker = tracker
        self._kube = kube
        self._namespace = namespace
        self._unschedulable_timeout = settings.unschedulable_timeout
        self._pending_timeout = settings.pending_timeout
        self._cache: dict[str, tuple[str, PodStatus, float]] = {}
        self._missing_since: dict[str, float] = {}
        self._seen_generation = -1
        self._last_full_round = 0.0

    def unchanged(self) -> bool:
        """True when nothing can have changed since the last full round: the view is
        the same and no clock-driven timeout is due. Such a round needs no lookups."""
        generation = self._tracker.generation
        clock = time.monotonic()
        if (
            generation == self._seen_generation
            and clock - self._last_full_round < WAITING_RECHECK
            and not self._missing_since
        ):
            return True
        self._seen_generation, self._last_full_round = generation, clock
        return False

    def status(self, name: str, now: datetime) -> PodStatus | None:
        """The state of the job whose pod is `name`; None: not known yet."""
        pod = self._tracker.get(name)
        if pod is None:
            return self._missing(name)
        self._missing_since.pop(name, None)
        version = pod["metadata"].get("resourceVersion", "")
        cached = self._cache.get(name)
        clock = time.monotonic()
        if (
            cached
            and cached[0] == version
            and (
                cached[1].state != State.WAITING or clock - cached[2] < WAITING_RECHECK
            )
        ):
            return cached[1]
        status = classify_pod(
            pod, now, self._unschedulable_timeout, self._pending_timeout
        )
        self._cache[name] = (version, status, clock)
        return status

    def forget(self, name: str) -> None:
        self._tracker.forget(name)
        self._cache.pop(name, None)
        self._missing_since.pop(name, None)

    def watch_failure(self) -> PodStatus | None:
        """A failure for every job once watching has failed for long; a restarting
        API server must fail nothing."""
        error, since = self._tracker.error, self._tracker.error_since
        if error is None or since is None:
            return None
        permanent = isinstance(error, Forbidden | Unauthorized | NotFound)
        grace = PERMANENT_ERROR_GRACE if permanent else TRANSIENT_ERROR_GRACE
        if time.monotonic() - since < grace:
            return None
        return PodStatus(
            State.FAILED,
            f"the run's pods could not be watched for {grace:.0f} s: {error}",
        )

    def _missing(self, name: str) -> PodStatus | None:
        gone = self._tracker.deleted(name)
        if gone is not None:
            status = classify_pod(gone)
            if status.state.finished and not gone["metadata"].get("deletionTimestamp"):
                return status
            return PodStatus(
                State.FAILED,
                f"pod {name} was deleted outside Snakemake (kubectl delete, an "
                "eviction or a node drain) before the job finished",
            )
        if not self._tracker.synced.is_set():
            return None
        since = self._missing_since.setdefault(name, time.monotonic())
        if time.monotonic() - since < MISSING_POD_GRACE:
            return None
        if self._kube.get_pod(self._namespace, name) is not None:  # the view lags
            return None
        return PodStatus(
            State.FAILED, f"pod {name} no longer exists in namespace {self._namespace}"
        )
