"""The running agent: watches the pods bound to its node and runs them as interLink would.

Threads: one watches the pods (a single watch with a field selector, relisting when the
watch expires); one pings the batch system and refreshes the Node; one serves logs.
Everything that touches a pod happens in the main loop, which owns the pod records: it
handles watch events, retries (missing env or volume sources), and the status timing
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
  WAIT_VOLUMES  interLink's VK wrote the initial Pending status; a ConfigMap/Secret volume
                is missing: phase "Initializing", retried every 2 s, after `cfg_timeout`
                "CFGMaps/Secrets not found" then ProviderFailed
  SUBMITTED     the plugin wrote the job and sbatch accepted it (annotation JobID)
  DONE          Succeeded/Failed; the job directory stays (logs) until the pod is deleted
"""

from __future__ import annotations

import enum
import heapq
import logging
import queue
import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import jobfiles
from .batch import Backend, BatchUnavailable, SubmitError
from .condor import CondorJob
from .condor import container_statuses as condor_container_statuses
from .kube import ApiError, Kube
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


class Stage(enum.Enum):
    WAIT_ENV = "waiting for env sources"
    WAIT_VOLUMES = "waiting for volume sources"
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

    @property
    def meta(self) -> dict[str, Any]:
        return self.pod["metadata"]

    @property
    def ref(self) -> str:
        return f"{self.meta['namespace']}/{self.meta['name']}"

    @property
    def container_names(self) -> list[str]:
        return [c["name"] for c in self.pod["spec"].get("containers") or []]


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
    ) -> None:
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
        ready, message = self.backend.ping()
        self.keeper.update(ready, message or ("batch system answers" if ready else "batch system does not answer"))

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
            due = self.status_due
            deadline = min(due, self._timers[0][0]) if self._timers else due
            try:
                kind, payload = self._events.get(timeout=max(0.0, deadline - self._clock()))
                self._guard(self._handle, kind, payload)
            except queue.Empty:
                pass
            current = self._clock()
            while self._timers and self._timers[0][0] <= current:
                when, uid = heapq.heappop(self._timers)
                record = self._records.get(uid)
                if record and record.next_try == when and record.stage in (Stage.WAIT_ENV, Stage.WAIT_VOLUMES):
                    self._guard(self._advance, record)
            if current >= self.status_due:
                self._guard(self.status_step)

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
        """A record for a pod seen for the first time, re-adopting its job if it has one."""
        directory = jobfiles.job_dir(self.config.jobs_dir, pod)
        record = PodRecord(pod=pod, job_dir=directory, status=dict(pod.get("status") or {}))
        job_id = (
            (pod["metadata"].get("annotations") or {}).get("JobID")
            or (jobfiles.read_text(directory / "JobID.jid") or "").strip()
            or None
        )
        terminal = record.status.get("phase") in TERMINAL_PHASES
        if job_id:
            record.job_id = job_id
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
        """Move a new pod towards submission (VK library env check, VK volumes, plugin create)."""
        if record.stage is Stage.WAIT_ENV:
            sources = Sources(self.kube, record.meta["namespace"])
            try:
                record.env = {c["name"]: container_env(record.pod, c, sources) for c in all_containers(record.pod)}
            except MissingSource as missing:
                self._event(record, missing.reason, missing.message)
                record.env_attempts += 1
                if record.env_attempts > self.config.env_max_retries:
                    record.stage = Stage.GAVE_UP
                    log.warning(
                        "pod %s: %s; giving up after %d retries (stays Pending)",
                        record.ref,
                        missing,
                        self.config.env_max_retries,
                    )
                    return
                delay = min(0.005 * 2**record.env_attempts, 1000.0)
                log.info("pod %s: %s; retry %d in %.2fs", record.ref, missing, record.env_attempts, delay)
                self._schedule(record, delay)
                return
            if not self._write_status(record, initial_status(record.pod, now(), self.config.address)):
                self._schedule(record, 2.0)
                return
            record.stage = Stage.WAIT_VOLUMES
            record.volumes_deadline = self._clock() + self.config.cfg_timeout
        if record.stage is Stage.WAIT_VOLUMES:
            try:
                data = volume_sources(record.pod, Sources(self.kube, record.meta["namespace"]))
            except MissingSource as missing:
                if self._clock() >= record.volumes_deadline:
                    log.warning("pod %s: %s after %.0fs; failing it", record.ref, missing, self.config.cfg_timeout)
                    self._write_status(record, cfg_not_found_status(record.status))
                    self._fail(record, CFG_TIMEOUT_ERROR)
                    return
                if record.status.get("phase") != "Initializing":
                    log.info("pod %s: %s; waiting (phase Initializing)", record.ref, missing)
                    # the VK's copy has the containers waiting by now: they come with this update
                    self._write_status(record, with_phase(created_status(record.status, record.pod), "Initializing"))
                self._schedule(record, 2.0)
                return
            if record.status.get("phase") == "Initializing":
                self._write_status(record, with_phase(record.status, "Pending"))
            self._submit(record, data)

    def _submit(self, record: PodRecord, volume_data: dict[str, dict[str, str]]) -> None:
        try:
            script, time_limit = self.backend.write_job(
                self.config.jobs_dir, record.pod, record.env, volume_data, self.config.container_path
            )
            job_id = self.backend.submit(record.job_dir, script, time_limit)
        except (jobfiles.ProviderError, SubmitError, BatchUnavailable, OSError, subprocess.SubprocessError) as exc:
            jobfiles.remove(record.job_dir)
            log.warning("pod %s: create failed: %s", record.ref, str(exc).strip()[:2000])
            self._fail(record, vk_create_error(str(exc), getattr(exc, "plugin_status", 504)))
            return
        jobfiles.record_submission(record.job_dir, record.pod, job_id)
        record.job_id = job_id
        self._dirs[(record.meta["namespace"], record.meta["name"])] = record.job_dir
        refusal = self.backend.create_refusal(record.pod, job_id)
        if refusal is not None:
            # the job was submitted and runs; the VK fails the pod without a JobID, never asks
            # its status again, and cancels the job only when the pod is deleted
            log.warning(
                "pod %s: %s job %s submitted, but the VK refuses the plugin's answer: ProviderFailed, the job runs on",
                record.ref,
                self.backend.name,
                job_id,
            )
            self._fail(record, refusal)
            return
        record.stage = Stage.SUBMITTED
        # the VK's UpdatePod after the plugin's create: JobID, and the containers' first statuses
        self._write_status(record, created_status(record.status, record.pod), annotations={"JobID": job_id})
        log.info("pod %s: submitted as %s job %s", record.ref, self.backend.name, job_id)

    def _fail(self, record: PodRecord, message: str) -> None:
        self._write_status(record, provider_failed_status(record.pod, message, now(), self.config.address))
        record.stage = Stage.DONE

    def _delete(self, record: PodRecord) -> None:
        """deletionTimestamp set: cancel the job, remove its directory, delete the pod (grace 0)."""
        self._cleanup(record)
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
        log.info("pod %s: deleted", record.ref)

    def _forget(self, uid: str) -> None:
        """The pod is gone from the API (force-deleted, or deleted by us)."""
        record = self._records.pop(uid, None)
        if record is not None:
            self._cleanup(record)
            log.info("pod %s: gone", record.ref)

    def _cleanup(self, record: PodRecord) -> None:
        if record.job_id and record.stage in (Stage.SUBMITTED, Stage.DONE):
            try:
                self.backend.cancel(record.job_id)
            except (BatchUnavailable, OSError, subprocess.SubprocessError) as exc:
                log.info("pod %s: cancel of job %s: %s", record.ref, record.job_id, exc)
        jobfiles.remove(record.job_dir)
        self._dirs.pop((record.meta["namespace"], record.meta["name"]), None)
        self._api.forget(record.meta["uid"])
        record.stage = Stage.DONE

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
            if record is not None and record.stage is Stage.SUBMITTED and record.job_id:
                self._ask(record)

    def _vk_pods(self) -> dict[str, str | None]:
        """The VK's pods map, uid -> phase: every pod it accepted (not those still waiting for env)."""
        held = (Stage.WAIT_VOLUMES, Stage.SUBMITTED, Stage.DONE)
        return {uid: r.status.get("phase") for uid, r in self._records.items() if r.stage in held}

    def _ask(self, record: PodRecord) -> None:
        """Real timing: one /status request for this pod through the plugin's cache and interLink's API."""
        uid = record.meta["uid"]

        def fresh() -> dict[str, PodAnswer]:
            job_id = record.job_id or ""
            try:
                jobs = self.backend.query([job_id])  # one batch query; only this pod's answer is built
            except BatchUnavailable as exc:
                self._batch_down(exc)
                raise PluginError(str(exc)) from exc
            self._batch_up()
            remote, note = self._plugin_answer(record, jobs.get(job_id))
            if remote is None:
                self._no_answer(record)
                raise PluginError(f"no status for job {job_id}")
            return {uid: PodAnswer(remote, note)}

        try:
            answer = check_pod_status(uid, self._plugin, self._api, fresh)
        except PluginError:
            return  # the VK logs the error and keeps the pod's status
        if answer is not None:  # None: "No status available from InterLink for pod"
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

    def _no_answer(self, record: PodRecord) -> None:
        if not record.warned:
            if self.backend.flavour == "htcondor":
                why = "in neither condor_q nor condor_history"
            else:
                why = "unknown to squeue and no status files"
            log.warning("pod %s: job %s %s: status kept", record.ref, record.job_id, why)
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
        if new.get("phase") in TERMINAL_PHASES:
            record.stage = Stage.DONE

    @staticmethod
    def _killed_for_memory(record: PodRecord) -> bool:
        text = jobfiles.read_text(record.job_dir / "job.out") or ""
        return "exceeded memory limit" in text or "Exceeded job memory limit" in text

    # ------------------------------------------------------------------ API writes
    def _write_status(self, record: PodRecord, new: dict[str, Any], annotations: dict[str, str] | None = None) -> bool:
        """Patch the status subresource (and annotations, as the VK's UpdateStatus does)."""
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
        if (reason, message) in record.events:
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
