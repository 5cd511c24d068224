"""The running agent: watches the pods bound to its node and runs them as interLink would.

Threads: one watches the pods (a single watch with a field selector, relisting when the
watch expires); one pings the batch system and refreshes the Node; one serves logs; a few
run the plugin's /create (write the job, sbatch) off the main loop, as interLink's CreatePod
returns before the remote create has finished. Everything else that touches a pod happens
in the main loop, which owns the pod records: it handles watch events (one at a time, as
interLink's single pod sync worker: a pod whose CreatePod blocks holds up all others),
retries (missing env or volume sources), the creations' results, and the status timing
(statusloop.py), patching a pod's status subresource only when the VK's view of it changes:
  real (default)  the VK's statusLoop: every `vk_status_interval` (5 s) after the previous
                  pass, a pass over the non-terminal pods in random order, one pod per
                  plugin /status request, between which events are handled; the plugin
                  answers from its whole-answer cache unless `plugin_status_cache` (10 s;
                  none for HTCondor) passed, and then queries the batch system for the
                  asked pod only; interLink's API relays the asked pod's last status
  fast            every `poll` seconds ONE query for all jobs, every pod updated (benchmarks)

Per pod, the stages are those of the real chain:
  WAIT_ENV      the virtual-kubelet library cannot resolve an env source: Warning event,
                exponential backoff (5 ms doubling, at most 1000 s), dropped after 20 tries;
                the pod stays Pending with no status from the node (as with the real VK)
  MESH          (--full-mesh) CreatePod is stuck in the wstunnel set-up, which cannot work
                here (mesh.py): the pod sync worker waits ~31 s, then ProviderFailed
  WAIT_VOLUMES  CreatePod returned (initial Pending written, the pod is in the VK's map);
                RemoteExecution's goroutine waits for a missing ConfigMap/Secret volume:
                phase "Initializing" (its own copy of the pod), retried every 2 s, after
                `cfg_timeout` "CFGMaps/Secrets not found" then ProviderFailed
  CREATING      the remote create is in flight (`create_delay`, then the plugin writes the job
                and runs sbatch in a worker thread); the VK's status passes ask about the pod
                meanwhile and the plugin, which has no JobID for it, answers empty states
  SUBMITTED     sbatch accepted the job; the VK wrote the annotation JobID
  DONE          Succeeded/Failed; the job directory stays (logs) until the pod is deleted

A pod deleted in WAIT_VOLUMES or CREATING is forgotten by the VK, but its creation runs on
(`_ghosts`): the Slurm plugin's /delete found no JobID (it panics) and cancelled nothing,
so the job is submitted anyway and runs orphaned. After a restart only pods with a JobID
annotation are re-adopted; the others are created again (a second job if the first one
was submitted), while the plugin still knows the jobs of its job directories (LoadJIDs).
"""

from __future__ import annotations

import copy
import enum
import functools
import heapq
import logging
import math
import queue
import random
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import jobfiles
from .batch import Backend, BatchUnavailable
from .condor import CondorJob
from .condor import container_statuses as condor_container_statuses
from .kube import ApiError, Kube
from .mesh import failed_setup, mesh_disabled
from .node import NodeKeeper, NodeSpec, now
from .resolve import MissingSource, Sources, container_env, volume_sources
from .sbatch import CONTAINER_PATH, all_containers
from .status import (
    CFG_TIMEOUT_ERROR,
    TERMINAL_PHASES,
    JobView,
    cfg_not_found_status,
    created_status,
    initial_status,
    job_kind,
    merge_patch,
    plugin_container_statuses,
    plugin_unknown_pod_statuses,
    provider_error_status,
    provider_failed_status,
    squeue_exit_code,
    vk_create_error,
    vk_merge,
    with_phase,
)
from .statusloop import (
    SLURM_PLUGIN_CACHE,
    VK_STATUS_INTERVAL,
    ApiStatusCache,
    FastRounds,
    PluginError,
    PluginStatusCache,
    StatusLoop,
    check_pod_status,
)

log = logging.getLogger(__name__)
STATUS_TIMINGS = ("real", "fast")
CREATE_DELAY = 0.5  # seconds from CreatePod's return to the plugin's sbatch, besides sbatch's own time
CREATE_WORKERS = 8  # plugin /create calls handled at once
RELEASED_PING = "interLink ping answered 200: plugins up to 0.6.2-pre5 do not check sinfo's exit status"


class Stage(enum.Enum):
    WAIT_ENV = "waiting for env sources"
    MESH = "CreatePod blocked in the mesh network set-up"
    WAIT_VOLUMES = "waiting for volume sources"
    CREATING = "remote create in flight"
    SUBMITTED = "submitted"
    DONE = "done"
    GAVE_UP = "dropped by the VK's work queue"


