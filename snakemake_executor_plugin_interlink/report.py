"""The run report: one row per job (jobs.tsv) and a self-contained timeline (pure).

The timeline shows each job as a bar split into waiting (submitted -> started: the
Kubernetes, interLink and batch-queue overhead) and running, grouped by rule, so a user
sees at a glance what offloading cost. Inline SVG only: no scripts, fonts or network.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from .grouplog import (
    LoggedJob,
    lines_until,
    match_members,
    zone_offset,
)
from .pod import wildcards_text
from .status import PodStatus, State

# a group job's member: its rule and wildcards, as the main Snakemake knows them
Member = tuple[str, Mapping[str, str]]

COLUMNS = (
    "rule", "wildcards", "pod", "remote_job_id", "state", "submitted", "scheduled",
    "started", "finished", "queue_wait_s", "run_time_s", "exit_code", "attempt",
    "cpus_requested", "cpu_used_s", "cpu_efficiency", "memory_requested_mb",
    "memory_used_mb", "memory_efficiency",
)  # fmt: skip
# a request is named as too large when it is over twice what the jobs used, and (for
# memory) the difference is worth a change: a default 1000 MB for a 50 MB job is not
OVERSIZED_FACTOR = 2.0
OVERSIZED_MEMORY_MARGIN_MB = 1024.0


@dataclass(frozen=True)
class JobRow:
    rule: str
    wildcards: str
    pod: str
    attempt: int
    status: PodStatus
    submitted: datetime | None
    cpus_requested: float | None = None  # the pod's cpu limit
    memory_requested_mb: float | None = None  # the pod's memory limit

    @property
    def cpu_efficiency(self) -> float | None:
        """CPU time used over the CPU time the request held while the job ran."""
        used, cpus, run = (
            self.status.used_cpu_seconds,
            self.cpus_requested,
            self.run_time,
        )
        if used is None or not cpus or not run:
            return None
        return used / (cpus * run)

    @property
    def memory_efficiency(self) -> float | None:
        used, asked = self.status.used_memory_mb, self.memory_requested_mb
        if used is None or not asked:
            return None
        return used / asked

    @property
    def queue_wait(self) -> float | None:
        return _seconds(self.submitted, self.status.started)

    @property
    def run_time(self) -> float | None:
        return _seconds(self.status.started, self.status.finished)

    def cells(self) -> list[str]:
        s = self.status
        values = (
            self.rule, self.wildcards, self.pod, s.remote_job_id, s.state.value,
            _iso(self.submitted), _iso(s.scheduled), _iso(s.started), _iso(s.finished),
            _num(self.queue_wait), _num(self.run_time), s.exit_code, self.attempt,
            _num(self.cpus_requested), _num(s.used_cpu_seconds),
            _num(self.cpu_efficiency, 2), _num(self.memory_requested_mb),
            _num(s.used_memory_mb), _num(self.memory_efficiency, 2),
        )  # fmt: skip
        return ["" if v is None else _tsv_safe(str(v)) for v in values]


def member_rows(
    group: JobRow, members: Sequence[Member], logged: Mapping[int, LoggedJob]
) -> list[JobRow]:
    """One row per job of a group job: its rule, wildcards, times and fate from the
    group's parsed log (the pod, batch job and submission are the group's). What the
    pod asked for and used is the whole group's, so member rows leave it out."""
    found = match_members(members, logged)
    starts = [job.started for job in found if job and job.started]
    offset = zone_offset(min(starts, default=None), group.status.started)
    return [
        replace(
            group,
            rule=rule,
            wildcards=wildcards_text(wildcards),
            status=_member_status(group.status, job, offset),
            cpus_requested=None,
            memory_requested_mb=None,
        )
        for (rule, wildcards), job in zip(members, found, strict=True)
    ]


def _member_status(
    group: PodStatus, job: LoggedJob | None, offset: timedelta
) -> PodStatus:
    """A member succeeded when its Snakemake said it finished; in a failed group, a
    member that did not finish failed with it (Snakemake fails them all)."""
    finished = job is not None and job.finished is not None and not job.failed
    code: int | None
    if group.state == State.SUCCEEDED or finished:
        state, reason, code = State.SUCCEEDED, "", 0
    elif job is not None and job.failed:
        state, reason, code = State.FAILED, group.reason, group.exit_code
    else:
        state, code = State.FAILED, None
        reason = "its group failed" + ("" if job else " before it started")
    return replace(
        group,
        state=state,
        reason=reason,
        exit_code=code,
        started=_utc(job.started if job else None, offset),
        finished=_utc(job.finished if job else None, offset),
        used_cpu_seconds=None,
        used_memory_mb=None,
    )


