"""A job's own word that its command ended, seen without waiting for interLink.

interLink's virtual kubelet refreshes about one pod's status per 10 s (its status loop
asks the plugin one pod at a time, and the Slurm plugin answers from a 10 s cache), so
with N running pods a finished job shows in its pod after about N x 10 s. In
shared-filesystem mode every job's script therefore ends by writing its command's exit
status to `<workdir>/.snakemake/interlink_exit/<pod>`, by rename so that a reader never
sees half a file, and the executor lists that one directory each status round: the
entries are the ends not yet collected, so a round costs O(changes), and no request.
Beside it, in `<workdir>/.snakemake/interlink_output/<pod>`, the script keeps a copy of
its command's output, which the executor stores as a succeeded job's log: no log
request through interLink. The script that does both is a file in
`<workdir>/.snakemake/interlink/`, named by its content's hash, not a part of every pod.
Without a shared filesystem, the script prints an end line instead (`end_line`), and
`LogProbe` reads the last bytes of submitted jobs' logs, which interLink serves from the
job's files, each about once a period, at a bounded rate: requests per second, never per
job and round.
Pod status stays the authority for everything before the command runs.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from .kube import KubeClient, KubeError
from .logs import KeptOutput, serves_no_logs
from .pod import END_REPORTER_FILE, END_REPORTER_KEEPING_OUTPUT, run_name_prefix
from .status import JobEnd, job_end_in_log, parse_job_end

EXIT_DIR = Path(".snakemake", "interlink_exit")
OUTPUT_DIR = Path(".snakemake", "interlink_output")
REPORTER = Path(".snakemake", "interlink", END_REPORTER_FILE)


class JobEnds(Protocol):
    """Where a status round learns which jobs ended, besides their pods."""

    def ended(self) -> dict[str, JobEnd]:
        """Pod name -> the end of each job whose end was seen, not yet collected."""
        ...

    def track(self, pod: str) -> None:
        """A pod of the run was submitted (or re-attached to)."""
        ...

    def collect(self, pod: str) -> None:
        """The job's end was reported."""
        ...

    def news(self) -> bool:
        """An end arrived that `ended` has not handed out yet: cheap enough to ask
        several times a second, so that a status round starts as soon as a job says
        it ended, not at the next pod change or interval."""
        ...

    def stop(self) -> None:
        """No more status rounds."""
        ...


class ExitMarkers:
    """The directories that jobs write their exit statuses and their output to."""

    def __init__(self, workdir: Path) -> None:
        self.directory = workdir / EXIT_DIR
        self.outputs = workdir / OUTPUT_DIR
        self.reporter = workdir / REPORTER
        self._listed: frozenset[str] = frozenset()  # by the last `ended`

    def prepare(self) -> None:
        """Create the directories with the working directory's permission bits: jobs
        that may write outputs there (maybe as another user at the site) may write and
        read here too. Then the script that jobs run, readable by anyone, written whole
        (by rename: another run in the same directory may write it at the same time)."""
        mode = stat.S_IMODE(self.directory.parent.parent.stat().st_mode)
        for directory in (self.directory, self.outputs, self.reporter.parent):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, mode)
        partial = self.reporter.with_name(f"{self.reporter.name}.{os.getpid()}.tmp")
        partial.write_text(END_REPORTER_KEEPING_OUTPUT)
        partial.chmod(0o644)
        partial.replace(self.reporter)

    def forget_run(self, run_id: str) -> None:
        """What a run with no pod left leaves here: ends that were never collected
        (jobs that ended while the run stopped) and the copies of killed jobs."""
        prefix = run_name_prefix(run_id)
        for directory in (self.directory, self.outputs):
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(prefix):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def take_output(self, pod: str, limit_bytes: int) -> KeptOutput | None:
        """The last `limit_bytes` of the output the job kept: whole once its script
        renamed the copy into place, after the command ended; else the partial copy
        of a job killed before its script ended, or whose copy could not be written
        whole. The files go either way. None: the job kept nothing."""
        kept = None
        for name, whole in ((pod, True), (f"{pod}.part", False)):
            try:
                with (self.outputs / name).open("rb") as f:
                    f.seek(max(0, os.fstat(f.fileno()).st_size - limit_bytes))
                    kept = KeptOutput(f.read().decode(errors="replace"), whole)
                break
            except OSError:
                continue
        for leftover in (pod, f"{pod}.part"):
            with contextlib.suppress(OSError):
                (self.outputs / leftover).unlink(missing_ok=True)
        return kept

    def ended(self) -> dict[str, JobEnd]:
        """Pod name -> the end of every job that wrote one and was not collected."""
        found: dict[str, JobEnd] = {}
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return found
        # all of them: a foreign or unreadable file is no news the next time
        self._listed = frozenset(entry.name for entry in entries)
        for entry in entries:
            if entry.name.endswith(".tmp"):
                continue
            try:
                end = parse_job_end(Path(entry.path).read_text())
            except OSError:
                continue  # not readable (yet): the pod's status still decides
            if end is not None:
                found[entry.name] = end
        return found

    def news(self) -> bool:
        """One listing of the directory, which holds only the ends not collected."""
        try:
            with os.scandir(self.directory) as entries:
                return any(
                    not e.name.endswith(".tmp") and e.name not in self._listed
                    for e in entries
                )
        except OSError:
            return False

    def track(self, pod: str) -> None:
        """Jobs write their markers without being asked."""

    def stop(self) -> None:
        """Nothing runs in the background."""

    def collect(self, pod: str) -> None:
        """The job's end was reported: its marker has served."""
        with contextlib.suppress(OSError):
            (self.directory / pod).unlink(missing_ok=True)


