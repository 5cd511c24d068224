"""Each tracked job's fate from the watched view of its pod.

Reading the board sends no request: it reads the tracker's view and classifies a pod
again only when the view of it changed, its job's end was seen, or one of its timeouts
can have expired. The one exception is a pod missing from the view for
longer than a grace period: a single GET confirms it is gone before its job fails.
Whatever fails in a round (that GET, the watch) is the outcome of the jobs it concerns,
never an exception out of the round.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from .completion import JobEnds
from .kube import Forbidden, KubeClient, KubeError, NotFound, Unauthorized
from .progress import Progress
from .settings import CheckedSettings
from .status import (
    JobEnd,
    PodStatus,
    State,
    classify_pod,
    running_deadline,
    status_from_exit,
)
from .tracker import SETTLE_SECONDS, PodTracker

J = TypeVar("J")  # a job as the caller knows it
MISSING_POD_GRACE = 60.0  # seconds a created pod may be absent from the watched view
PERMANENT_ERROR_GRACE = 300.0  # 401/403/404 while watching: then the jobs fail
TRANSIENT_ERROR_GRACE = 1800.0  # API server unreachable: then the jobs fail
END_POLL_SECONDS = 0.1  # how often a wait looks for jobs' own ends (completion.py)


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
        # submission threads track pods while a status round reads these two
        self._lock = threading.Lock()
        self._tracked: set[str] = set()  # the run's pods whose jobs are not reported
        self._unknown: set[str] = set()  # tracked, in no view yet: every round
        self._rechecks: list[tuple[float, str]] = []  # heap: when a timeout may expire

    # -- what the executor tells and asks ----------------------------------------

    def track(self, name: str, pod: dict[str, Any] | None) -> None:
        """A pod the run created or re-attached to (`pod`: then it is in the view at
        once; a created pod enters it by the watch, or a GET after the grace decides),
        in the progress line, and watched for its job's own end."""
        with self._lock:
            self._tracked.add(name)
            self._unknown.add(name)  # its first round looks at it, in the view or not
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
        """Until a pod changes or a job says it ended, at the latest `timeout`. Jobs'
        ends are looked for every END_POLL_SECONDS: a job's end makes no pod change
        (interLink shows it much later), so without this it would wait for the
        interval, or for whatever else changed meanwhile. As after a pod change, the
        jobs that end at about the same moment are left SETTLE_SECONDS to make one
        round together."""
        if self._ends is None:
            return self._tracker.wait_for_change(timeout)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self._tracker.wait_for_change(min(left, END_POLL_SECONDS)):
                return True
            if self._ends.news():
                time.sleep(SETTLE_SECONDS)
                return True
        return False

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
        status, never dropped. It looks only at the jobs whose pod changed, whose end
        was seen (completion.py), whose timeout may have expired or whose pod is not
        known yet: O(changes), not O(jobs); a quiet round costs nothing."""
        failure = self.watch_failure()  # a watch failed for good: every job ends
        if failure is not None:
            return [], [(job, failure) for job in jobs]
        ended = self._ends.ended() if self._ends else {}
        names = self._due(ended)
        if not names:
            return list(jobs), []
        now = datetime.now(UTC)
        done: dict[str, PodStatus] = {}
        for name in names:
            status = self.status(name, now)
            if name in ended:
                status = status_from_exit(status, ended[name], now)
            if status is None:  # not in the view yet: looked at every round
                with self._lock:
                    self._unknown.add(name)
            elif status.state.finished:
                done[name] = status
            elif self.progress is not None:
                self.progress.update(name, status)
        if not done:
            return list(jobs), []
        active: list[J] = []
        finished: list[tuple[J, PodStatus]] = []
        for job in jobs:
            status = done.pop(pod_of(job), None)
            if status is None:
                active.append(job)
            else:
                finished.append((job, status))
        if done:  # tracked, not yet among Snakemake's active jobs: the next round
            with self._lock:
                self._unknown.update(done)
        return active, finished

    def _due(self, ended: dict[str, JobEnd]) -> set[str]:
        """The tracked pods this round must look at."""
        names = self._tracker.take_touched()
        names.update(self._missing_since, ended)
        clock = time.monotonic()
        while self._rechecks and self._rechecks[0][0] <= clock:
            names.add(heapq.heappop(self._rechecks)[1])
        with self._lock:
            names.update(self._unknown)
            self._unknown = set()
            names &= self._tracked  # another run's pods, or jobs already reported
        return names

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
            return cached[1]
        status = classify_pod(
            pod, now, self._unschedulable_timeout, self._pending_timeout
        )
        recheck_at = clock + self._seconds_until_timeout(status, now, pod)
        self._cache[name] = (version, status, recheck_at)
        if recheck_at < math.inf and not (cached and cached[2] == recheck_at):
            heapq.heappush(self._rechecks, (recheck_at, name))
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
        with self._lock:
            self._tracked.discard(name)
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
