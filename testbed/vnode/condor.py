"""Pod -> HTCondor job and job ad -> pod status, as interLink's HTCondor plugin does it
(the 2025-07 plugin; pure: no I/O, the clock is passed in).

What users can observe, and what this module reproduces:
- RequestCpus is the sum over the pod's containers of `int(requests.cpu)`: a fractional or
  milli-CPU request such as "500m" makes the plugin crash (ProviderFailed); 0 becomes 1.
  Limits are never read.
- RequestMemory (MB) is the sum of the containers' `requests.memory` read with the plugin's
  parser: leading digits directly followed by one of the suffixes k, M, G, Ki, Mi, Gi
  ("500Mi" -> 500, "2Gi" -> 2048, "1G" -> 1000); anything else (plain bytes, "1.5Gi", "1Ti")
  counts as 1 MB; a total of 0 becomes 1.
- `+MaxWallTimeMins = 60` whatever the pod asks for; no GPU.
- `htcondor-job.vk.io/singularity-options` and `htcondor-job.knoc.io/image-root` only change
  the `singularity exec` line, which is recorded as a comment (there is no container runtime).
- Only `spec.containers` run, one after the other; init containers are ignored; the job's
  exit code is the last container's.
- Status from the job ad (condor_q, then condor_history): Idle -> waiting
  `ContainerCreating`; Running -> running; Completed -> terminated with `ExitCode` (absent
  when a signal killed the job: read as 0); Removed -> terminated `Cancelled` without an
  exit code (read as 0: the pod Succeeds); Held -> waiting `JobHeld` with the HoldReason
  (the pod stays Pending); anything else -> waiting `Unknown`.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from dataclasses import dataclass
from typing import Any

SINGULARITY_OPTIONS_ANNOTATION = "htcondor-job.vk.io/singularity-options"
IMAGE_ROOT_ANNOTATION = "htcondor-job.knoc.io/image-root"
MAX_WALL_TIME_MINS = 60
# HTCondor's JobStatus codes
IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
JOB_AD_ATTRIBUTES = (
    "ClusterId",
    "JobStatus",
    "ExitCode",
    "ExitBySignal",
    "HoldReason",
    "JobStartDate",
    "CompletionDate",
)


class TranslationError(Exception):
    """The plugin fails on this pod (it raises; interLink reports the create as failed)."""


@dataclass(frozen=True)
class CondorJob:
    """The part of a job ad the plugin reads."""

    cluster: str
    status: int
    exit_code: int | None = None
    hold_reason: str = ""
    start_date: int | None = None
    completion_date: int | None = None

    @classmethod
    def from_ad(cls, ad: dict[str, Any]) -> CondorJob:
        def number(key: str) -> int | None:
            value = ad.get(key)
            return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(
            cluster=str(ad.get("ClusterId", "")),
            status=number("JobStatus") or 0,
            exit_code=number("ExitCode"),
            hold_reason=str(ad.get("HoldReason") or ""),
            start_date=number("JobStartDate"),
            completion_date=number("CompletionDate"),
        )


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get("containers") or [])


def _requests(container: dict[str, Any]) -> dict[str, Any]:
    return (container.get("resources") or {}).get("requests") or {}


def request_cpus(pod: dict[str, Any]) -> int:
    """RequestCpus: the sum of int(requests.cpu); raises TranslationError where the plugin crashes."""
    total = 0
    for container in _containers(pod):
        value = _requests(container).get("cpu")
        if value is None:
            continue
        try:
            total += int(value)
        except ValueError as exc:
            raise TranslationError(
                f"ValueError: {exc} (RequestCpus: int() of requests.cpu of container {container.get('name', '?')}; "
                "the HTCondor plugin accepts whole CPUs only)"
            ) from exc
    return total or 1


_MEMORY = re.compile(r"(\d+)([a-zA-Z]+)")
_MB_PER_UNIT = {"k": 1 / 10**3, "M": 1, "G": 10**3, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024}


def memory_mb(text: str) -> int:
    """One requests.memory value as the plugin reads it (MB; 1 when it does not understand it)."""
    match = _MEMORY.match(str(text))
    if not match or match.group(2) not in _MB_PER_UNIT:
        return 1
    return int(float(match.group(1)) * _MB_PER_UNIT[match.group(2)])


def request_memory_mb(pod: dict[str, Any]) -> int:
    """RequestMemory: the sum over containers of memory_mb(requests.memory); 0 becomes 1."""
    total = sum(memory_mb(_requests(c)["memory"]) for c in _containers(pod) if "memory" in _requests(c))
    return total or 1


def singularity_image(pod: dict[str, Any], container: dict[str, Any]) -> str:
    """The image the plugin would hand to singularity (image-root prefixes absolute paths)."""
    image = str(container.get("image") or "")
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if image.startswith("/cvmfs"):
        return image
    if image.startswith("/"):
        return annotations.get(IMAGE_ROOT_ANNOTATION, "") + image
    return "docker://" + image


@dataclass(frozen=True)
class CondorRun:
    """One container of the executable."""

    name: str
    argv: list[str]
    image: str
    env_file: str | None = None  # basename of the NUL-separated env file (transferred into the sandbox)
    binds: tuple[str, ...] = ()  # what singularity would --bind (informative)


@dataclass(frozen=True)
class CondorJobFiles:
    """Everything the job is made of, rendered."""

    executable: str
    submit: str
    cpus: int
    memory_mb: int


def render_submit(
    pod: dict[str, Any], job_dir: str, executable: str, input_files: list[str], cpus: int, memory: int
) -> str:
    """The submit description: the plugin's lines, with InitialDir = the job directory."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    lines = [
        f"# pod {pod['metadata'].get('namespace', '')}/{pod['metadata'].get('name', '')} "
        f"uid {pod['metadata'].get('uid', '')}",
        f"# {SINGULARITY_OPTIONS_ANNOTATION}: {annotations.get(SINGULARITY_OPTIONS_ANNOTATION, '')}",
        f"# {IMAGE_ROOT_ANNOTATION}: {annotations.get(IMAGE_ROOT_ANNOTATION, '')}",
        f"Executable = {executable}",
        f"InitialDir = {job_dir}",
        "",
        "Log        = log/mm_mul.$(Cluster).$(Process).log",
        "Output     = out/mm_mul.out.$(Cluster).$(Process)",
        "Error      = err/mm_mul.err.$(Cluster).$(Process)",
        "",
    ]
    if input_files:
        lines.append("transfer_input_files = " + ",".join(input_files))
    lines += [
        "should_transfer_files = YES",
        f"RequestCpus = {cpus}",
        f"RequestMemory = {memory}",
        "",
        "when_to_transfer_output = ON_EXIT_OR_EVICT",
        f"+MaxWallTimeMins = {MAX_WALL_TIME_MINS}",
        "",
        '+WMAgent_AgentName = "whatever"',
        "",
        "Queue 1",
    ]
    return "\n".join(lines) + "\n"