@dataclass(frozen=True)
class AgentConfig:
    node: str
    state_dir: Path
    address: str = "127.0.0.1"
    port: int = 10250
    poll: float = 1.0  # fast timing: seconds between status rounds
    status_timing: str = "real"  # "real": the VK's loop and the plugin's cache; "fast": every pod each `poll`
    vk_status_interval: float = VK_STATUS_INTERVAL  # real timing: seconds between statusLoop passes
    plugin_status_cache: float = SLURM_PLUGIN_CACHE  # real timing: the Slurm plugin's cache (HTCondor: none)
    ping_interval: float = 30.0  # seconds between pings / Node refreshes (vk nodeUpdate: 30 s)
    container_path: str = CONTAINER_PATH  # PATH inside the stand-in "container"
    cfg_timeout: float = 300.0  # how long a missing ConfigMap/Secret volume is waited for
    env_max_retries: int = 20  # the virtual-kubelet work queue's MaxRetries
    create_delay: float = CREATE_DELAY  # latency of the remote create before sbatch (the orphan window)
    full_mesh: bool = False  # the site's interLink has Network.FullMesh (mesh.py)
    ping_always_ok: bool = False  # a released plugin (<= 0.6.2-pre5): the ping is 200 even with Slurm down
    capacity_from_batch: bool = True  # interLink 0.6.2 + plugin HEAD: cpu/memory = the free resources
    capacity: dict[str, str] = field(
        default_factory=lambda: {"cpu": "8", "memory": "49Gi", "pods": "100", "nvidia.com/gpu": "0"}
    )
    labels: dict[str, str] = field(default_factory=dict)  # extra Node labels (the VK's NodeLabels)
    taints: tuple[dict[str, str], ...] = ()  # extra Node taints (the VK's NodeTaints)

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"


@dataclass
class PodRecord:
    pod: dict[str, Any]
    job_dir: Path
    stage: Stage = Stage.WAIT_ENV
    status: dict[str, Any] = field(default_factory=dict)  # what the pod's status is (as we wrote it)
    job_id: str | None = None
    env: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    env_attempts: int = 0
    events: set[tuple[str, str]] = field(default_factory=set)
    volumes_deadline: float = 0.0
    next_try: float = 0.0
    started_at: str | None = None
    finished_at: str | None = None
    last_seen: Any = None  # fast timing: what the batch system said about the job at the last round
    warned: bool = False
    in_vk: bool = False  # in the VK's pods map (CreatePod returned, or re-adopted from its JobID)
    vk_status: dict[str, Any] | None = None  # the VK's own copy of the status while the creation runs
    offload_status: dict[str, Any] = field(default_factory=dict)  # RemoteExecution's copy (volume wait)
    volume_data: dict[str, dict[str, str]] = field(default_factory=dict)
    deleted: bool = False  # gone from the API while its creation runs on (writes go nowhere)
    error: str = ""  # the mesh set-up's error

    @property
    def meta(self) -> dict[str, Any]:
        return self.pod["metadata"]

    @property
    def ref(self) -> str:
        return f"{self.meta['namespace']}/{self.meta['name']}"

    @property
    def container_names(self) -> list[str]:
        return [c["name"] for c in self.pod["spec"].get("containers") or []]

    @property
    def vk_phase(self) -> str | None:
        """The phase of the VK's own copy (what its statusLoop looks at)."""
        return (self.vk_status if self.vk_status is not None else self.status).get("phase")


