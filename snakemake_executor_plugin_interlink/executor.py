"""The Snakemake executor: wires settings, pods, the API, status, logs; nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import SharedFSUsage

from .access import api_problem, check_access
from .board import StatusBoard
from .cleanup import CANCEL_WAIT_SECONDS, RunCleanup
from .completion import ExitMarkers, LogProbe
from .grouplog import first_failed, logged_jobs
from .jobargs import check_target_jobs, shell_words
from .kube import (
    CreateUncertain,
    KubeClient,
    KubeError,
    load_access,
)
from .logs import (
    group_log_path,
    log_path,
    store_log,
    with_kept_output,
    write_log,
)
from .pod import (
    CONTAINER,
    NO_RETRIES_IN_JOB,
    RUN_LABEL,
    GroupSpec,
    JobSpec,
    RunContext,
    check_env_for_htcondor,
    env_changed_by_htcondor_line,
    job_title,
    pod_for_job,
    requested,
    secret_name,
    wildcards_text,
)
from .progress import Progress
from .report import (
    JobRow,
    failure_message,
    jobs_tsv,
    member_rows,
    oversized_requests,
    timeline_html,
)
from .resources import group_job_resources, unbounded_group_warning
from .runs import (
    MARKERS,
    Leftovers,
    RunMarker,
    finished_runs,
    job_key,
    orphans,
    parse_marker,
    run_of,
    runs_selector,
)
from .secret import SecretError, secret_manifest
from .settings import CheckedSettings
from .status import (
    PodStatus,
    State,
    job_end_in_log,
    may_have_ended,
    with_usage,
)
from .termination import TerminationGrace
from .tracker import PodTracker

CLEANUP_SECONDS = 30.0  # per request, at the end of a run
TERMINATED_CLEANUP_SECONDS = 5.0  # per request, after SIGTERM
EARLIER_RUNS_LIST_SECONDS = 60.0  # to see what killed runs of this directory left


class Executor(RemoteExecutor):
    def __init__(self, workflow: Any, logger: Any) -> None:
        # the base class starts its status thread before __post_init__ has run
        self._ready = threading.Event()
        self._cancelling = False
        self.termination = TerminationGrace(math.inf)  # its grace from the settings
        # what shutdown stops, closes and joins, in reverse order of creation; a
        # start-up that fails releases what it had started
        self._started = contextlib.ExitStack()
        try:
            super().__init__(workflow, logger)
        except BaseException:
            self._started.close()
            self._stop_status_thread()
            raise

    def _stop_status_thread(self) -> None:
        """The base class's status thread, which no shutdown stops when start-up
        failed: nobody holds this executor then."""
        thread = getattr(self, "wait_thread", None)
        if thread is None:
            return
        with self.lock:
            self.wait = False
        if thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=10)

    def __post_init__(self) -> None:
        self.settings: CheckedSettings = self.workflow.executor_settings.checked
        self.termination.seconds = self.settings.termination_grace
        try:
            access = load_access(
                self.settings.context, self.settings.kubeconfig, self.settings.namespace
            )
        except KubeError as e:
            raise WorkflowError(str(e)) from None
        self.kube = KubeClient(
            access, max_connections=self.settings.max_concurrent_submissions + 2
        )
        self._started.callback(self.kube.close)
        self.namespace = access.namespace
        self.cleanup = RunCleanup(self.kube, self.namespace, self.logger)
        env = self.envvars()
        shared_fs = (
            SharedFSUsage.INPUT_OUTPUT in self.workflow.storage_settings.shared_fs_usage
        )
        run_id = str(uuid.uuid4())
        self.markers = self._exit_markers() if shared_fs else None
        self.run = RunContext(
            run_id=run_id,
            namespace=self.namespace,
            workdir=os.getcwd(),
            image=self.workflow.remote_execution_settings.container_image,
            shared_fs=shared_fs,
            exit_dir=str(self.markers.directory) if self.markers else None,
            output_dir=str(self.markers.outputs) if self.markers else None,
            reporter=str(self.markers.reporter) if self.markers else None,
            secret_name=secret_name(run_id) if env else None,
            env_names=tuple(sorted(env)),
            env_changed_on_htcondor=env_changed_by_htcondor_line(env),
            storage_plugin_packages=self._storage_plugin_packages(),
            host=socket.gethostname(),
            user=_user_name(),
        )
        self.logger.info(
            f"interlink: run {run_id} in namespace {self.namespace} via "
            f"{access.source}, "
            f"{'shared filesystem' if shared_fs else 'object storage'} mode"
        )
        self._pool = ThreadPoolExecutor(
            max_workers=self.settings.max_concurrent_submissions,
            thread_name_prefix="interlink",
        )
        self._started.callback(self._close_pool)
        self._secret_created = False
        self._undeleted: set[str] = set()  # pods whose delete failed (API down)
        self._adopted: set[str] = set()  # pods of killed runs this run re-attached to
        self._adopted_runs: set[str] = set()
        self._marker_dir = Path.cwd() / MARKERS
        self._earlier_runs = self._mark_run()  # before anything of the run exists
        self._started.callback(self._release_markers)  # runs before _close_pool
        self._check_access(bool(env))
        tracker = PodTracker(
            self.kube,
            self.namespace,
            runs_selector({run_id, *self._earlier_runs}),
            self.settings.relist_interval,
        )
        probe = None if self.markers else self._log_probe(tracker)
        ends = self.markers or probe
        # the one owner of the status view from here on
        self.board = StatusBoard(
            tracker,
            self.kube,
            self.namespace,
            self.settings,
            ends,
            progress=Progress(self.logger),
            refusal_grace=self.settings.refusal_tolerance,
        )
        tracker.start()
        if probe is not None:
            probe.start()
        self._started.callback(self.board.stop)
        self._see_earlier_runs()
        self._create_secret(env)
        self.next_seconds_between_status_checks = self.settings.status_interval
        self._kept: set[str] = set()
        self._rows: list[JobRow] = []  # the run report
        self._requested: dict[str, tuple[float | None, float | None]] = {}
        self._leftovers: Leftovers | None = None  # of earlier runs, once listed
        self._warned_rules: set[str] = set()
        self._closed = False
        self._ready.set()

    def _mark_run(self) -> set[str]:
        """The runs this directory started (runs.py), then this run's own marker,
        written before any pod or Secret of it exists."""
        folder = self._marker_dir
        earlier: set[str] = set()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for path in folder.iterdir():
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    marker = parse_marker(path.name, path.read_text())
                    if marker is not None:
                        earlier.add(marker.run_id)
            own = RunMarker(
                run_id=self.run.run_id,
                host=self.run.host,
                user=self.run.user,
                pid=os.getpid(),
                started=time.time(),
            )
            partial = folder / f".{own.run_id}.tmp"
            partial.write_text(own.text())
            partial.replace(folder / own.run_id)
        except OSError as e:
            raise WorkflowError(
                f"interlink: cannot record this run in {folder} ({e}). Each run "
                "records itself there, so that a later run in this directory can "
                "re-attach to its pods or remove them (and never another directory's): "
                "make that directory writable."
            ) from None
        if earlier:
            self.logger.info(
                f"interlink: {len(earlier)} earlier run(s) of this directory may have "
                "left pods: re-attaching to those of unchanged jobs"
            )
        return earlier

    def _see_earlier_runs(self) -> None:
        """Refuse to start when the pods of this directory's earlier runs cannot be
        listed: re-attach could not decide, and a killed run's pods would run beside
        new ones writing the same outputs."""
        if not self._earlier_runs:
            return
        error = self.board.wait_for_view(EARLIER_RUNS_LIST_SECONDS)
        if error is None:
            return
        raise WorkflowError(
            "interlink: could not list the pods of this directory's earlier runs "
            f"within {EARLIER_RUNS_LIST_SECONDS:.0f} s ({error}), so this run cannot "
            "tell which jobs a killed run still runs and would run them twice. Check "
            "the connection to the API server and run again. To start afresh instead, "
            f"delete those runs' pods (kubectl -n {self.namespace} delete pods,secrets "
            f"-l '{runs_selector(self._earlier_runs)}') and remove {self._marker_dir}."
        )

    def _release_markers(self) -> None:
        """At the end: the markers of runs with no pod left go (this run's, those
        it adopted from, those whose pods were removed), with their Secrets and what
        their jobs left in the exit and output directories; a run with pods left
        keeps its marker, so that a later run still finds them."""
        known = {self.run.run_id, *self._earlier_runs}
        if not self._ready.is_set() and not self._secret_created:
            done = {self.run.run_id}  # start-up failed before anything was created
        else:
            try:
                left, _ = self.kube.list_pods(self.namespace, runs_selector(known))
            except KubeError as e:
                self.logger.warning(
                    f"interlink: could not list the run's pods to close its record "
                    f"in {self._marker_dir} ({e}); the next run here will"
                )
                return
            done = finished_runs(known, left)
        for run in sorted(done):
            if run not in (self.run.run_id, *self._adopted_runs):  # shutdown's own
                self._delete("Secret", secret_name(run))
            if self.markers:
                self.markers.forget_run(run)
            with contextlib.suppress(FileNotFoundError):
                (self._marker_dir / run).unlink()

    def _close_pool(self) -> None:
        """Join the submission threads without waiting out a request's retries: the
        client is closed first, so what still runs in them fails at once."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.kube.close()
        self._pool.shutdown(wait=True)

    def _exit_markers(self) -> ExitMarkers | None:
        """Where jobs report their end themselves; without it, pod status alone
        (slow at width: see completion.py) still decides."""
        markers = ExitMarkers(Path.cwd())
        try:
            markers.prepare()
        except OSError as e:
            self.logger.warning(
                f"interlink: cannot create {markers.directory} ({e}); finished jobs "
                "are noticed only when interLink updates their pods"
            )
            return None
        return markers

    def _log_probe(self, tracker: PodTracker) -> LogProbe | None:
        """Without a shared filesystem, jobs print their end; read it at a bounded
        rate from the logs of submitted pods."""
        if not self.settings.log_probe_rate:
            return None
        return LogProbe(
            self.kube,
            self.namespace,
            CONTAINER,
            self.settings.log_probe_rate,
            self.settings.log_probe_period,
            lambda name: may_have_ended(tracker.get(name)),
            self.settings.insecure_log_backend,
        )

    # -- what jobs run as --------------------------------------------------------

    def get_python_executable(self) -> str:
        return "python"  # the job image's, never the submitting machine's

    def additional_general_args(self) -> str:
        """Retries belong to the main Snakemake, which gives each attempt a new pod.
        A string: format_job_exec joins it as one item (the base class says a list)."""
        return NO_RETRIES_IN_JOB

    def _storage_plugin_packages(self) -> tuple[str, ...]:
        provider = self.workflow.storage_settings.default_storage_provider
        if not (self.settings.deploy_storage_plugins and provider):
            return ()
        from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

        return (StoragePluginRegistry().get_plugin_package_name(provider),)

    def get_job_args(self, job: JobExecutorInterface) -> str:
        """Snakemake's, with each value quoted so that the shell passes it unchanged
        (jobargs.py): wildcards and file names with quotes, `$` or `\\` included."""
        return shell_words(super().get_job_args(job))

    @staticmethod
    def _wildcards(job: JobExecutorInterface) -> dict[str, str]:
        wildcards = getattr(job, "wildcards_dict", None) or {}
        return {str(k): str(v) for k, v in wildcards.items()}

    def job_spec(self, job: JobExecutorInterface, key: str) -> JobSpec:
        """`key`: job_key(job), which run_jobs computes once per job."""
        check_target_jobs(job.get_target_spec())
        resources = dict(job.resources.items())
        group = None
        if job.is_group():
            group = _group_spec(job)
            resources = group_job_resources(
                resources, [_member_resources(j) for j in job.jobs]
            )
        return JobSpec(
            jobid=job.jobid,
            rule=job_title(job.name, group),
            attempt=job.attempt,
            threads=job.threads,
            resources=resources,
            command=self.format_job_exec(job),
            wildcards=self._wildcards(job),
            outputs=tuple(map(str, job.output)),
            key=key,
            group=group,
        )

    # -- start-up checks ---------------------------------------------------------

    def _check_access(self, needs_secrets: bool) -> None:
        if self.settings.flavour == "htcondor":
            check_env_for_htcondor(self.run, "--interlink-flavour htcondor")
        probe, _ = pod_for_job(
            JobSpec(
                jobid=0,
                rule="preflight",
                attempt=0,
                threads=1,
                resources={},
                command="true",
            ),
            self.settings,
            self.run,
        )
        check_access(self.kube, self.namespace, needs_secrets, probe, self._pool)

    def _api_problem(self, what: str, error: KubeError) -> str:
        return api_problem(what, self.namespace, self.kube.access.source, error)

    def _create_secret(self, env: dict[str, str]) -> None:
        """Environment values travel in one per-run Secret, never in the pod spec."""
        if not env or self.run.secret_name is None:
            return
        try:
            manifest = secret_manifest(self.run.secret_name, self.run.labels, env)
        except SecretError as e:
            raise WorkflowError(str(e)) from None
        try:
            self.kube.create_secret(self.namespace, manifest)
        except KubeError as e:
            raise WorkflowError(
                self._api_problem("create the run's Secret", e)
            ) from None
        self._secret_created = True

    # -- submission ---------------------------------------------------------------

    def run_job(self, job: JobExecutorInterface) -> None:
        self.run_jobs([job])

    def run_jobs(self, jobs: list[JobExecutorInterface]) -> None:
        """Validate the whole ready set first (bad resources fail before any pod of
        it exists), then create the pods concurrently, bounded by the setting."""
        self.termination.install()
        manifests = []
        resumed = []
        for job in jobs:
            key = job_key(job)  # formats the rule's code: once per job
            pod = self._pod_to_resume(job, key)
            if pod is not None:
                resumed.append((job, pod))
                continue
            spec = self.job_spec(job, key)
            manifest, res = pod_for_job(spec, self.settings, self.run)
            warnings = list(res.warnings)
            if spec.group is not None:
                unbounded = unbounded_group_warning(
                    spec.group.readable,
                    job.threads,
                    self.workflow.resource_settings.cores,
                )
                warnings += [unbounded] if unbounded else []
            for warning in warnings:
                if job.name not in self._warned_rules:
                    self.logger.warning(f"interlink: {warning}")
            self._warned_rules.add(job.name)
            manifests.append(manifest)
            self._requested[manifest["metadata"]["name"]] = requested(manifest)
        for job, pod in resumed:
            name = pod["metadata"]["name"]
            self.logger.info(
                f"interlink: job {job.jobid} re-attached to pod {name} of a killed run"
            )
            self._requested[name] = requested(pod)  # its spec is the one we made
            self.board.track(name, pod)
            self.report_job_submission(
                SubmittedJobInfo(job, external_jobid=name, aux={"pod": name})
            )
        jobs = [job for job in jobs if all(job is not r for r, _ in resumed)]
        for job in jobs:
            self.run_job_pre(job)
        pending = dict(
            zip((m["metadata"]["name"] for m in manifests), jobs, strict=True)
        )
        for manifest, result in self.kube.create_pods(
            self.namespace, manifests, self._pool
        ):
            name = manifest["metadata"]["name"]
            info = SubmittedJobInfo(
                pending[name], external_jobid=name, aux={"pod": name}
            )
            if isinstance(result, KubeError):
                if isinstance(result, CreateUncertain):
                    # the server may hold the pod: its status decides, not a guess
                    self.logger.warning(
                        f"interlink: creating pod {name} gave up ({result}) and it "
                        "could not be removed; tracking it in case it exists"
                    )
                else:
                    self.report_job_error(
                        info, msg=self._api_problem(f"create pod {name}", result)
                    )
                    continue
            self.board.track(name, None)
            self.report_job_submission(info)

    def _pod_to_resume(
        self, job: JobExecutorInterface, key: str
    ) -> dict[str, Any] | None:
        """A pod that an earlier, killed run of this directory (proven by its marker,
        runs.py) made for this very job, still pending, running or succeeded:
        re-attach instead of running the job again. Pods of those runs that write the
        job's outputs for another version of it are stopped first. (Snakemake's own
        record of external ids is overwritten by the jobs themselves on a shared
        filesystem, so the pod's annotations decide.)"""
        if not self._earlier_runs:
            return None
        if self._leftovers is None:  # the view is complete: start-up waited for it
            self._leftovers = Leftovers(self.board.pods(), self._earlier_runs)
        claim = self._leftovers.claim(key, map(str, job.output))
        for stale in claim.stop:
            self._stop_stale(stale, job)
        pod = claim.adopt
        if pod is not None:
            self._adopted_runs.add(run_of(pod))
            self._adopted.add(pod["metadata"]["name"])
        return pod

    def _stop_stale(self, pod: dict[str, Any], job: JobExecutorInterface) -> None:
        """Delete a pod of an earlier run of this directory that would write the
        job's outputs beside the job's new pod, and wait (bounded) until the virtual
        node has cancelled its batch job."""
        name = pod["metadata"]["name"]
        self.logger.warning(
            f"interlink: pod {name} of an earlier run writes outputs of job "
            f"{job.jobid} (rule {job.name}) for another version of it (the rule, its "
            "params or its files changed): deleting it before the job runs again"
        )
        self._delete("pod", name)
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while self.board.pod(name) is not None:
            if time.monotonic() > deadline:
                self.logger.warning(
                    f"interlink: pod {name} is still being deleted by the virtual node "
                    "(is it Ready?); its batch job may still write those outputs"
                )
                return
            self.board.wait_for_change(0.5)

    # -- SIGTERM -----------------------------------------------------------------

    def _cancel_after_grace(self, active_jobs: list[SubmittedJobInfo]) -> None:
        """After SIGTERM's grace: cancel what still runs, as Ctrl-C does, with a short
        request budget so that an API outage cannot hold the exit. The pods cannot be
        left for a later run: Snakemake's end-of-run cleanup removes the empty output
        directories the running jobs would write into."""
        self.kube.limit_retries(TERMINATED_CLEANUP_SECONDS)
        self.cancel_jobs(active_jobs)
        for info in active_jobs:
            self.report_job_error(
                info,
                msg=(
                    "interlink: Snakemake was terminated (SIGTERM) and the job did "
                    "not end within --interlink-termination-grace "
                    f"({self.settings.termination_grace} s): its pod "
                    f"{info.external_jobid} was cancelled. Run the workflow again to "
                    "run it."
                ),
            )

    # -- status -------------------------------------------------------------------

    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        """Decide every job's fate from the watched view; no request per job. A job is
        either yielded (still active) or reported, never dropped."""
        if not self._ready.is_set() or self._cancelling:
            # not started yet, or our own deletion of the run's pods under way
            for info in active_jobs:
                yield info
            return
        if self.termination.over():  # whatever the API does: bounded
            await asyncio.to_thread(self._cancel_after_grace, active_jobs)
            return
        # in a thread: a round may send one GET (board.py), never on the event loop
        active, finished = await asyncio.to_thread(
            self.board.decide, active_jobs, lambda info: info.external_jobid
        )
        for info in active:
            yield info
        if finished:
            results = await asyncio.gather(
                *(asyncio.to_thread(self._collect, i, s) for i, s in finished),
                return_exceptions=True,
            )
            for (info, status), result in zip(finished, results, strict=True):
                if self._cancelling:
                    yield info  # cancelled meanwhile: not a failure of the job
                    continue
                if isinstance(result, BaseException):  # the job's outcome stands
                    self.logger.warning(
                        f"interlink: collecting pod {info.external_jobid} failed: "
                        f"{result!r}"
                    )
                    result = (self._log_path(info), f"[interlink] {result!r}\n")
                self._report(info, status, *result)
        self.board.print_progress()

    def _log_path(self, info: SubmittedJobInfo) -> Path:
        job = info.job
        if job.is_group():
            group = _group_spec(job)
            return group_log_path(
                self.settings.log_dir,
                group.readable,
                group.rules,
                job.jobid,
                job.attempt,
            )
        return log_path(
            self.settings.log_dir,
            job.name,
            self._wildcards(job),
            job.jobid,
            job.attempt,
        )

    def _collect(self, info: SubmittedJobInfo, status: PodStatus) -> tuple[Path, str]:
        """Store the log, then delete the pod (interLink drops the log with it). A
        succeeded job's log is the output it kept on the shared filesystem: no request.
        A failed job's is interLink's, which adds what the site said (its batch job,
        the container's end); the kept output stands in where interLink serves none."""
        name = info.external_jobid
        path = self._log_path(info)
        pod = self.board.pod(name)
        limit = self.settings.log_limit_mb * 2**20
        kept = self.markers.take_output(name, limit) if self.markers else None
        if kept is not None and kept.whole and status.state == State.SUCCEEDED:
            text = write_log(path, kept.text)
        elif pod is None or not pod["spec"].get("nodeName"):
            where = "was deleted" if pod is None else "never reached a virtual node"
            note = f"[interlink] pod {name} {where}: there is no log to fetch\n"
            text = write_log(path, with_kept_output(note, kept))
        else:
            text = store_log(
                self.kube,
                self.namespace,
                name,
                path,
                limit,
                self.settings.insecure_log_backend,
                kept,
            )
        keep = status.state == State.FAILED and self.settings.keep_failed_pods
        if keep:
            self._kept.add(name)
        else:
            self._delete("pod", name)
        return path, text

    def _report(
        self, info: SubmittedJobInfo, status: PodStatus, path: Path, text: str
    ) -> None:
        name = info.external_jobid
        job = info.job
        if status.used_cpu_seconds is None:  # no exit file: what it used, from its log
            end = job_end_in_log(name, text)
            if end is not None:
                status = with_usage(status, end)
        cpus, memory_mb = self._requested.pop(name, (None, None))
        row = JobRow(
            rule=job.name,
            wildcards=wildcards_text(self._wildcards(job)),
            pod=name,
            attempt=job.attempt,
            status=status,
            submitted=status.created,
            cpus_requested=cpus,
            memory_requested_mb=memory_mb,
        )
        logged = logged_jobs(text) if job.is_group() else {}  # parsed once
        if job.is_group():
            members = [(j.name, self._wildcards(j)) for j in job.jobs]
            self._rows.extend(member_rows(row, members, logged))
        else:
            self._rows.append(row)
        self.board.finish(name, status)
        info.aux = {**(info.aux or {}), "status": status, "log": str(path)}
        if status.state == State.SUCCEEDED:
            self.report_job_success(info)
            return
        msg = failure_message(
            job.jobid,
            name,
            status,
            text,
            str(path),
            self.namespace if name in self._kept else None,
            group=job.groupid if job.is_group() else None,
            culprit=first_failed(logged),
        )
        self.report_job_error(info, msg=msg, aux_logs=[str(path)])

    def print_job_error(
        self, job_info: SubmittedJobInfo, msg: str | None = None, **kwargs: Any
    ) -> None:
        """Snakemake's GroupJob.log_error drops the message and lists every job of
        the group as failed: the executor's message, which names the one that failed
        and shows its log, is printed after it."""
        super().print_job_error(job_info, msg, **kwargs)
        if msg and job_info.job.is_group():
            self.logger.error(msg)

    async def sleep(self) -> None:
        """Wake as soon as the watched view changes, at the latest after the
        interval."""
        if not self._ready.is_set():
            await asyncio.sleep(0.1)
            return
        await asyncio.to_thread(
            self.board.wait_for_change, self.settings.status_interval
        )

    # -- cancel and shutdown -------------------------------------------------------

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        """Delete every pod of the run by its label, not only the jobs handed in: during
        a status round Snakemake hands over an empty list."""
        self._cancelling = True
        if not self.termination.received:  # Ctrl-C: an API outage must not hold it
            self.kube.limit_retries(CLEANUP_SECONDS)
        self.board.stop()
        # a wide submission may still be creating pods: stop it before deleting
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.cleanup.cancel(self._runs_selector())

    def _runs_selector(self) -> str:
        """This run and the killed runs it re-attached to."""
        return runs_selector({self.run.run_id, *self._adopted_runs})

    def _write_report(self) -> None:
        if self.settings.no_report or not self._rows:
            return
        folder = Path(".snakemake", "interlink_reports", self.run.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "jobs.tsv").write_text(jobs_tsv(self._rows))
        (folder / "timeline.html").write_text(
            timeline_html(self._rows, f"Snakemake run {self.run.run_id}")
        )
        self.logger.info(
            f"interlink: run report in {folder}/ (jobs.tsv, timeline.html)"
        )

    def _delete(self, kind: str, name: str) -> None:
        """Delete one pod or Secret; a failure is reported, never raised, since
        cleanup goes on with the rest."""
        delete = self.kube.delete_pod if kind == "pod" else self.kube.delete_secret
        try:
            delete(self.namespace, name)
        except KubeError as e:
            self.logger.warning(f"interlink: could not delete {kind} {name}: {e}")
            if kind == "pod":  # the status view forgets reported jobs: shutdown retries
                self._undeleted.add(name)
        else:
            self._undeleted.discard(name)

    def _handle_orphans(self, ours: set[str]) -> None:
        """Pods of killed runs of this directory (proven by their markers, runs.py)
        that no job re-attached to: list them with the command that removes them (and
        their runs' Secrets), or remove them when asked. Another user's or machine's
        pods in the same namespace and path are never among them."""
        found = orphans(self.board.pods(), self._earlier_runs, ours)
        if not found:
            return
        names = sorted(p["metadata"]["name"] for p in found)
        runs = sorted({run_of(p) for p in found})
        if self.settings.remove_orphans:
            # one deletecollection for all of them; the pods of those runs that jobs
            # re-attached to stay
            adopted = [
                p["metadata"]["name"]
                for p in self.board.pods()
                if run_of(p) in runs and p["metadata"]["name"] in ours
            ]
            removed = self.cleanup.delete_remaining(
                runs_selector(runs), adopted, "the pods of earlier runs"
            )
            for run in runs:
                self._delete("Secret", secret_name(run))
            if removed:
                self.logger.info(
                    f"interlink: removed {len(names)} pod(s) of earlier runs in this "
                    "directory that no job re-attached to"
                )
            return
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        self.logger.warning(
            f"interlink: {len(names)} pod(s) of earlier runs in this directory were "
            f"not re-attached ({shown}). Remove them with: kubectl -n "
            f"{self.namespace} delete pods,secrets -l '{runs_selector(runs)}' (or run "
            "with --interlink-remove-orphans)"
        )

    def shutdown(self) -> None:
        super().shutdown()
        self.termination.restore()
        if self._closed:
            return
        self._closed = True
        self.kube.limit_retries(
            CLEANUP_SECONDS
            if not self.termination.received
            else TERMINATED_CLEANUP_SECONDS
        )
        self.board.stop()
        ours = [
            pod["metadata"]["name"]
            for pod in self.board.pods()
            if pod["metadata"].get("labels", {}).get(RUN_LABEL) == self.run.run_id
            or pod["metadata"]["name"] in self._adopted
        ]
        self._handle_orphans(set(ours) | self._kept)
        # else cancel_jobs deleted them by label, or said how
        if not self._cancelling and (set(ours) | self._undeleted) - self._kept:
            self.cleanup.delete_remaining(self._runs_selector(), self._kept)
        secrets = [secret_name(run) for run in self._adopted_runs if run]
        if self._secret_created and self.run.secret_name:
            secrets.append(self.run.secret_name)
        for secret in secrets:
            self._delete("Secret", secret)
        self.board.print_progress()
        oversized = oversized_requests(self._rows)
        if oversized:
            self.logger.warning(oversized)
        self._write_report()
        stats = self.kube.stats
        self.logger.info(
            f"interlink: {stats.requests} API requests ({stats.retries} retried), "
            f"{stats.bytes_received / 1e6:.1f} MB received"
        )
        self._started.close()


def _group_spec(job: Any) -> GroupSpec:
    return GroupSpec(name=job.groupid, rules=tuple(sorted(job.rules)), members=len(job))


def _member_resources(job: Any) -> dict[str, Any]:
    """A group member's own resources; one whose resources depend on a file the group
    makes first cannot tell them yet (Snakemake's GroupJob skips it too)."""
    try:
        return dict(job.resources.items())
    except (FileNotFoundError, WorkflowError):
        return {}


def _user_name() -> str:
    """Who runs Snakemake, for the pods' labels; a container user without a passwd
    entry has only a number."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid())
