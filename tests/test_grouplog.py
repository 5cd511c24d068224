"""A group job's log -> its jobs' times and fates, on logs captured from the testbed
(tests/group_logs/: the pods' logs of group jobs run by Snakemake 9.27.1 on Slurm)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snakemake_executor_plugin_interlink.grouplog import (
    first_failed,
    lines_until,
    logged_jobs,
    match_members,
    wildcards_as_logged,
    zone_offset,
)

LOGS = Path(__file__).parent / "group_logs"


def at(clock: str) -> datetime:
    """A time of the captured runs (2 Dec 2026), as the log prints it."""
    return datetime.strptime(f"2026-12-02 {clock}", "%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        (  # three jobs of one rule, two at a time: top-level blocks
            "batch.log",
            {
                0: ("work", "i=5", "08:36:39", "08:36:40", False),
                1: ("work", "i=1", "08:36:39", "08:36:40", False),
                2: ("work", "i=4", "08:36:40", "08:36:41", False),
            },
        ),
        (  # a pipe: both jobs start at once, in an indented "Group job" block
            "pipe.log",
            {
                0: ("produce", "i=0", "08:36:52", "08:36:54", False),
                1: ("consume", "i=0", "08:36:52", "08:36:54", False),
            },
        ),
        (  # a service and its client; jobs without wildcards
            "service.log",
            {
                0: ("client", "", "08:42:57", "08:42:59", False),
                1: ("server", "", "08:42:57", "08:42:59", False),
            },
        ),
        (  # the third of four fails, the fourth still finishes
            "failed_member.log",
            {
                0: ("fail", "i=0", "08:42:49", "08:42:50", False),
                1: ("fail", "i=1", "08:42:50", "08:42:51", False),
                2: ("fail", "i=2", "08:42:50", "08:42:51", True),
                3: ("fail", "i=3", "08:42:49", "08:42:50", False),
            },
        ),
    ],
)
def test_each_job_of_a_group_log(log, expected):
    jobs = logged_jobs((LOGS / log).read_text())
    seen = {
        number: (
            job.rule,
            job.wildcards,
            job.started and job.started.strftime("%H:%M:%S"),
            job.finished and job.finished.strftime("%H:%M:%S"),
            job.failed,
        )
        for number, job in jobs.items()
    }
    assert seen == expected


def test_the_failed_job_and_the_log_up_to_its_error():
    text = (LOGS / "failed_member.log").read_text()
    culprit = first_failed(logged_jobs(text))
    assert culprit is not None
    assert (culprit.rule, culprit.wildcards) == ("fail", "i=2")
    assert culprit.error_line is not None
    lines = lines_until(text, culprit.error_line, 20).splitlines()
    assert len(lines) == 20
    assert lines[-1].strip() == "(command exited with non-zero exit code)"
    assert "boom" in lines and "Finished jobid: 1 (Rule: fail)" not in lines


def test_a_log_without_failure_names_none():
    assert first_failed(logged_jobs((LOGS / "batch.log").read_text())) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[interlink] the log of pod p could not be fetched: ...\n",
        "rule x:\n    jobid: nope\nFinished jobid: 9\n",  # cut or garbled
        "Error in rule x:\n    jobid: 3\n",  # an error of a job never started
    ],
)
def test_logs_without_jobs_give_none(text):
    assert logged_jobs(text) == {}


def test_members_are_matched_by_rule_and_wildcards_not_job_number():
    logged = logged_jobs((LOGS / "batch.log").read_text())
    found = match_members(
        [("work", {"i": "1"}), ("work", {"i": "4"}), ("work", {"i": "9"})], logged
    )
    assert [job and job.wildcards for job in found] == ["i=1", "i=4", None]


def test_wildcards_as_snakemake_logs_them():
    assert wildcards_as_logged({"sample": "A", "n": "1"}) == "sample=A, n=1"
    assert wildcards_as_logged({}) == ""


POD_START = datetime(2026, 12, 2, 8, 36, 38, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first_stamp", "offset"),
    [
        (at("08:36:39"), timedelta(0)),  # the testbed: UTC
        (at("09:36:40"), timedelta(hours=1)),  # CET
        (at("14:06:41"), timedelta(hours=5, minutes=30)),  # India
        (at("05:36:39"), timedelta(hours=-3)),
        (at("08:36:37"), timedelta(0)),  # clocks a second apart
        (None, timedelta(0)),
    ],
)
def test_the_sites_time_zone_from_the_pods_start(first_stamp, offset):
    assert zone_offset(first_stamp, POD_START) == offset