class _Workers:
    """A few daemon threads running the plugin's /create calls (dying with the agent, as the
    requests of a VK that stops)."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue()
        self._started = False

    def submit(self, job: Callable[[], None]) -> None:
        if not self._started:
            self._started = True
            for i in range(self._count):
                threading.Thread(target=self._work, name=f"create-{i}", daemon=True).start()
        self._queue.put(job)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                job()
            except Exception:  # the job reports its own errors; this is a bug
                log.exception("create worker")


@dataclass(frozen=True)
class PodAnswer:
    """The plugin's status of one pod, as interLink's API stores and relays it."""

    remote: list[dict[str, Any]]  # container statuses
    note: str  # what the batch system said (for the log)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        kube: Kube,
        backend: Backend,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        spawn: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        """`spawn` runs a plugin /create off the main loop (default: a few worker threads;
        tests pass a function that runs it at once)."""
        if config.status_timing not in STATUS_TIMINGS:
            raise ValueError(f"status timing {config.status_timing!r}: expected one of {', '.join(STATUS_TIMINGS)}")
        self.config = config
        self.kube = kube
        self.backend = backend
        self._clock = clock
        spec = NodeSpec(
            config.node,
            config.address,
            config.port,
            dict(config.capacity),
            runtime=backend.name,
            extra_labels=dict(config.labels),
            extra_taints=config.taints,
        )
        self.keeper = NodeKeeper(kube, spec)
        self._records: dict[str, PodRecord] = {}
        self._dirs: dict[tuple[str, str], Path] = {}  # (namespace, pod name) -> job dir, read by the logs server
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._timers: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._batch_down_since: float | None = None
        start = clock()
        self._timing: StatusLoop | FastRounds
        if config.status_timing == "fast":
            self._timing = FastRounds(config.poll, start)
        else:
            self._timing = StatusLoop(config.vk_status_interval, rng or random.Random(), start)
        # the HTCondor plugin has no cache: every request is answered fresh
        cache = 0.0 if backend.flavour == "htcondor" else config.plugin_status_cache
        self._plugin: PluginStatusCache[PodAnswer] = PluginStatusCache(cache, clock)
        self._api: ApiStatusCache[PodAnswer] = ApiStatusCache()
        self._spawn = spawn or _Workers(CREATE_WORKERS).submit
        self._ghosts: dict[str, PodRecord] = {}  # deleted pods whose creation still runs
        self._mesh: PodRecord | None = None  # the pod whose CreatePod holds the VK's only pod worker
        self._backlog: OrderedDict[str, tuple[str, Any]] = OrderedDict()  # pod events waiting for it
        self._deferred: list[str] = []  # env retries waiting for it
        # The plugin's JIDs map (pod uid -> job id), filled when sbatch returns and, at start,
        # from the job directories (LoadJIDs); the create workers write it.
        self._jids_lock = threading.Lock()
        self._plugin_jids: dict[str, str] = {}
        for uid, (job_id, directory) in jobfiles.load_jids(config.jobs_dir).items():
            self._plugin_jids[uid] = job_id
            backend.adopt(job_id, directory)

    # ------------------------------------------------------------------ threads
    def start_background(self) -> None:
        self.config.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.keeper.register()
        # interLink's nodeUpdate pings first after 30 s: until then the node is NotReady
        self.keeper.update(False, "waiting for the first ping of interLink")
        threading.Thread(target=self._node_loop, name="node", daemon=True).start()
        threading.Thread(target=self._watch_loop, name="watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def locate(self, namespace: str, name: str) -> Path | None:
        """The job directory of a pod, for the logs server (None: not a pod of ours)."""
        directory = self._dirs.get((namespace, name))
        return directory if directory is not None and directory.exists() else None

    def _refresh_node(self) -> None:
        if self.config.ping_always_ok:  # and its answer (sinfo -s text) carries no resources
            self.keeper.update(True, RELEASED_PING)
            return
        ready, message, resources = self.backend.ping()
        self.keeper.update(
            ready,
            message or ("batch system answers" if ready else "batch system does not answer"),
            resources if self.config.capacity_from_batch else None,
        )

    def _node_loop(self) -> None:
        while not self._stop.wait(self.config.ping_interval):
            try:
                self._refresh_node()
            except ApiError as exc:
                if exc.status == 404:
                    self.keeper.register()
                log.warning("node refresh failed: %s", exc)
            except Exception:  # keep the heartbeat thread alive whatever happens
                log.exception("node refresh failed")

    def _watch_loop(self) -> None:
        path, selector = "/api/v1/pods", f"spec.nodeName={self.config.node}"
        client = self.kube.new_stream_client()
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    listing = self.kube.get(path, fieldSelector=selector)
                    version = listing["metadata"]["resourceVersion"]
                    self._events.put(("SYNC", listing["items"]))
                params = {"fieldSelector": selector, "resourceVersion": version, "timeoutSeconds": 300}
                for event in self.kube.watch(client, path, params):
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        raise ApiError(obj.get("code", 0), obj.get("message", ""), obj.get("reason", ""))
                    version = obj["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        self._events.put((kind, obj))
            except ApiError as exc:
                if exc.status != 410:
                    log.warning("pod watch: %s; relisting", exc)
                    time.sleep(1)
                version = None
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("pod watch broke (%s); relisting", exc)
                version = None
                time.sleep(1)

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        """Process events, retries and status requests until stop() is called."""
        while not self._stop.is_set():
            deadline = min(self.status_due, self._timers[0][0] if self._timers else math.inf)
            try:
                kind, payload = self._events.get(timeout=max(0.0, deadline - self._clock()))
                self._guard(self._handle, kind, payload)
            except queue.Empty:
                pass
            self._fire_timers()
            if self._clock() >= self.status_due:
                self._guard(self.status_step)

    def pump(self) -> None:
        """Handle every queued event and every due timer, without waiting (the status timing
        is status_step's): what run() does between two waits."""
        while True:
            handled = False
            while True:
                try:
                    kind, payload = self._events.get_nowait()
                except queue.Empty:
                    break
                self._guard(self._handle, kind, payload)
                handled = True
            if not self._fire_timers() and not handled:
                return

    def _fire_timers(self) -> bool:
        fired = False
        current = self._clock()
        while self._timers and self._timers[0][0] <= current:
            when, uid = heapq.heappop(self._timers)
            record = self._records.get(uid) or self._ghosts.get(uid)
            if record is None or record.next_try != when:
                continue
            fired = True
            if record.stage is Stage.MESH:
                self._guard(self._mesh_failed, record)
            elif record.stage is Stage.WAIT_ENV and self._mesh is not None:
                self._deferred.append(uid)  # the library's work queue: its only worker is busy
            elif record.stage in (Stage.WAIT_ENV, Stage.WAIT_VOLUMES):
                self._guard(self._advance, record)
            elif record.stage is Stage.CREATING:
                self._guard(self._dispatch_create, record)
        return fired

    @staticmethod
    def _guard(function: Any, *args: Any) -> None:
        try:
            function(*args)
        except Exception:  # one bad pod must not stop the node
            log.exception("error in %s", getattr(function, "__name__", function))

    def _schedule(self, record: PodRecord, delay: float) -> None:
        record.next_try = self._clock() + delay
        heapq.heappush(self._timers, (record.next_try, record.meta["uid"]))

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "CREATED":  # a plugin /create returned (a goroutine of RemoteExecution)
            self._created(*payload)
        elif self._mesh is not None:  # the VK's only pod worker is stuck in a CreatePod
            self._defer(kind, payload)
        else:
            self._sync(kind, payload)

    def _defer(self, kind: str, payload: Any) -> None:
        """Keep a pod event for the worker: one entry per pod, its latest state (a work queue
        holds keys, and the worker reads the pod as it is when it gets to it)."""
        if kind == "SYNC":
            present = {pod["metadata"]["uid"] for pod in payload}
            for uid, record in self._records.items():
                if uid not in present:
                    self._backlog[uid] = ("DELETED", record.pod)
            for pod in payload:
                self._backlog[pod["metadata"]["uid"]] = ("MODIFIED", pod)
        else:
            self._backlog[payload["metadata"]["uid"]] = (kind, payload)

    def _drain_backlog(self) -> None:
        while self._mesh is None and (self._backlog or self._deferred):
            if self._backlog:
                _, (kind, payload) = self._backlog.popitem(last=False)
                self._guard(self._sync, kind, payload)
                continue
            record = self._records.get(self._deferred.pop(0))
            if record is not None and record.stage is Stage.WAIT_ENV:
                self._guard(self._advance, record)

    def _sync(self, kind: str, payload: Any) -> None:
        if kind == "SYNC":
            present = {pod["metadata"]["uid"] for pod in payload}
            for uid in [uid for uid in self._records if uid not in present]:
                self._forget(uid)
            for pod in payload:
                self._on_pod(pod)
        elif kind == "DELETED":
            self._forget(payload["metadata"]["uid"])
        else:
            self._on_pod(payload)

    # ------------------------------------------------------------------ pod lifecycle
    def _on_pod(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        record = self._records.get(uid)
        if record is None:
            record = self._records[uid] = self._new_record(pod)
            if record.stage is Stage.WAIT_ENV and not pod["metadata"].get("deletionTimestamp"):
                log.info("pod %s: new (uid %s)", record.ref, uid)
                self._advance(record)
        else:
            record.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self._delete(record)

    def _new_record(self, pod: dict[str, Any]) -> PodRecord:
        """A record for a pod seen for the first time, re-adopting its job if it has one.

        Only the annotation JobID counts (interLink's RetrievePodsFromCluster): a pod without it
        is created again, even when its job directory says a job was submitted."""
        directory = jobfiles.job_dir(self.config.jobs_dir, pod)
        record = PodRecord(pod=pod, job_dir=directory, status=dict(pod.get("status") or {}))
        job_id = (pod["metadata"].get("annotations") or {}).get("JobID") or None
        terminal = record.status.get("phase") in TERMINAL_PHASES
        if job_id:
            record.job_id = job_id
            record.in_vk = True
            record.stage = Stage.DONE if terminal else Stage.SUBMITTED
            record.started_at = (jobfiles.read_text(directory / "StartedAt.time") or "").strip() or None
            record.finished_at = (jobfiles.read_text(directory / "FinishedAt.time") or "").strip() or None
            self.backend.adopt(job_id, directory)
            self._dirs[(record.meta["namespace"], record.meta["name"])] = directory
            log.info(
                "pod %s: re-adopted %s job %s (%s)", record.ref, self.backend.name, job_id, record.status.get("phase")
            )
        elif terminal:
            record.stage = Stage.DONE
        return record

    def _advance(self, record: PodRecord) -> None:
        """Move a new pod towards its remote create (VK library env check, the VK's CreatePod,
        RemoteExecution's volume wait); the create itself runs off the main loop."""
        if record.stage is Stage.WAIT_ENV:
            sources = Sources(self.kube, record.meta["namespace"])
            try:
                record.env = {c["name"]: container_env(record.pod, c, sources) for c in all_containers(record.pod)}
            except MissingSource as missing:
                self._event(record, missing.reason, missing.message)
                self._requeue(record, str(missing))
                return
            if self.config.full_mesh and not mesh_disabled(record.pod):
                self._begin_mesh(record)
                return
            if not self._create_pod(record):
                return
        if record.stage is Stage.WAIT_VOLUMES:
            try:
                data = volume_sources(record.pod, Sources(self.kube, record.meta["namespace"]))
            except MissingSource as missing:
                if self._clock() >= record.volumes_deadline:
                    log.warning("pod %s: %s after %.0fs; failing it", record.ref, missing, self.config.cfg_timeout)
                    self._write_status(record, cfg_not_found_status(record.offload_status))
                    self._fail(record, CFG_TIMEOUT_ERROR)
                    return
                if record.offload_status.get("phase") != "Initializing":
                    log.info("pod %s: %s; waiting (phase Initializing)", record.ref, missing)
                    record.offload_status = with_phase(record.offload_status, "Initializing")
                    self._write_status(record, record.offload_status)
                self._schedule(record, 2.0)
                return
            if (record.pod.get("spec") or {}).get("volumes"):
                # remoteExecutionHandleVolumes writes its copy, phase Pending, after each volume
                record.offload_status = with_phase(record.offload_status, "Pending")
                self._write_status(record, record.offload_status)
            record.volume_data = data
            record.stage = Stage.CREATING
            self._schedule(record, self.config.create_delay)

    def _requeue(self, record: PodRecord, why: str) -> None:
        """The virtual-kubelet work queue retries the pod: 5 ms doubling, at most 1000 s,
        dropped after `env_max_retries` (the pod then stays as it is)."""
        record.env_attempts += 1
        if record.env_attempts > self.config.env_max_retries:
            record.stage = Stage.GAVE_UP
            log.warning("pod %s: %s; giving up after %d retries", record.ref, why, self.config.env_max_retries)
            return
        record.stage = Stage.WAIT_ENV
        delay = min(0.005 * 2**record.env_attempts, 1000.0)
        log.info("pod %s: %s; retry %d in %.2fs", record.ref, why, record.env_attempts, delay)
        self._schedule(record, delay)

    def _create_pod(self, record: PodRecord) -> bool:
        """interLink's CreatePod: the initial status (no containers yet), the pod enters the
        VK's map with its containers waiting `Remote pod submitted`, RemoteExecution starts."""
        initial = initial_status(record.pod, now(), self.config.address)
        if not self._write_status(record, initial):
            self._schedule(record, 2.0)
            return False
        record.in_vk = True
        record.vk_status = created_status(initial, record.pod)
        record.offload_status = copy.deepcopy(record.vk_status)  # RemoteExecution's pod.DeepCopy()
        record.stage = Stage.WAIT_VOLUMES
        record.volumes_deadline = self._clock() + self.config.cfg_timeout
        return True

    def _begin_mesh(self, record: PodRecord) -> None:
        """CreatePod's synchronous wstunnel set-up, which fails here (mesh.py): the VK's only pod
        worker is held until it gives up."""
        blocked, record.error = failed_setup(record.pod)
        record.stage = Stage.MESH
        self._mesh = record
        self._schedule(record, blocked)
        log.info("pod %s: CreatePod sets up the mesh network (the pod worker waits %.0fs)", record.ref, blocked)

    def _mesh_failed(self, record: PodRecord) -> None:
        """CreatePod returned the set-up's error: the library's handleProviderError."""
        self._mesh = None
        log.warning("pod %s: create failed: %s", record.ref, record.error)
        self._event(record, "ProviderCreateFailed", record.error)
        policy = (record.pod.get("spec") or {}).get("restartPolicy")
        self._write_status(record, provider_error_status(record.status, record.error, policy))
        if policy == "Never":
            record.stage = Stage.DONE
        else:  # Pending, and the work queue syncs the pod again: another CreatePod
            self._requeue(record, record.error)
        self._drain_backlog()

    def _dispatch_create(self, record: PodRecord) -> None:
        """createRequest reaches the plugin: its /create runs in a worker."""
        self._spawn(
            functools.partial(
                self._remote_create, record.meta["uid"], record.pod, record.env, record.volume_data, record.job_dir
            )
        )

    def _remote_create(
        self,
        uid: str,
        pod: dict[str, Any],
        env: dict[str, list[tuple[str, str]]],
        volume_data: dict[str, dict[str, str]],
        job_dir: Path,
    ) -> None:
        """The plugin's /create (any thread): write the job, sbatch, remember the JobID."""
        try:
            script, time_limit = self.backend.write_job(
                self.config.jobs_dir, pod, env, volume_data, self.config.container_path
            )
            job_id = self.backend.submit(job_dir, script, time_limit)
        except Exception as exc:  # whatever fails, the plugin answers an error and the VK reports it
            jobfiles.remove(job_dir)
            error = vk_create_error(str(exc) or type(exc).__name__, getattr(exc, "plugin_status", 504))
            self._events.put(("CREATED", (uid, None, error)))
            return
        jobfiles.record_submission(job_dir, pod, job_id)
        with self._jids_lock:  # handleJidAndPodUid
            self._plugin_jids[uid] = job_id
        # a plugin build whose /create answers anything but 200 (htcondor HEAD: 201): the job
        # was submitted and runs, but the VK takes the answer for a failure
        refusal = self.backend.create_refusal(pod, job_id)
        self._events.put(("CREATED", (uid, job_id, refusal)))

    def _created(self, uid: str, job_id: str | None, error: str | None) -> None:
        """RemoteExecution's create returned: the VK writes the JobID, or ProviderFailed with
        the error (then `job_id`, if any, is a job the plugin submitted all the same)."""
        ghost = self._ghosts.pop(uid, None)
        if ghost is not None:
            if job_id is None:
                log.info("pod %s: deleted while its creation ran; the create failed: %s", ghost.ref, error)
                return
            with self._jids_lock:
                orphaned = self._plugin_jids.get(uid) == job_id
            if orphaned:
                log.warning(
                    "pod %s: deleted while its creation ran; %s job %s was submitted anyway and keeps running, "
                    "orphaned (the plugin's delete found no JobID)",
                    ghost.ref,
                    self.backend.name,
                    job_id,
                )
            else:
                log.info("pod %s: deleted while its creation ran; its delete cancelled job %s", ghost.ref, job_id)
            return
        record = self._records.get(uid)
        if record is None or record.stage is not Stage.CREATING:
            return
        if error is not None:
            if job_id is not None:
                # submitted and running; the VK fails the pod without a JobID, never asks its
                # status again, and cancels the job only when the pod is deleted
                record.job_id = job_id
                self._dirs[(record.meta["namespace"], record.meta["name"])] = record.job_dir
                log.warning(
                    "pod %s: %s job %s submitted, but the VK refuses the plugin's answer: ProviderFailed, "
                    "the job runs on",
                    record.ref,
                    self.backend.name,
                    job_id,
                )
            else:
                log.warning("pod %s: create failed: %s", record.ref, error.strip()[:2000])
            self._fail(record, error)
            return
        record.job_id = job_id
        vk = record.vk_status if record.vk_status is not None else created_status(record.status, record.pod)
        record.vk_status = None
        record.stage = Stage.DONE if vk.get("phase") in TERMINAL_PHASES else Stage.SUBMITTED
        self._dirs[(record.meta["namespace"], record.meta["name"])] = record.job_dir
        # the VK's UpdatePod after the plugin's create: its copy of the pod, with the JobID
        self._write_status(record, vk, annotations={"JobID": job_id})
        log.info("pod %s: submitted as %s job %s", record.ref, self.backend.name, job_id)

    def _fail(self, record: PodRecord, message: str) -> None:
        """handleRemoteExecutionFailure: ProviderFailed, every container exits 1 with the error."""
        self._write_status(record, provider_failed_status(record.pod, message, now(), self.config.address))
        record.stage = Stage.DONE
        record.vk_status = None
        self._ghosts.pop(record.meta["uid"], None)

    def _delete(self, record: PodRecord) -> None:
        """deletionTimestamp set: the VK's DeletePod (the plugin's /delete), then the pod is
        deleted with grace 0."""
        self._vk_delete(record)
        meta = record.meta
        try:
            self.kube.delete(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise
        self._records.pop(meta["uid"], None)
        self._keep_creating(record)
        log.info("pod %s: deleted", record.ref)

    def _forget(self, uid: str) -> None:
        """The pod is gone from the API (force-deleted, or deleted by us)."""
        record = self._records.pop(uid, None)
        if record is not None:
            self._vk_delete(record)
            self._keep_creating(record)
            log.info("pod %s: gone", record.ref)

    def _keep_creating(self, record: PodRecord) -> None:
        """RemoteExecution's goroutine does not stop with the pod: the volume wait and the
        remote create go on, their status writes reach no pod."""
        if record.stage in (Stage.WAIT_VOLUMES, Stage.CREATING):
            record.deleted = True
            self._ghosts[record.meta["uid"]] = record
            log.info("pod %s: deleted while its creation runs; the creation goes on", record.ref)

    def _vk_delete(self, record: PodRecord) -> None:
        """interLink's DeletePod for a pod in its map: the plugin's /delete, which cancels the
        job of the JobID it knows, removes it and the job directory (prepare.go
        deleteContainer). Without a JobID the Slurm plugin panics (nil JidStruct) and the
        HTCondor plugin answers 404: nothing is cancelled. A failed scancel leaves both."""
        self._dirs.pop((record.meta["namespace"], record.meta["name"]), None)
        if not record.in_vk:
            return
        record.in_vk = False
        uid = record.meta["uid"]
        self._api.forget(uid)
        with self._jids_lock:
            job_id = self._plugin_jids.get(uid)
        if job_id is None:
            why = "answers 404" if self.backend.flavour == "htcondor" else "panics"
            log.warning("pod %s: the plugin's delete finds no JobID and %s: nothing cancelled", record.ref, why)
            return
        try:
            self.backend.cancel(job_id)
        except (BatchUnavailable, OSError, subprocess.SubprocessError) as exc:
            log.warning("pod %s: cancel of job %s failed (%s); the plugin keeps job and dir", record.ref, job_id, exc)
            return
        with self._jids_lock:
            if self._plugin_jids.get(uid) == job_id:
                del self._plugin_jids[uid]
        jobfiles.remove(record.job_dir)

    # ------------------------------------------------------------------ status timing
    @property
    def status_due(self) -> float:
        """When status_step has something to do (-inf: at once, in the middle of a pass)."""
        return self._timing.due

    def status_step(self) -> None:
        """What the status timing asks for now: one pod of a pass (real), or a round (fast)."""
        now = self._clock()
        if isinstance(self._timing, FastRounds):
            if now < self._timing.due:
                return
            uids = self._timing.take(now, self._vk_pods)
            try:
                if uids:
                    self._poll(uids)
            finally:
                self._timing.done(self._clock())
            return
        for uid in self._timing.take(now, self._vk_pods):
            record = self._records.get(uid)
            if record is not None and record.in_vk and record.stage is not Stage.DONE:
                self._ask(record)

    def _vk_pods(self) -> dict[str, str | None]:
        """The VK's pods map, uid -> the phase of its copy: every pod whose CreatePod returned
        (a creation in progress reads Pending there: "Initializing" is RemoteExecution's copy)."""
        return {uid: r.vk_phase for uid, r in self._records.items() if r.in_vk}

    def _ask(self, record: PodRecord) -> None:
        """Real timing: one /status request for this pod through the plugin's cache and
        interLink's API; the plugin answers from its JobID for the pod, if it has one yet."""
        uid = record.meta["uid"]

        def fresh() -> dict[str, PodAnswer]:
            with self._jids_lock:
                job_id = self._plugin_jids.get(uid)
            if job_id is None and self.backend.flavour == "htcondor":
                raise PluginError("no .jid file for the pod")  # handles.py StatusHandler cannot open it
            try:
                jobs = self.backend.query([job_id] if job_id else [])  # squeue; only this pod's answer is built
            except BatchUnavailable as exc:
                self._batch_down(exc)
                raise PluginError(str(exc)) from exc
            self._batch_up()
            if job_id is None:
                return {uid: PodAnswer(plugin_unknown_pod_statuses(record.container_names), "no JobID yet")}
            remote, note = self._plugin_answer(record, jobs.get(job_id))
            if remote is None:
                self._no_answer(record, job_id)
                raise PluginError(f"no status for job {job_id}")
            return {uid: PodAnswer(remote, note)}

        try:
            answer = check_pod_status(uid, self._plugin, self._api, fresh)
        except PluginError:
            answer = None  # the VK logs the error and keeps the pod's status
        if record.vk_status is not None:
            # a creation in progress: the answer lands in the VK's copy, which the statusLoop
            # then writes (asyncUpdate), whatever the answer was
            if answer is not None:
                record.vk_status = vk_merge(record.vk_status, answer.remote)
            self._write_status(record, record.vk_status)
        elif answer is not None:  # None: an error, or "No status available from InterLink for pod"
            self._apply_remote(record, answer.remote, answer.note)

    def _poll(self, uids: list[str]) -> None:
        """Fast timing: ONE batch query for all the pods of the round, each pod updated."""
        active = [r for u in uids if (r := self._records.get(u)) and r.stage is Stage.SUBMITTED and r.job_id]
        if not active:
            return
        try:
            jobs = self.backend.query([r.job_id for r in active if r.job_id])
        except BatchUnavailable as exc:
            self._batch_down(exc)
            return
        self._batch_up()
        for record in active:
            info = jobs.get(record.job_id or "")
            if info is not None and info == record.last_seen:
                continue  # same answer as last round: the VK's view cannot change
            record.last_seen = info
            self._guard(self._update, record, info)

    def _update(self, record: PodRecord, info: Any) -> None:
        remote, note = self._plugin_answer(record, info)
        if remote is None:
            self._no_answer(record)
            record.last_seen = None  # ask again next round
            return
        self._apply_remote(record, remote, note)

    def _batch_down(self, exc: Exception) -> None:
        if self._batch_down_since is None:
            self._batch_down_since = self._clock()
            log.warning("%s does not answer (%s): keeping the last known pod statuses", self.backend.name, exc)

    def _batch_up(self) -> None:
        if self._batch_down_since is not None:
            log.warning("%s answers again after %.0fs", self.backend.name, self._clock() - self._batch_down_since)
            self._batch_down_since = None

    def _no_answer(self, record: PodRecord, job_id: str | None = None) -> None:
        if not record.warned:
            if self.backend.flavour == "htcondor":
                why = "in neither condor_q nor condor_history"
            else:
                why = "unknown to squeue and no status files"
            log.warning("pod %s: job %s %s: status kept", record.ref, job_id or record.job_id, why)
            record.warned = True

    def _plugin_answer(self, record: PodRecord, info: Any) -> tuple[list[dict[str, Any]] | None, str]:
        """The plugin's container statuses for one pod from what the batch system says about
        its job (None: the plugin answers with an error), and a note for the log."""
        if self.backend.flavour == "htcondor":
            job: CondorJob | None = info
            return condor_container_statuses(record.container_names, job, now()), (
                f"JobStatus {job.status}" if job else ""
            )
        state = info.state if info else None
        if state == "F" and self._killed_for_memory(record):
            state = "OOM"  # what a cgroup-enabled Slurm reports (see README)
        view = JobView(state, squeue_exit_code(info.exit_field) if info else None)
        kind = job_kind(state) if state is not None else "unknown"
        if kind == "running" and record.started_at is None:
            record.started_at = now()
            (record.job_dir / "StartedAt.time").write_text(record.started_at)
        if kind == "terminated" and record.finished_at is None:
            record.finished_at = now()
            (record.job_dir / "FinishedAt.time").write_text(record.finished_at)
        view.started_at, view.finished_at = record.started_at, record.finished_at
        if kind == "terminated":  # getExitCode: run-<ctn>.status, else init-<ctn>.status
            view.status_files = jobfiles.status_files(record.job_dir, record.container_names)
        elif kind == "unknown":  # squeue failed: run-<ctn>.status only (Status.go)
            view.status_files = {
                n: jobfiles.read_text(record.job_dir / f"run-{n}.status") for n in record.container_names
            }
        return plugin_container_statuses(record.container_names, view), str(state)

    def _apply_remote(self, record: PodRecord, remote: list[dict[str, Any]], state: str) -> None:
        new = vk_merge(record.status, remote)
        old_phase = record.status.get("phase")
        if not self._write_status(record, new):
            record.last_seen = None  # try again next round
            return
        if new.get("phase") != old_phase:
            log.info("pod %s: %s (job %s, %s)", record.ref, new.get("phase"), record.job_id, state)
            if new.get("phase") == "Failed" and (tail := jobfiles.output_tail(record.job_dir)):
                log.info("pod %s: the end of the job's output:\n%s", record.ref, tail)
        if new.get("phase") in TERMINAL_PHASES:
            record.stage = Stage.DONE

    @staticmethod
    def _killed_for_memory(record: PodRecord) -> bool:
        text = jobfiles.read_text(record.job_dir / "job.out") or ""
        return "exceeded memory limit" in text or "Exceeded job memory limit" in text

    # ------------------------------------------------------------------ API writes
    def _write_status(self, record: PodRecord, new: dict[str, Any], annotations: dict[str, str] | None = None) -> bool:
        """Patch the status subresource (and annotations, as the VK's UpdateStatus does).
        Nothing for a deleted pod: the library drops updates of pods it no longer knows."""
        if record.deleted:
            return True
        body: dict[str, Any] = {}
        patch = merge_patch(record.status, new)
        if patch:
            body["status"] = patch
        if annotations:
            body["metadata"] = {"annotations": annotations}
        if not body:
            return True
        meta = record.meta
        try:
            self.kube.patch(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status", body)
        except ApiError as exc:
            log.warning("pod %s: status update failed: %s", record.ref, exc)
            return False
        record.status = new
        return True

    def _event(self, record: PodRecord, reason: str, message: str) -> None:
        """A Warning event on the pod, once per reason and message (the VK's recorder)."""
        if record.deleted or (reason, message) in record.events:
            return
        record.events.add((reason, message))
        meta = record.meta
        stamp = now()
        body = {
            "metadata": {"generateName": f"{meta['name']}."},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": "Warning",
            "source": {"component": f"{self.config.node}/pod-controller"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.kube.post(f"/api/v1/namespaces/{meta['namespace']}/events", body)
        except ApiError as exc:
            log.info("pod %s: event not recorded: %s", record.ref, exc)