def _utc(local: datetime | None, offset: timedelta) -> datetime | None:
    return None if local is None else (local - offset).replace(tzinfo=UTC)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="seconds") if t else None


def _num(x: float | None, digits: int = 1) -> str | None:
    return None if x is None else f"{x:.{digits}f}"


def _tsv_safe(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")


def jobs_tsv(rows: list[JobRow]) -> str:
    lines = ["\t".join(COLUMNS)]
    lines += ["\t".join(row.cells()) for row in rows]
    return "\n".join(lines) + "\n"


def timeline_html(rows: list[JobRow], title: str) -> str:
    """Bars per job, grouped by rule; time axis from the first submission."""
    timed = [r for r in rows if r.submitted is not None]
    submissions = [r.submitted for r in timed if r.submitted is not None]
    if not submissions:
        body = "<p>No job of this run was submitted.</p>"
        return _page(title, body)
    start = min(submissions)
    end = max(
        (t for r in timed for t in (r.status.finished, r.status.started, r.submitted)
         if t is not None),
    )  # fmt: skip
    span = max((end - start).total_seconds(), 1.0)
    label_w, plot_w, bar_h, gap = 260, 900, 14, 4
    by_rule: dict[str, list[JobRow]] = {}
    for row in sorted(timed, key=lambda r: (r.rule, r.submitted)):
        by_rule.setdefault(row.rule, []).append(row)

    def x(t: datetime) -> float:
        return label_w + plot_w * (t - start).total_seconds() / span

    parts, y = [], 30
    for rule, jobs in by_rule.items():
        parts.append(
            f'<text x="4" y="{y + 11}" class="rule">{html.escape(rule)} '
            f"({len(jobs)})</text>"
        )
        y += bar_h + gap
        for row in jobs:
            s = row.status
            label = html.escape((row.wildcards or row.pod)[:40])
            parts.append(f'<text x="14" y="{y + 11}" class="job">{label}</text>')
            submitted = row.submitted or start
            wait_end = s.started or s.finished or end
            parts.append(_bar(x(submitted), x(wait_end), y, bar_h, "wait", row))
            if s.started:
                kind = "fail" if s.state == State.FAILED else "run"
                parts.append(
                    _bar(x(s.started), x(s.finished or end), y, bar_h, kind, row)
                )
            y += bar_h + gap
        y += gap
    ticks = []
    for i in range(6):
        tx = label_w + plot_w * i / 5
        ticks.append(
            f'<line x1="{tx:.1f}" y1="20" x2="{tx:.1f}" y2="{y}" class="tick"/>'
            f'<text x="{tx:.1f}" y="14" class="axis">{span * i / 5:.0f} s</text>'
        )
    waits = [r.queue_wait for r in rows if r.queue_wait is not None]
    runs = [r.run_time for r in rows if r.run_time is not None]
    summary = (
        f"<p>{len(rows)} jobs; waiting (submitted to started) total "
        f"{sum(waits):.0f} s, median {_median(waits):.1f} s; running total "
        f"{sum(runs):.0f} s, median {_median(runs):.1f} s.</p>"
    )
    legend = (
        '<p><span class="key wait"></span> waiting (Kubernetes, interLink, queue) '
        '<span class="key run"></span> running '
        '<span class="key fail"></span> running, failed</p>'
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 20}" '
        f'height="{y + 10}" role="img" aria-label="job timeline">'
        + "".join(ticks)
        + "".join(parts)
        + "</svg>"
    )
    return _page(title, summary + legend + svg)


