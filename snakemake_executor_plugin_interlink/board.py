"""Each tracked job's fate from the watched view of its pod.

Reading the board sends no request: it reads the tracker's view and classifies a pod
again only when its resourceVersion changed, or when one of its timeouts can have
expired. The one exception is a pod missing from the view for
longer than a grace period: a single GET confirms it is gone before its job fails.
Whatever fails in a round (that GET, the watch) is the outcome of the jobs it concerns,
never an exception out of the round.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from .completion import JobEnds
from .kube import Forbidden, KubeClient, KubeError, NotFound, Unauthorized
from .progress import Progress
from .settings import CheckedSettings
from .status import (
    PodStatus,
    State,
    classify_pod,
    running_deadline,
    status_from_exit,
)
from .tracker import PodTracker

J = TypeVar("J")  # a job as the caller knows it
MISSING_POD_GRACE = 60.0  # seconds a created pod may be absent from the watched view
PERMANENT_ERROR_GRACE = 300.0  # 401/403/404 while watching: then the jobs fail
TRANSIENT_ERROR_GRACE = 1800.0  # API server unreachable: then the jobs fail


class StatusBoard:
    """The one owner of the run's status view: the watched pods (tracker), the jobs'
    own end signals (completion.py) and the progress line. The executor asks it and
    tells it what it submitted and reported; it never reaches the parts."""

    def __init__(
        self,
        tracker: PodTracker,
        kube: KubeClient,
        namespace: str,
        settings: CheckedSettings,
        ends: JobEnds | None = None,
        *,
        progress: Progress | None = None,
        refusal_grace: float = PERMANENT_ERROR_GRACE,
        outage_grace: float = TRANSIENT_ERROR_GRACE,
    ):
        self._tracker = tracker
        self._ends = ends
        self.progress = progress
        self._kube = kube
        self._namespace = namespace
        self._unschedulable_timeout = settings.unschedulable_timeout
        self._pending_timeout = settings.pending_timeout
        self._cache: dict[str, tuple[str, PodStatus, float]] = {}
        self._missing_since: dict[str, float] = {}
        self._refusal_grace = refusal_grace
        self._outage_grace = outage_grace
        self._known_jobs: frozenset[str] = frozenset()  # pods of the last full round
        self._seen_generation = -1
        self._next_recheck = 0.0  # monotonic time a waiting pod's timeout may expire

    # -- what the executor tells and asks ----------------------------------------

    def track(self, name: str, pod: dict[str, Any] | None) -> None:
        """A pod the run created (or re-attached to): in the view at once (unless
        its create is uncertain: then the watch, or a GET after the grace, decides),
        in the progress line, and watched for its job's own end."""
        if pod is not None:
            self._tracker.observe(pod)
        if self.progress is not None:
            self.progress.submitted(name)
        if self._ends is not None:
            self._ends.track(name)

    def finish(self, name: str, status: PodStatus) -> None:
        """The job was reported: count it, and forget its pod."""
        if self.progress is not None:
            self.progress.update(name, status)
        self.forget(name)

    def pod(self, name: str) -> dict[str, Any] | None:
        return self._tracker.get(name)

    def pods(self) -> list[dict[str, Any]]:
        return self._tracker.pods()

    def wait_for_change(self, timeout: float) -> bool:
        return self._tracker.wait_for_change(timeout)

    def wait_for_view(self, timeout: float) -> KubeError | None:
        """Wait until the first LIST completed; the watch's error if it did not."""
        if self._tracker.synced.wait(timeout):
            return None
        return self._tracker.error or KubeError("no answer")

    def stop(self) -> None:
        """Stop watching (and probing): nothing changes the view any more."""
        self._tracker.stop()
        if self._ends is not None:
            self._ends.stop()

    def print_progress(self) -> None:
        if self.progress is not None:
            self.progress.print_if_changed()

    # -- status rounds ------------------------------------------------------------

    def decide(
        self, jobs: Sequence[J], pod_of: Callable[[J], str]
    ) -> tuple[list[J], list[tuple[J, PodStatus]]]:
        """One status round: every job is either still active or finished with its
        status, never dropped. Costs no lookup when nothing can have changed; a job
        that reported its exit status (completion.py) ends without waiting for its
        pod."""
        names = frozenset(pod_of(job) for job in jobs)
        ended = self._ends.ended() if self._ends else {}
        if ended:  # a marker of a job not tracked here (another run's) changes nothing
            ended = {name: code for name, code in ended.items() if name in names}
        # a watch that fails for good changes no pod: it is looked at every round
        failure = self.watch_failure()
        if (
            not ended
            and failure is None
            and self._known_jobs == names
            and self.unchanged()
        ):
            return list(jobs), []
        self._known_jobs = names
        now = datetime.now(UTC)
        active: list[J] = []
        finished: list[tuple[J, PodStatus]] = []
        for job in jobs:
            name = pod_of(job)
            status = failure or self.status(name, now)
            if not failure and name in ended:
                status = status_from_exit(status, ended[name], now)
            if status is not None and status.state.finished:
                finished.append((job, status))
                continue
            if status is not None and self.progress is not None:
                self.progress.update(name, status)
            active.append(job)
        return active, finished

    def unchanged(self) -> bool:
        """True when nothing can have changed since the last full round: the view is
        the same and no waiting pod's timeout can have expired. Such a round needs no
        lookups."""
        generation = self._tracker.generation
        if (
            generation == self._seen_generation
            and time.monotonic() < self._next_recheck
            and not self._missing_since
        ):
            return True
        self._seen_generation = generation
        self._next_recheck = math.inf  # the status() calls of this round set it
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
        if cached and cached[0] == version and clock < cached[2]:
            status, recheck_at = cached[1], cached[2]
        else:
            status = classify_pod(
                pod, now, self._unschedulable_timeout, self._pending_timeout
            )
            recheck_at = clock + self._seconds_until_timeout(status, now, pod)
            self._cache[name] = (version, status, recheck_at)
        self._next_recheck = min(self._next_recheck, recheck_at)
        return status

    def _seconds_until_timeout(
        self, status: PodStatus, now: datetime, pod: dict[str, Any] | None = None
    ) -> float:
        """How long a pod's classification holds if the pod does not change: until
        the earliest timeout that applies to it could expire (a waiting pod's, or a
        running pod's batch time limit)."""
        if status.state == State.RUNNING:
            deadline = running_deadline(pod) if pod else None
            if deadline is None:
                return math.inf
            return max(0.0, (deadline - now).total_seconds()) + 0.01
        timeouts = [
            t for t in (self._unschedulable_timeout, self._pending_timeout) if t
        ]
        if status.state != State.WAITING or not timeouts:
            return math.inf
        since = status.scheduled or status.created or now
        return max(0.0, (since - now).total_seconds() + min(timeouts)) + 0.01

    def forget(self, name: str) -> None:
        if self._ends:
            self._ends.collect(name)
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
        grace = self._refusal_grace if permanent else self._outage_grace
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
        try:
            if self._kube.get_pod(self._namespace, name) is not None:  # view lags
                return None
        except (Forbidden, Unauthorized) as e:
            return PodStatus(
                State.FAILED,
                f"pod {name} is missing from the watched view and looking it up was "
                f"refused: {e}",
            )
        except KubeError:  # unreachable: the watch's own failure grace bounds this
            return None
        return PodStatus(
            State.FAILED, f"pod {name} no longer exists in namespace {self._namespace}"
        )
