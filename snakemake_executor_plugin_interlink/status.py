"""Pod -> the job's fate, with a reason a person understands (pure).

The virtual kubelet writes Pending, Running, Succeeded, or Failed; it overwrites a
container's `terminated.reason` with `Completed` or `Error: <code>`, so the plugin's own
reason (Slurm TIMEOUT, OUT_OF_MEMORY, sbatch's error) survives only in `message`.
Submission failures are phase Failed with reason `ProviderFailed`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .pod import TIME_LIMIT_ANNOTATION, end_line_pattern

JOB_ID_ANNOTATION = "JobID"  # written by interLink's virtual kubelet
# the only container reasons the VK keeps (the Slurm plugin's Status.go); the job was
# killed even when the pod Succeeded, e.g. a TIMEOUT whose exit code reads as 0
KILLED_REASONS = frozenset({"SlurmJobTimeout", "OOMKilled"})
# a Running pod this long past its batch time limit has lost its job: the batch system
# surely ended it, but interLink no longer reports it (squeue forgets ended jobs after
# Slurm's MinJobAge, and killed jobs leave no status file)
LOST_JOB_GRACE_SECONDS = 600


class State(enum.Enum):
    WAITING = "waiting"  # created, not running yet (unscheduled or queued at the site)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (State.SUCCEEDED, State.FAILED)


@dataclass(frozen=True)
class PodStatus:
    state: State
    reason: str = ""  # why it failed, or why it still waits
    exit_code: int | None = None
    node: str | None = None
    remote_job_id: str | None = None
    created: datetime | None = None
    scheduled: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    # what the job's command used, as it reported itself (pod.END_REPORTER)
    used_cpu_seconds: float | None = None
    used_memory_mb: float | None = None


_IMAGE_ERRORS_FATAL = {"InvalidImageName", "ErrImageNeverPull"}
# JobHeld: interLink's HTCondor plugin, with HTCondor's HoldReason as message
_WAITING_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "JobHeld",
}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def classify_pod(
    pod: dict[str, Any],
    now: datetime | None = None,
    unschedulable_timeout: float = 0,
    pending_timeout: float = 0,
) -> PodStatus:
    """The state of a job from its pod; timeouts of 0 mean wait forever."""
    now = now or datetime.now(UTC)
    meta, status = pod.get("metadata", {}), pod.get("status") or {}
    phase = status.get("phase", "Pending")
    containers = status.get("containerStatuses") or []
    node = pod.get("spec", {}).get("nodeName")
    scheduled = _condition_time(status, "PodScheduled")
    terminated = [c["state"]["terminated"] for c in containers if _terminated(c)]
    started = _started(containers)
    times = {
        "node": node,
        "remote_job_id": (meta.get("annotations") or {}).get(JOB_ID_ANNOTATION),
        "created": parse_time(meta.get("creationTimestamp")),
        "scheduled": scheduled,
        "started": started,
        "finished": max(
            (t for t in (parse_time(x.get("finishedAt")) for x in terminated) if t),
            default=None,
        ),
    }

    if phase == "Succeeded" and not any(
        t.get("reason") in KILLED_REASONS for t in terminated
    ):
        return PodStatus(State.SUCCEEDED, exit_code=0, **times)
    if phase == "Succeeded":
        reason, code = failure_reason(status, terminated)
        return PodStatus(State.FAILED, reason, exit_code=code, **times)
    if phase == "Failed":
        reason, code = failure_reason(status, terminated)
        return PodStatus(State.FAILED, reason, exit_code=code, **times)
    if meta.get("deletionTimestamp"):
        return PodStatus(
            State.FAILED,
            "the pod was deleted outside Snakemake (kubectl delete, an eviction or a "
            "node drain) before the job finished",
            **times,
        )
    if phase == "Running":
        deadline = running_deadline(pod, started)
        if deadline is not None and now > deadline:
            limit = (meta.get("annotations") or {})[TIME_LIMIT_ANNOTATION]
            return PodStatus(
                State.FAILED,
                f"still Running {LOST_JOB_GRACE_SECONDS // 60} min after its batch "
                f"time limit of {limit} min: the site ended the job (most likely at "
                "the time limit or out of memory; raise runtime or mem_mb) but "
                "interLink no longer reports it",
                **times,
            )
        return PodStatus(State.RUNNING, **times)

    # Pending (or Unknown): not scheduled yet, or queued at the site.
    waiting = _waiting_reason(containers)
    if waiting and waiting[0] in _IMAGE_ERRORS_FATAL:
        return PodStatus(
            State.FAILED, f"image error {waiting[0]}: {waiting[1]}", **times
        )
    created = times["created"] or now
    if not node:
        message = _unschedulable_message(status)
        reason = f"unschedulable: {message}" if message else "not scheduled yet"
        if "Insufficient " in message:
            # a node fits but is full (its pod count, or under interLink 0.6.2 the
            # site's free cpus and memory): a queue, not a misconfiguration
            return PodStatus(
                State.WAITING,
                f"waiting for room on the virtual node: {message}",
                **times,
            )
        if (
            unschedulable_timeout
            and (now - created).total_seconds() > unschedulable_timeout
        ):
            return PodStatus(
                State.FAILED,
                f"no virtual node accepted the pod within {unschedulable_timeout:g} s "
                f"(--interlink-unschedulable-timeout): {message or 'not scheduled'}",
                **times,
            )
        return PodStatus(State.WAITING, reason, **times)
    if not waiting and not times["remote_job_id"] and phase != "Unknown":
        # bound, but the virtual node has not submitted it (interLink writes JobID then)
        waited = (now - (scheduled or created)).total_seconds()
        if unschedulable_timeout and waited > unschedulable_timeout:
            return PodStatus(
                State.FAILED,
                f"virtual node {node} did not submit the job within "
                f"{unschedulable_timeout:g} s (--interlink-unschedulable-timeout): a "
                "Secret or ConfigMap it needs may be missing (see the pod's events), "
                "or interLink may be down",
                **times,
            )
        return PodStatus(State.WAITING, f"on {node}, not submitted yet", **times)
    reason = f"{waiting[0]}: {waiting[1]}" if waiting else f"queued on {node}"
    if phase == "Unknown":
        reason = f"status unknown: node {node} lost contact"
    since = scheduled or created
    if pending_timeout and (now - since).total_seconds() > pending_timeout:
        return PodStatus(
            State.FAILED,
            f"pending on node {node} for more than {pending_timeout:g} s "
            f"(--interlink-pending-timeout); last state: {reason}. If the node is "
            "NotReady, its interLink service or batch system is down.",
            **times,
        )
    return PodStatus(State.WAITING, reason, **times)


def running_deadline(
    pod: dict[str, Any], started: datetime | None = None
) -> datetime | None:
    """When a Running pod must have lost its batch job: its start plus the batch time
    limit plus a grace; None when the limit or the start is unknown."""
    limit = (pod.get("metadata", {}).get("annotations") or {}).get(
        TIME_LIMIT_ANNOTATION
    )
    started = started or _started(
        (pod.get("status") or {}).get("containerStatuses") or []
    )
    if not limit or not limit.isdigit() or started is None:
        return None
    return started + timedelta(minutes=int(limit), seconds=LOST_JOB_GRACE_SECONDS)


def submission_in_flight(pod: dict[str, Any]) -> bool:
    """Bound to a virtual node that may be creating its batch job right now: deleted
    now, the job would be submitted all the same and run orphaned, since the plugin's
    delete needs the JobID that interLink writes once the create returns."""
    meta, status = pod["metadata"], pod.get("status") or {}
    return (
        bool((pod.get("spec") or {}).get("nodeName"))
        and not (meta.get("annotations") or {}).get(JOB_ID_ANNOTATION)
        and not meta.get("deletionTimestamp")
        and status.get("phase", "Pending") == "Pending"
        and status.get("reason") != "ProviderFailed"
    )


def may_have_ended(pod: dict[str, Any] | None) -> bool:
    """Whether the pod's job reached the site and the pod does not yet tell how it
    ended: only then can a probe of its log find an end."""
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return False
    submitted = bool((pod["metadata"].get("annotations") or {}).get(JOB_ID_ANNOTATION))
    return submitted and (pod.get("status") or {}).get("phase") not in (
        "Succeeded",
        "Failed",
    )


@dataclass(frozen=True)
class JobEnd:
    """What a job's script reports when its command ended (completion.py)."""

    exit_code: int
    started: datetime | None = None
    finished: datetime | None = None
    cpu_seconds: float | None = None
    max_rss_kib: int | None = None