_EXECUTABLE_HEAD = r"""#!/bin/bash
# Written by the testbed's virtual node, standing in for the interLink HTCondor plugin's
# executable: the containers run one after the other in HTCondor's sandbox (the current
# directory); the job's exit code is the last one's.
#
# Stand-in for `singularity exec` (without --containall): the job's environment from
# HTCondor is kept (TMPDIR, _CONDOR_*), PATH is the "image's", HOME is the sandbox, and the
# pod's env comes from the env file HTCondor transferred.
runtime() {
  local envfile=$1 vars=()
  shift
  if [ "$envfile" != - ]; then mapfile -d '' -t vars <"$envfile"; fi
  env PATH=@PATH@ HOME="$PWD" "${vars[@]}" "$@"
}
"""


def singularity_line(pod: dict[str, Any], run: CondorRun) -> str:
    """The command the plugin would write for this container (recorded as a comment)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    parts = ["singularity", "exec"]
    options = annotations.get(SINGULARITY_OPTIONS_ANNOTATION, "")
    if options:
        parts.append(options)
    if run.binds:
        parts += ["--bind", ",".join(run.binds)]
    parts.append(run.image)
    parts += [shlex.quote(arg) for arg in run.argv]
    return " ".join(parts)


def render_executable(
    pod: dict[str, Any], runs: list[CondorRun], links: list[tuple[str, str]], container_path: str
) -> str:
    """The job's executable. `links`: (mount path, file name) of transferred ConfigMap/Secret
    files, linked at ./<mount path>/<file name> in the sandbox (no container to mount them)."""
    lines = [_EXECUTABLE_HEAD.replace("@PATH@", container_path)]
    for mount_path, name in links:
        directory = "./" + mount_path.strip("/")
        lines.append(
            f'mkdir -p {shlex.quote(directory)} && ln -sf "$PWD"/{shlex.quote(name)} {shlex.quote(directory)}/'
        )
    for run in runs:
        env_file = "./" + shlex.quote(run.env_file) if run.env_file else "-"
        comment = f"{run.name}: {singularity_line(pod, run)}"
        lines += ["# " + line for line in comment.splitlines()]
        lines.append(f"runtime {env_file} " + " ".join(shlex.quote(arg) for arg in run.argv))
    return "\n".join(lines) + "\n"


def _timestamp(epoch: int | None, now: str) -> str:
    if not epoch:
        return now
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_statuses(names: list[str], job: CondorJob | None, now: str) -> list[dict[str, Any]] | None:
    """The plugin's /status answer for one pod (every container gets the job's state);
    None when the job is in neither condor_q nor condor_history (the VK keeps the status)."""
    if job is None:
        return None
    ready = False
    state: dict[str, Any]
    if job.status == IDLE:
        state = {"waiting": {"reason": "ContainerCreating"}}
    elif job.status == RUNNING:
        state = {"running": {"startedAt": _timestamp(job.start_date, now)}}
        ready = True
    elif job.status == COMPLETED:
        state = {
            "terminated": {
                "startedAt": _timestamp(job.start_date, now),
                "finishedAt": _timestamp(job.completion_date, now),
                "exitCode": job.exit_code or 0,
                "reason": "Completed",
            }
        }
    elif job.status == REMOVED:
        state = {
            "terminated": {
                "startedAt": _timestamp(job.start_date, now),
                "finishedAt": _timestamp(job.completion_date, now),
                "exitCode": 0,  # the plugin sends none; Go reads the missing field as 0
                "reason": "Cancelled",
            }
        }
    elif job.status == HELD:
        state = {"waiting": {"reason": "JobHeld", "message": job.hold_reason or "Job held by HTCondor"}}
    else:
        state = {"waiting": {"reason": "Unknown"}}
    return [
        {
            "name": name,
            "state": {key: dict(value) for key, value in state.items()},
            "lastState": {},
            "ready": ready,
            "restartCount": 0,
            "image": "",
            "imageID": "",
        }
        for name in names
    ]


_SUBMITTED = re.compile(r"(\d+) job\(s\) submitted to cluster (\d+)\.")


def submitted_cluster(stdout: str) -> str | None:
    """The cluster id in condor_submit's answer ("1 job(s) submitted to cluster 12.")."""
    match = _SUBMITTED.search(stdout)
    return match.group(2) if match else None


def render_logs(stdout: bytes | None, stderr: bytes | None, user_log: bytes | None) -> bytes:
    """What the plugin's /getLogs returns: the job's Output, Error and HTCondor log, each
    under a header, or a note while none exists (they arrive when the job ends)."""
    sections = [
        (title, content)
        for title, content in (("STDOUT", stdout), ("STDERR", stderr), ("HTCONDOR LOG", user_log))
        if content
    ]
    if not sections:
        return b"No logs available yet\n"
    return b"\n\n".join(f"=== {title} ===\n".encode() + content for title, content in sections)