PROBE_BYTES = 512  # the end line and some margin: a probe moves little
FAILURE_PAUSE = 60.0  # seconds without probes after a streak of failed ones
FAILURE_STREAK = 10


def probe_interval(pods: int, period: float, rate: float) -> float:
    """Seconds between two probes: each of `pods` read about every `period`, never
    more than `rate` per second in all. A fixed rate would either read 20 jobs' logs
    needlessly often or leave 200 jobs' ends unseen for minutes."""
    return max(1.0 / rate, period / max(pods, 1))


class LogProbe:
    """Reads the end of submitted jobs' logs, round robin, each about every `period`
    seconds and at most `rate` per second, in a thread of its own so that a slow log
    never holds up a status round."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        container: str,
        rate: float,
        period: float,
        submitted: Callable[[str], bool],
        insecure_backend: bool = False,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._container = container
        self._rate = rate
        self._period = period
        self._submitted = submitted  # only a submitted job can have ended
        self._insecure = insecure_backend
        self._queue: deque[str] = deque()
        self._tracked: set[str] = set()
        self._ended: dict[str, JobEnd] = {}
        self._handed: set[str] = set()  # by the last `ended`
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="interlink-log-probe", daemon=True
        )
        self._failures = 0
        self.requests = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def track(self, pod: str) -> None:
        with self._lock:
            if pod not in self._tracked:
                self._tracked.add(pod)
                self._queue.append(pod)

    def ended(self) -> dict[str, JobEnd]:
        with self._lock:
            self._handed = set(self._ended)
            return dict(self._ended)

    def news(self) -> bool:
        with self._lock:
            return not self._handed.issuperset(self._ended)

    def collect(self, pod: str) -> None:
        with self._lock:
            self._tracked.discard(pod)
            self._ended.pop(pod, None)

    def interval(self) -> float:
        """The pause before the next probe, for the jobs whose end is not seen yet."""
        with self._lock:
            waiting = len(self._tracked) - len(self._ended)
        return probe_interval(waiting, self._period, self._rate)

    def _run(self) -> None:
        while not self._stop.wait(self.interval()):
            pod = self.next_pod()
            if pod is not None:
                self.probe(pod)
            if self._failures >= FAILURE_STREAK:  # logs not served: ask less
                self._failures = 0
                self._stop.wait(FAILURE_PAUSE)

    def next_pod(self) -> str | None:
        """The next pod in the rotation whose job may have ended; O(1) per probe but
        for pods skipped on the way (collected or not submitted yet)."""
        with self._lock:
            for _ in range(len(self._queue)):
                pod = self._queue.popleft()
                if pod not in self._tracked:
                    continue  # collected: out of the rotation
                self._queue.append(pod)
                if pod not in self._ended and self._submitted(pod):
                    return pod
        return None

    def probe(self, pod: str) -> None:
        self.requests += 1
        try:
            text = self._kube.pod_log(
                self._namespace, pod, self._container, PROBE_BYTES, self._insecure
            )
        except KubeError:
            self._failures += 1
            return
        if serves_no_logs(text):
            self._failures += 1
            return
        self._failures = 0
        end = job_end_in_log(pod, text)
        if end is not None:
            with self._lock:
                if pod in self._tracked:
                    self._ended[pod] = end