def parse_job_end(text: str) -> JobEnd | None:
    """'<exit status> <start> <end> <cpu seconds> <peak KiB>' (epoch seconds; all
    but the exit status may be missing, as in what older jobs wrote)."""
    words = text.split()
    if not words or not all(w.isdigit() for w in words[:3]):
        return None
    times = [datetime.fromtimestamp(int(w), UTC) for w in words[1:3]]
    cpu_seconds: float | None = None
    max_rss_kib: int | None = None
    try:
        if len(words) > 3:
            cpu_seconds = float(words[3])
        if len(words) > 4:
            max_rss_kib = int(words[4])
    except ValueError:
        cpu_seconds = max_rss_kib = None
    return JobEnd(
        int(words[0]),
        times[0] if times else None,
        times[1] if len(times) > 1 else None,
        cpu_seconds,
        max_rss_kib,
    )


def job_end_in_log(pod: str, text: str) -> JobEnd | None:
    """The end the job printed as its log's last line (no shared filesystem)."""
    found = end_line_pattern(pod).findall(text)
    return parse_job_end(found[-1]) if found else None


def with_usage(status: PodStatus, end: JobEnd) -> PodStatus:
    """The status with what the job's command reported it used."""
    if end.cpu_seconds is None and end.max_rss_kib is None:
        return status
    return replace(
        status,
        used_cpu_seconds=end.cpu_seconds,
        used_memory_mb=None if end.max_rss_kib is None else end.max_rss_kib / 1024,
    )


