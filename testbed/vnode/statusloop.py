"""When the virtual node learns a pod's status: the timing of interLink's status chain
(pure: the clock and the random source are passed in; no threads, no sleeps).

The real chain, which `StatusLoop` + `PluginStatusCache` + `ApiStatusCache` reproduce
(`--status-timing real`, the default):

- the VK's statusLoop (interLink pkg/virtualkubelet/virtualkubelet.go, `statusLoop`,
  f6321757): a 5 s timer reset before each wait, so a pass starts 5 s after the previous
  one ended; a pass walks a snapshot of the VK's pods map (a Go map: random order), skips
  the phases Initializing, Failed and Succeeded, and calls `checkPodsStatus` for each other
  pod in turn, one pod per /status request;
- interLink's API (pkg/interlink/api/status.go, `StatusHandler`): forwards the request to
  the plugin, stores every pod status the plugin returns by pod UID (`updateStatuses` in
  func.go) and answers with its stored status for the asked pod only (nothing when it has
  none yet); `checkPodsStatus` (pkg/virtualkubelet/execute.go) applies that answer (`ret[0]`)
  to the pod whose UID it carries, so only the asked pod can change;
- the Slurm plugin (interlink-slurm-plugin pkg/slurm/Status.go, `StatusHandler`, f8451d9):
  package-level `timer` and `cachedStatus`; when 10 s or more passed since the last fresh
  answer was stored it runs squeue, builds the answer for the pods of THIS request and stores
  it; otherwise it returns the stored answer, about whatever pod was asked then. An error
  (squeue's stderr, a missing status file) returns before storing: cache and timer unchanged;
- the HTCondor plugin (interlink-htcondor-plugin handles.py, `StatusHandler`, 6f5ee3e) has no
  cache: every request runs condor_q (then condor_history) for the asked pod. A cache of 0 s.

So about one non-terminal pod gets a fresh status per 10 s on Slurm: the first pod of the
first pass that finds the cache expired, i.e. a pod drawn at random; with N active pods a
finished job is seen after about N x 10 s on average.

`FastRounds` is the stand-in's own fast mode (`--status-timing fast`, for benchmarks of the
executor alone): every `poll` seconds, every non-terminal pod is asked and answered fresh.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")

# statusLoop never asks about pods in these phases (the snapshot's phase at the pass start)
SKIPPED_PHASES = ("Initializing", "Failed", "Succeeded")
VK_STATUS_INTERVAL = 5.0  # statusLoop's timer
SLURM_PLUGIN_CACHE = 10.0  # Status.go: timeNow.Sub(timer) >= time.Second*10


class PluginError(Exception):
    """The plugin answered /status with an error: the API hands it on, the VK keeps the status."""


def _askable(pods: Mapping[str, str | None]) -> list[str]:
    return [uid for uid, phase in pods.items() if phase not in SKIPPED_PHASES]


class StatusLoop:
    """The VK's statusLoop: passes over the non-terminal pods, one pod asked at a time.

    `take` hands out the pods of a pass one by one (a list of one pod); the pass ends when
    `take` is called with nothing left, and the next one starts `interval` seconds later.
    """

    def __init__(self, interval: float, rng: random.Random, start: float) -> None:
        self.interval = interval
        self._rng = rng
        self._left: list[str] = []
        self._in_pass = False
        self.next_pass = start + interval  # the loop starts with the VK and waits first
        self.passes = 0

    @property
    def due(self) -> float:
        """When `take` has something to do: now during a pass, else the next pass's start."""
        return float("-inf") if self._in_pass else self.next_pass

    def take(self, now: float, pods: Callable[[], Mapping[str, str | None]]) -> list[str]:
        """The pods to ask now (at most one). `pods` (uid -> phase, the VK's pods map) is read
        at the start of a pass only: that is the snapshot the pass walks."""
        if not self._in_pass:
            if now < self.next_pass:
                return []
            self._left = _askable(pods())
            self._rng.shuffle(self._left)  # Go's map order; which pod comes first is what counts
            self._in_pass = True
            self.passes += 1
        if self._left:
            return [self._left.pop()]
        self._in_pass = False
        self.next_pass = now + self.interval
        return []


class FastRounds:
    """The fast mode: every `poll` seconds one round in which every non-terminal pod is asked."""

    def __init__(self, poll: float, start: float) -> None:
        self.poll = poll
        self.next_round = start  # the first round at once
        self.rounds = 0

    @property
    def due(self) -> float:
        return self.next_round

    def take(self, now: float, pods: Callable[[], Mapping[str, str | None]]) -> list[str]:
        if now < self.next_round:
            return []
        self.rounds += 1
        return _askable(pods())

    def done(self, now: float) -> None:
        """The round is over (the next one starts `poll` seconds after it ended)."""
        self.next_round = now + self.poll


class PluginStatusCache(Generic[T]):
    """The plugin's whole-answer cache: a fresh answer at most once per `seconds`.

    An answer maps pod UID -> that pod's status. `build` makes a fresh one (it runs the batch
    query) for the pod being asked; raising PluginError leaves cache and timer untouched.
    `seconds=0`: no cache (HTCondor).
    """

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self._clock = clock
        self._timer: float | None = None  # Go's zero time: the first request is always fresh
        self._cached: dict[str, T] = {}
        self.fresh = 0  # fresh answers built, i.e. batch queries run

    def ask(self, build: Callable[[], dict[str, T]]) -> tuple[dict[str, T], bool]:
        """The answer to one /status request, and whether it is fresh."""
        if self._timer is not None and self._clock() - self._timer < self.seconds:
            return self._cached, False
        answer = build()
        self.fresh += 1
        self._cached = answer
        self._timer = self._clock()  # set after the answer is built, as in the plugin
        return answer, True


class ApiStatusCache(Generic[T]):
    """interLink API's PodStatuses: the last status the plugin returned for each pod UID."""

    def __init__(self) -> None:
        self._by_uid: dict[str, T] = {}

    def relay(self, uid: str, answer: Mapping[str, T]) -> T | None:
        """Store the plugin's answer, return the stored status of the asked pod (None: none)."""
        self._by_uid.update(answer)
        return self._by_uid.get(uid)

    def forget(self, uid: str) -> None:
        """The pod was deleted (deleteCachedStatus)."""
        self._by_uid.pop(uid, None)


def check_pod_status(
    uid: str, plugin: PluginStatusCache[T], api: ApiStatusCache[T], build: Callable[[], dict[str, T]]
) -> T | None:
    """One checkPodsStatus for pod `uid`: the status the VK gets for it (None: nothing to
    apply). Raises PluginError when the plugin answers with an error (the VK keeps the pod)."""
    answer, _ = plugin.ask(build)
    return api.relay(uid, answer)
