"""Batch backends: real Slurm, or local subprocesses with the same interface and states
(HTCondor, the third, is in htcondor.py).

The Slurm and local ones report jobs with Slurm's compact state codes (PD, R, CG, CD, F, TO,
CA, OOM, ...) and the job's exit code, which is all the Slurm plugin's status logic reads.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import jobfiles
from .capacity import host_resources, parse_sinfo_json, parse_sinfo_text

log = logging.getLogger(__name__)


class BatchUnavailable(Exception):
    """The batch system did not answer; callers keep the last known state."""


class SubmitError(Exception):
    """The batch system refused the job; the text is what it said."""


@dataclass(frozen=True)
class JobInfo:
    state: str  # Slurm compact state code
    exit_field: str  # squeue's exit_code column as printed (22.05: the raw wait status, e.g. 768 for exit 3)


class Backend(Protocol):
    name: str
    flavour: str  # whose plugin it stands in for: "slurm" or "htcondor"

    def write_job(
        self,
        root: Path,
        pod: dict[str, Any],
        env: dict[str, list[tuple[str, str]]],
        volume_data: dict[str, dict[str, str]],
        container_path: str,
    ) -> tuple[Path, int | None]: ...

    def submit(self, job_dir: Path, script: Path, time_limit: int | None) -> str: ...

    def create_refusal(self, pod: dict[str, Any], job_id: str) -> str | None:
        """The VK's error when it refuses the plugin's answer to a create that submitted
        `job_id` (the job runs on regardless); None when it accepts it."""
        ...

    def query(self, job_ids: list[str]) -> dict[str, Any]:
        """job id -> what the plugin reads about it (JobInfo, or condor.CondorJob); comparable."""
        ...

    def cancel(self, job_id: str) -> None: ...

    def adopt(self, job_id: str, job_dir: Path) -> None: ...

    def ping(self) -> tuple[bool, str, dict[str, str] | None]:
        """(ready, message, the free cpu/memory the plugin's ping answer carries; None: none)."""
        ...


def _run(argv: list[str], timeout: float = 60.0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)


class _SlurmJobFiles:
    """job.slurm + job.sh, as the interLink Slurm plugin writes them (`job_script_template`:
    the site's interLink renders a JobScriptTemplate, which the plugin runs instead)."""

    flavour = "slurm"
    job_script_template = False
    sandboxed: jobfiles.SandboxConfig | None = None  # --sandbox bwrap

    def write_job(
        self,
        root: Path,
        pod: dict[str, Any],
        env: dict[str, list[tuple[str, str]]],
        volume_data: dict[str, dict[str, str]],
        container_path: str,
    ) -> tuple[Path, int | None]:
        return jobfiles.write_job(root, pod, env, volume_data, container_path, self.job_script_template, self.sandboxed)

    def create_refusal(self, pod: dict[str, Any], job_id: str) -> str | None:
        return None  # the Slurm plugin's /create answers 200


class SlurmBackend(_SlurmJobFiles):
    """sbatch / squeue / scancel / sinfo, as the interLink Slurm plugin calls them."""

    name = "slurm"
    _SUBMITTED = re.compile(r"Submitted batch job (\d+)")

    def __init__(self, job_script_template: bool = False) -> None:
        self.job_script_template = job_script_template

    def submit(self, job_dir: Path, script: Path, time_limit: int | None) -> str:
        result = _run(["sbatch", str(script)], cwd=job_dir)
        # The plugin treats ANY output on stderr as a failed submission (even a warning).
        if result.stderr.strip():
            raise SubmitError(result.stderr)
        match = self._SUBMITTED.search(result.stdout)
        if not match:
            raise SubmitError(result.stdout or f"sbatch exited with {result.returncode}")
        return match.group(1)

    def query(self, job_ids: list[str]) -> dict[str, JobInfo]:
        """One squeue for every job slurmctld knows (completed ones stay for MinJobAge)."""
        try:
            result = _run(
                ["squeue", "--noheader", "-a", "--states=all", "-O", "JobID:|,StateCompact:|,exit_code:|"], timeout=30
            )
        except subprocess.TimeoutExpired as exc:
            raise BatchUnavailable("squeue timed out") from exc
        if result.returncode != 0:
            raise BatchUnavailable((result.stderr or result.stdout).strip())
        wanted = set(job_ids)
        jobs: dict[str, JobInfo] = {}
        for line in result.stdout.splitlines():
            fields = [f.strip() for f in line.split("|")]
            if len(fields) < 3 or fields[0] not in wanted:
                continue
            jobs[fields[0]] = JobInfo(fields[1], fields[2])
        return jobs

    def cancel(self, job_id: str) -> None:
        result = _run(["scancel", job_id], timeout=30)
        if result.returncode != 0:
            raise BatchUnavailable(result.stderr.strip() or f"scancel exited with {result.returncode}")

    def adopt(self, job_id: str, job_dir: Path) -> None:
        """Nothing to do: slurmctld remembers its jobs."""

    def ping(self) -> tuple[bool, str, dict[str, str] | None]:
        """The plugin HEAD's ping (Status.go `getClusterResources`): `sinfo --json`, else
        `sinfo --noheader --format=%c|%m|%e`; any stderr of the latter fails the ping."""
        try:
            resources = self.cluster_resources()
        except BatchUnavailable as exc:
            return False, str(exc), None
        return True, f"sinfo: {resources['cpu']} cpu and {resources['memory']} memory free", resources

    def cluster_resources(self) -> dict[str, str]:
        try:
            result = _run(["sinfo", "--json"], timeout=15)
            if not result.stderr:
                return parse_sinfo_json(result.stdout)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass  # the plugin falls back to the text format
        try:
            result = _run(["sinfo", "--noheader", "--format=%c|%m|%e"], timeout=15)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BatchUnavailable(f"sinfo: {exc}") from exc
        if result.stderr:
            raise BatchUnavailable(f"sinfo stderr: {result.stderr.strip()}")
        return parse_sinfo_text(result.stdout)


@dataclass
class _LocalJob:
    job_dir: Path
    script: Path
    time_limit: int | None
    pid: int | None = None  # its process group, once started
    waiting: bool = True  # queued for a slot (state PD)
    holds_slot: bool = False
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    final: JobInfo | None = None
    ended: float = 0.0  # time.time() when it ended (for MinJobAge)


class LocalBackend(_SlurmJobFiles):
    """Runs job.slurm with bash as a plain subprocess (fast local mode, no Slurm).

    The #SBATCH lines are comments here; only --time is enforced (TIMEOUT like Slurm).
    The job's exit code is written to <job dir>/local.rc by a wrapper shell, and its pid to
    local.pid, so that a restarted agent can pick up jobs that kept running. As slurmctld
    with MinJobAge, the stand-in squeue forgets a job `min_job_age` seconds after it ended
    (None: never). With `slots`, at most that many jobs run at once and the others wait in
    state PD, as on a cluster of that many cores; `nice` lowers the jobs' CPU priority, so
    that a load of jobs does not starve the processes that run the testbed.
    """

    name = "local"
    KILL_WAIT = 5.0  # like Slurm's KillWait: SIGTERM, then SIGKILL

    def __init__(
        self,
        min_job_age: float | None = 300.0,
        job_script_template: bool = False,
        slots: int | None = None,
        nice: int = 0,
    ) -> None:
        self._jobs: dict[str, _LocalJob] = {}
        self._waiting: collections.deque[str] = collections.deque()
        self._running = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.min_job_age = min_job_age
        self.job_script_template = job_script_template
        self.slots = slots
        self.nice = nice

    def submit(self, job_dir: Path, script: Path, time_limit: int | None) -> str:
        job_id = f"{os.getpid()}{next(self._ids):06d}"  # unique across agent restarts, as Slurm's
        with self._lock:
            self._jobs[job_id] = _LocalJob(job_dir, script, time_limit)
            self._waiting.append(job_id)
            self._start_waiting()
        return job_id

    def _start_waiting(self) -> None:
        """Start queued jobs while slots are free (called with the lock held)."""
        while self._waiting and (self.slots is None or self._running < self.slots):
            job = self._jobs[self._waiting.popleft()]
            job.waiting = False
            if job.final is not None:  # cancelled while it waited
                continue
            wrapper = ["/bin/bash", "-c", 'bash "$1"; echo $? > "$2"', "local-job"]
            with open(job.job_dir / "job.out", "ab") as out:
                job.process = subprocess.Popen(
                    ["nice", "-n", str(self.nice), *wrapper, str(job.script), str(job.job_dir / "local.rc")],
                    cwd=job.job_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(job.job_dir)},
                )
            job.pid, job.started, job.holds_slot = job.process.pid, time.monotonic(), True
            (job.job_dir / "local.pid").write_text(str(job.pid))
            self._running += 1

    def adopt(self, job_id: str, job_dir: Path) -> None:
        """A job of an earlier agent: running or ended if it has a pid or an exit code, else
        still queued (slurmctld keeps its queue across restarts), so it waits again."""
        pid_text = _read(job_dir / "local.pid")
        started = pid_text is not None or (job_dir / "local.rc").exists()
        job = _LocalJob(job_dir, job_dir / "job.slurm", None, int(pid_text) if pid_text else None, not started)
        job.started = time.monotonic()
        with self._lock:
            if job_id in self._jobs:
                return
            self._jobs[job_id] = job
            if job.waiting:
                self._waiting.append(job_id)
                self._start_waiting()
            else:
                job.holds_slot = job.pid is not None and _alive(job.pid, job_dir)
                self._running += job.holds_slot

    def query(self, job_ids: list[str]) -> dict[str, JobInfo]:
        with self._lock:
            states = {
                job_id: (self._state(job_id, job), job)
                for job_id in job_ids
                if (job := self._jobs.get(job_id)) is not None
            }
            self._start_waiting()
        return {job_id: info for job_id, (info, job) in states.items() if not self._forgotten(job)}

    def _forgotten(self, job: _LocalJob) -> bool:
        """MinJobAge passed since the job ended: squeue no longer knows it."""
        return job.final is not None and self.min_job_age is not None and time.time() - job.ended >= self.min_job_age

    def _end(self, job: _LocalJob, info: JobInfo, ended: float) -> JobInfo:
        if job.holds_slot:
            self._running -= 1
            job.holds_slot = False
        job.final, job.ended = info, ended
        return info

    def _state(self, job_id: str, job: _LocalJob) -> JobInfo:
        if job.final is not None:
            return job.final
        if job.waiting:
            return JobInfo("PD", "0")
        alive = job.process.poll() is None if job.process else job.pid is not None and _alive(job.pid, job.job_dir)
        if alive and job.pid is not None:
            if job.time_limit is not None and time.monotonic() - job.started > job.time_limit:
                self._kill(job_id, job.pid)
                return self._end(job, JobInfo("TO", "15"), time.time())  # what squeue shows for a timed-out job
            return JobInfo("R", "0")
        rc_file = job.job_dir / "local.rc"
        rc_text = _read(rc_file)
        if rc_text is None:  # killed before the wrapper could write it: squeue shows the signal
            returncode = job.process.returncode if job.process else None
            return self._end(job, JobInfo("F", str(-returncode) if returncode and returncode < 0 else "9"), time.time())
        code = int(rc_text) if rc_text.isdigit() else 1
        return self._end(job, JobInfo("CD" if code == 0 else "F", str((code & 0xFF) << 8)), _mtime(rc_file))

    def cancel(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.final is not None:
                return
            if job.pid is not None and not job.waiting:
                self._kill(job_id, job.pid)
            self._end(job, JobInfo("CA", "15"), time.time())
            self._start_waiting()

    def _kill(self, job_id: str, pgid: int) -> None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return

        def finish() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            with self._lock:
                job = self._jobs.get(job_id)
                if job and job.process:
                    job.process.poll()  # reap

        timer = threading.Timer(self.KILL_WAIT, finish)
        timer.daemon = True
        timer.start()

    def ping(self) -> tuple[bool, str, dict[str, str] | None]:
        """Always up; the free resources are this machine's cpus and available memory (what
        the plugin's text fallback would report for it)."""
        try:
            meminfo = Path("/proc/meminfo").read_text()
        except OSError:
            meminfo = ""
        resources = host_resources(os.cpu_count() or 1, meminfo)
        return True, "local mode", resources


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _alive(pid: int, job_dir: Path) -> bool:
    """A process of ours that survived an agent restart (checked by its command line)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(job_dir).encode() in cmdline


def make_backend(
    name: str,
    chroot: Path | None = None,
    user: str = "tester",
    min_job_age: float | None = 300.0,
    plugin_build: str = "working",
    container_path: str | None = None,
    command_prefix: str = "",
    job_script_template: bool = False,
    local_slots: int | None = None,
    local_nice: int = 0,
    sandboxed: jobfiles.SandboxConfig | None = None,
) -> Backend:
    """`min_job_age`: the local backend's MinJobAge (Slurm's own is in slurm.conf);
    `plugin_build`, `container_path`, `command_prefix`: the htcondor backend's (htcondor.py);
    `local_slots`, `local_nice`: the local backend's (see LocalBackend);
    `job_script_template`: the site runs a JobScriptTemplate (Slurm flavour only: the HTCondor
    plugin ignores the rendered script); `sandboxed`: the Slurm flavour's containers run in
    bubblewrap over an image root (sandbox.py)."""
    if name in ("slurm", "local"):
        backend: _SlurmJobFiles
        if name == "slurm":
            backend = SlurmBackend(job_script_template)
        else:
            backend = LocalBackend(min_job_age, job_script_template, local_slots, local_nice)
        backend.sandboxed = sandboxed
        return backend  # type: ignore[return-value]
    if sandboxed is not None:
        raise ValueError("--sandbox bwrap is for the Slurm flavour (slurm, local): vk-htcondor has singularity.py")
    if name == "htcondor":
        if chroot is None:
            raise ValueError("the htcondor backend needs --chroot (the trixie chroot holding HTCondor)")
        from .htcondor import HTCondorBackend  # imports batch: keep the cycle out of module load
        from .sbatch import CONTAINER_PATH

        return HTCondorBackend(chroot, user, plugin_build, container_path or CONTAINER_PATH, command_prefix)
    raise ValueError(f"unknown batch backend {name!r} (slurm, local or htcondor)")