def status_from_exit(
    pod: PodStatus | None, end: JobEnd, now: datetime | None = None
) -> PodStatus:
    """A job whose command reported its end itself, before the virtual kubelet updated
    its pod: a pod that already tells how it ended still decides (it knows about kills
    the command never saw); the job's own times win over what the pod showed."""
    if pod is not None and pod.state.finished:  # the job's times fill what it lacks
        return with_usage(
            replace(
                pod,
                started=pod.started or end.started,
                finished=pod.finished or end.finished,
            ),
            end,
        )
    base = with_usage(pod or PodStatus(State.RUNNING), end)
    base = replace(
        base,
        started=end.started or (pod.started if pod else None),
        finished=end.finished or now or datetime.now(UTC),
    )
    if end.exit_code == 0:
        return replace(base, state=State.SUCCEEDED, reason="", exit_code=0)
    return replace(
        base,
        state=State.FAILED,
        reason=f"exit code {end.exit_code}",
        exit_code=end.exit_code,
    )


def failure_reason(
    status: dict[str, Any], terminated: list[dict[str, Any]]
) -> tuple[str, int | None]:
    """A failed pod's cause in words, and the job's exit code when there is one."""
    pod_reason = str(status.get("reason") or "")
    messages = [str(t["message"]) for t in terminated if t.get("message")]
    message = str(status.get("message") or (messages[0] if messages else ""))
    codes = [t.get("exitCode") for t in terminated if t.get("exitCode")]
    code = codes[0] if codes else None
    if pod_reason == "ProviderFailed":
        return f"interLink could not submit the job: {message or 'no message'}", code
    if pod_reason == "CFGMaps/Secrets not found":
        return (
            "the virtual node did not find the Secret or ConfigMaps the pod needs "
            f"({message or pod_reason}); was the run's Secret deleted?",
            code,
        )
    if pod_reason == "Evicted":
        return f"the pod was evicted: {message or 'no message'}", code
    text = " ".join([message, *(t.get("reason") or "" for t in terminated)])
    plain = text.lower().replace("-", " ").replace("_", " ")
    if "oomkilled" in plain or "out of memory" in plain:
        return (
            "out of memory: the job exceeded its memory limit (raise mem_mb)"
            + (f"; {message}" if message else ""),
            code,
        )
    if "timeout" in plain or "time limit" in plain:
        return (
            "the batch system's time limit was reached (raise runtime)"
            + (f"; {message}" if message else ""),
            code,
        )
    if code is not None:
        return f"exit code {code}" + (f": {message}" if message else ""), code
    detail = ": ".join(p for p in (pod_reason, message) if p)
    return f"the pod failed ({detail or 'no reason given'})", code


def _terminated(container: dict[str, Any]) -> bool:
    return bool((container.get("state") or {}).get("terminated"))


def _started(containers: list[dict[str, Any]]) -> datetime | None:
    times: list[datetime] = []
    for c in containers:
        state = c.get("state") or {}
        for key in ("running", "terminated"):
            started = parse_time((state.get(key) or {}).get("startedAt"))
            if started is not None:
                times.append(started)
    return min(times, default=None)


def _condition_time(status: dict[str, Any], kind: str) -> datetime | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return None


def _unschedulable_message(status: dict[str, Any]) -> str:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return cond.get("message") or cond.get("reason") or ""
    return ""


def _waiting_reason(containers: list[dict[str, Any]]) -> tuple[str, str] | None:
    for c in containers:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") in _IMAGE_ERRORS_FATAL | _WAITING_REASONS:
            return waiting["reason"], waiting.get("message") or ""
    return None
