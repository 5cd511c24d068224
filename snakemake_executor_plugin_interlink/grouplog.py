"""What a group job's log says about each job it ran (pure).

A group job's pod runs one Snakemake for all the group's jobs, so Kubernetes and the
batch system know only the group: the jobs' own times and fates are in that
Snakemake's log, which prints a timestamp line before each job's start block
(`rule X:` with `jobid:` and `wildcards:`), before each `Finished jobid: N` and before
each `Error in rule X:` block. Its job numbers are its own, not the main Snakemake's:
jobs are matched to the group's members by rule and wildcards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# "[Wed Dec  2 08:37:18 2026]", alone or before "Group job ...": time.asctime, local
_STAMP = re.compile(r"^\s*\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]")
_START = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) (\S+):$")
_ERROR = re.compile(r"^\s*Error in rule (\S+):$")
_JOBID = re.compile(r"^\s*jobid: (\d+)$")
_WILDCARDS = re.compile(r"^\s*wildcards: (.*)$")
_FINISHED = re.compile(r"^\s*Finished jobid: (\d+)\b")
# a local timestamp is turned into UTC by the offset that brings it nearest to the
# pod's start: time zones are whole quarter hours apart
_ZONE_STEP = timedelta(minutes=15)


@dataclass
class LoggedJob:
    """One job as the group's Snakemake logged it."""

    rule: str
    wildcards: str = ""  # as Snakemake prints them: "a=1, b=x"
    started: datetime | None = None  # local time of the site, as printed
    finished: datetime | None = None  # or when its error was logged
    failed: bool = False
    error_line: int | None = None  # the last line of its "Error in rule" block


def logged_jobs(text: str) -> dict[int, LoggedJob]:
    """The group's Snakemake's job number -> what its log says about that job."""
    jobs: dict[int, LoggedJob] = {}
    stamp: datetime | None = None
    current: LoggedJob | None = None  # the block whose jobid/wildcards come next
    error_rule: str | None = None
    for index, line in enumerate(text.splitlines()):
        if found := _STAMP.match(line):
            stamp = datetime.strptime(found.group(1), "%a %b %d %H:%M:%S %Y")
            current, error_rule = None, None
        elif found := _START.match(line):
            current, error_rule = LoggedJob(found.group(1), started=stamp), None
        elif found := _ERROR.match(line):
            current, error_rule = None, found.group(1)
        elif found := _JOBID.match(line):
            number = int(found.group(1))
            if current is not None:
                jobs[number] = current
            elif error_rule is not None and number in jobs:
                failed = jobs[number]
                failed.failed, failed.finished, failed.error_line = True, stamp, index
        elif (found := _WILDCARDS.match(line)) and current is not None:
            current.wildcards = found.group(1)
        elif found := _FINISHED.match(line):
            job = jobs.get(int(found.group(1)))
            if job is not None:
                job.finished = stamp
        elif error_rule is not None and line.startswith(" " * 4) and jobs:
            _extend_error(jobs, error_rule, index)
    return jobs


def _extend_error(jobs: dict[int, LoggedJob], rule: str, index: int) -> None:
    """The error block's lines after `jobid:` (output, shell, ...) belong to it."""
    for job in jobs.values():
        if job.failed and job.rule == rule and job.error_line == index - 1:
            job.error_line = index


def wildcards_as_logged(wildcards: Mapping[str, str]) -> str:
    """A job's wildcards as Snakemake's log prints them."""
    return ", ".join(f"{k}={v}" for k, v in wildcards.items())


def match_members(
    members: Sequence[tuple[str, Mapping[str, str]]], logged: Mapping[int, LoggedJob]
) -> list[LoggedJob | None]:
    """Each member (rule, wildcards) of the group -> its job in the log, or None when
    the log does not show it (it never started, or the log was cut)."""
    by_key = {(job.rule, job.wildcards): job for job in logged.values()}
    return [by_key.get((rule, wildcards_as_logged(wc))) for rule, wc in members]


def zone_offset(
    first_stamp: datetime | None, pod_started: datetime | None
) -> timedelta:
    """How far the site's local time printed in the log is ahead of UTC, from the
    pod's start (UTC), which the log's first job follows within seconds."""
    if first_stamp is None or pod_started is None:
        return timedelta(0)
    ahead = first_stamp - pod_started.replace(tzinfo=None)
    return round(ahead / _ZONE_STEP) * _ZONE_STEP


def first_failed(logged: Mapping[int, LoggedJob]) -> LoggedJob | None:
    """The job whose error came first: later ones may only have been stopped."""
    failed = [job for job in logged.values() if job.failed]
    return min(failed, key=lambda job: job.error_line or 0) if failed else None


def lines_until(text: str, last_line: int, count: int) -> str:
    """The `count` lines of the log that end at `last_line`: a failed job's own
    output and error block rather than whatever the group printed after it."""
    lines = text.splitlines()[: last_line + 1]
    return "\n".join(lines[-count:])