def _bar(x0: float, x1: float, y: int, h: int, kind: str, row: JobRow) -> str:
    tip = (
        f"{row.pod} {row.status.state.value}; waited "
        f"{_num(row.queue_wait) or '?'} s, ran {_num(row.run_time) or '?'} s"
    )
    if row.cpu_efficiency is not None:
        tip += f"; cpu efficiency {row.cpu_efficiency:.0%}"
    if row.memory_efficiency is not None:
        tip += f"; memory efficiency {row.memory_efficiency:.0%}"
    return (
        f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1.0):.1f}" height="{h}" '
        f'class="bar {kind}"><title>{html.escape(tip)}</title></rect>'
    )


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _page(title: str, body: str) -> str:
    style = (
        "body{font-family:sans-serif;margin:1em}"
        ".rule{font-weight:bold;font-size:12px}.job{font-size:11px}"
        ".axis{font-size:10px;fill:#555}.tick{stroke:#ddd}"
        ".wait{fill:#c9ced6}.run{fill:#3a8f5c}.fail{fill:#c0392b}"
        ".key{display:inline-block;width:1em;height:1em;vertical-align:middle}"
        "span.wait{background:#c9ced6}span.run{background:#3a8f5c}"
        "span.fail{background:#c0392b}"
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


ERROR_TAIL_LINES = 20
_COMMAND_STATUS = re.compile(r"returned non-zero exit status (\d+)")


def command_exit_status(text: str) -> int | None:
    """The exit status of the rule's own command, which Snakemake inside the job
    prints before exiting 1 itself."""
    found = _COMMAND_STATUS.findall(text)
    return int(found[-1]) if found else None


def tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def failure_message(
    jobid: int | str,
    pod: str,
    status: PodStatus,
    log_text: str,
    log_file: str,
    kept_in_namespace: str | None = None,
    group: str | None = None,
    culprit: LoggedJob | None = None,
) -> str:
    """What Snakemake shows for a failed job: the cause, the rule's own exit status
    when the log tells it, the log's last lines, and how to look at a kept pod. For a
    group job: which of its jobs failed, and the log's lines up to that job's error
    (what the group printed after it is other jobs' or its shutdown): `culprit`, the
    group's first failed job as its log tells it."""
    reason = status.reason
    inner = command_exit_status(log_text)
    if inner is not None and status.exit_code is not None:
        reason += f" (the rule's command exited with status {inner})"
    msg = f"interlink: job {jobid} (pod {pod}) failed: {reason}.\n"
    if group is not None:
        msg = f"interlink: group {group} (job {jobid}, pod {pod}) failed: {reason}.\n"
    lines, which = tail(log_text), "Last lines of its log"
    if culprit is not None and culprit.error_line is not None:
        wildcards = f" ({culprit.wildcards})" if culprit.wildcards else ""
        msg += f"The job that failed in it: rule {culprit.rule}{wildcards}.\n"
        lines = lines_until(log_text, culprit.error_line, ERROR_TAIL_LINES)
        which = "The group's log up to that job's error"
    if lines:
        msg += f"{which} ({log_file}):\n{lines}\n"
    if kept_in_namespace is not None:
        msg += f"The pod is kept: kubectl -n {kept_in_namespace} describe pod {pod}\n"
    return msg


def oversized_requests(rows: list[JobRow]) -> str | None:
    """One line naming the rules whose cpu or memory request is more than twice what
    their succeeded jobs used (the most any of them used, for memory; on average while
    running, for cpu: a single cpu is the least a job can ask for), or None."""
    by_rule: dict[str, list[JobRow]] = {}
    for row in rows:
        if row.status.state == State.SUCCEEDED:
            by_rule.setdefault(row.rule, []).append(row)
    findings = []
    for rule, jobs in sorted(by_rule.items()):
        said = []
        memory = [
            (r.memory_requested_mb, r.status.used_memory_mb)
            for r in jobs
            if r.memory_requested_mb and r.status.used_memory_mb is not None
        ]
        if memory and len(memory) == len(jobs):
            asked = max(a for a, _ in memory)
            used = max(u for _, u in memory)
            if (
                asked > OVERSIZED_FACTOR * used
                and asked - used >= OVERSIZED_MEMORY_MARGIN_MB
            ):
                said.append(f"memory {asked:.0f} MB asked, at most {used:.0f} MB used")
        cpu = [
            (r.cpus_requested, r.status.used_cpu_seconds, r.run_time)
            for r in jobs
            if r.cpus_requested and r.status.used_cpu_seconds is not None and r.run_time
        ]
        if cpu and len(cpu) == len(jobs):
            asked_cpus = max(c for c, _, _ in cpu)
            busy = sum(u for _, u, _ in cpu) / sum(t for _, _, t in cpu if t)
            if asked_cpus > 1 and asked_cpus > OVERSIZED_FACTOR * busy:
                said.append(f"{asked_cpus:g} cpus asked, {busy:.1f} used on average")
        if said:
            findings.append(f"rule {rule} ({'; '.join(said)})")
    if not findings:
        return None
    return (
        "interlink: these rules asked for more than twice what their jobs used: "
        + ", ".join(findings)
        + ". Lowering their resources (threads, mem_mb) lets the site start them "
        "sooner; per-job figures are in the run report's jobs.tsv."
    )
