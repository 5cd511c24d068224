"""The run report: rows and the timeline page."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snakemake_executor_plugin_interlink.grouplog import first_failed, logged_jobs
from snakemake_executor_plugin_interlink.report import (
    COLUMNS,
    JobRow,
    failure_message,
    jobs_tsv,
    member_rows,
    oversized_requests,
    timeline_html,
)
from snakemake_executor_plugin_interlink.status import PodStatus, State

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def row(rule, pod, wait, run, state=State.SUCCEEDED, code=0, wildcards="sample=a"):
    started = T0 + timedelta(seconds=wait)
    status = PodStatus(
        state,
        exit_code=code,
        remote_job_id="77",
        created=T0,
        scheduled=T0 + timedelta(seconds=1),
        started=started,
        finished=started + timedelta(seconds=run),
    )
    return JobRow(
        rule=rule, wildcards=wildcards, pod=pod, attempt=1, status=status, submitted=T0
    )


def test_tsv_has_one_row_per_job_with_waits_and_run_times():
    text = jobs_tsv(
        [row("greet", "p1", 12, 30), row("sum\tmary", "p2", 3, 4, State.FAILED, 3)]
    )
    lines = text.splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    first = dict(zip(COLUMNS, lines[1].split("\t"), strict=True))
    assert first["queue_wait_s"] == "12.0" and first["run_time_s"] == "30.0"
    assert first["remote_job_id"] == "77" and first["state"] == "succeeded"
    second = dict(zip(COLUMNS, lines[2].split("\t"), strict=True))
    assert second["rule"] == "sum mary" and second["exit_code"] == "3"


def test_timeline_is_self_contained_with_a_wait_and_a_run_bar_per_job():
    page = timeline_html(
        [
            row("greet", "p1", 12, 30),
            row("greet", "p2", 2, 5),
            row("summary", "p3", 40, 1, State.FAILED, 1),
        ],
        "run x",
    )
    assert "<script" not in page and "http" not in page.replace(
        "http://www.w3.org/2000/svg", ""
    )
    assert len(re.findall(r'class="bar wait"', page)) == 3
    assert len(re.findall(r'class="bar run"', page)) == 2
    assert len(re.findall(r'class="bar fail"', page)) == 1
    assert "greet (2)" in page and "summary (1)" in page


def test_timeline_escapes_hostile_names():
    page = timeline_html([row("<script>", "p1", 1, 1, wildcards="<b>x</b>")], "t")
    assert "<script>" not in page.split("<body>")[1] and "&lt;b&gt;" in page


def test_the_rules_own_exit_status_is_found_in_the_log():
    from snakemake_executor_plugin_interlink.report import command_exit_status

    text = "x\nCommand 'set -euo pipefail;  exit 3' returned non-zero exit status 3.\n"
    assert command_exit_status(text) == 3
    assert command_exit_status("no such line") is None


@pytest.mark.parametrize(
    ("status", "log", "kept", "expected", "absent"),
    [
        (
            PodStatus(State.FAILED, "exit code 1", exit_code=1),
            "line\nCommand 'false' returned non-zero exit status 3.\n",
            None,
            [
                "interlink: job 7 (pod p) failed: exit code 1 (the rule's command "
                "exited with status 3).",
                "Last lines of its log (x.log):\nline\n",
            ],
            ["kept"],
        ),
        (
            PodStatus(State.FAILED, "out of memory (OOMKilled)", exit_code=None),
            "returned non-zero exit status 9",
            "ns",
            [
                "failed: out of memory (OOMKilled).",
                "The pod is kept: kubectl -n ns describe pod p",
            ],
            ["exited with status"],  # no pod exit code: not the command's doing
        ),
        (
            PodStatus(State.FAILED, "deleted", exit_code=None),
            "",
            None,
            ["failed: deleted.\n"],
            ["Last lines"],
        ),
    ],
)
def test_a_failure_message_says_cause_log_tail_and_kept_pod(
    status, log, kept, expected, absent
):
    msg = failure_message(7, "p", status, log, "x.log", kept)
    for part in expected:
        assert part in msg
    for part in absent:
        assert part not in msg


def test_a_failure_message_shows_only_the_last_lines():
    log = "\n".join(f"line {i}" for i in range(100))
    msg = failure_message("group-uuid", "p", PodStatus(State.FAILED, "x"), log, "l")
    assert "line 79" not in msg and "line 80" in msg and "line 99" in msg


def used(
    rule: str,
    run_s: float,
    cpus: float | None,
    cpu_s: float | None,
    asked_mb: float | None,
    used_mb: float | None,
    state: State = State.SUCCEEDED,
) -> JobRow:
    base = row(rule, f"p-{rule}", 1, run_s, state)
    status = replace(base.status, used_cpu_seconds=cpu_s, used_memory_mb=used_mb)
    return replace(
        base, status=status, cpus_requested=cpus, memory_requested_mb=asked_mb
    )


def test_tsv_has_requested_used_and_efficiency():
    text = jobs_tsv(
        [used("big", 10, 4, 10, 8000, 500), used("unknown", 10, 1, None, None, None)]
    )
    lines = text.splitlines()
    big = dict(zip(COLUMNS, lines[1].split("\t"), strict=True))
    assert (big["cpus_requested"], big["cpu_used_s"], big["cpu_efficiency"]) == (
        "4.0",
        "10.0",
        "0.25",
    )
    assert (
        big["memory_requested_mb"],
        big["memory_used_mb"],
        big["memory_efficiency"],
    ) == ("8000.0", "500.0", "0.06")
    unknown = dict(zip(COLUMNS, lines[2].split("\t"), strict=True))
    assert unknown["cpu_efficiency"] == unknown["memory_used_mb"] == ""


def test_the_timeline_shows_efficiency():
    page = timeline_html([used("big", 10, 4, 10, 8000, 500)], "t")
    assert "cpu efficiency 25%" in page and "memory efficiency 6%" in page


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        (
            [used("big", 10, 4, 10, 8000, 500)],
            [
                "rule big (memory 8000 MB asked, at most 500 MB used; 4 cpus asked, 1.0 used on average)"
            ],
        ),
        ([used("fit", 10, 4, 35, 2000, 1500)], []),
        (
            [used("default", 10, 1, 1, 1000, 60)],
            [],
        ),  # 1000 MB default, 1 cpu: the least
        (
            [used("mem", 10, 1, 9, 4000, 1000), used("mem", 10, 1, 9, 4000, 1900)],
            ["rule mem (memory 4000 MB asked, at most 1900 MB used)"],
        ),
        ([used("mem", 10, 1, 9, 4000, 1000), used("mem", 10, 1, 9, 4000, 2100)], []),
        (
            [used("cpu", 10, 8, 30, None, None)],
            ["rule cpu (8 cpus asked, 3.0 used on average)"],
        ),
        (
            [used("cpu", 10, 8, 30, None, None), used("cpu", 10, 8, None, None, None)],
            [],
        ),  # not all known
        ([used("failed", 10, 8, 1, 9000, 10, State.FAILED)], []),  # only what succeeded
        (
            [used("a", 10, 8, 1, None, None), used("b", 10, 1, 1, 9000, 10)],
            ["rule a (8 cpus asked", "rule b (memory 9000 MB"],
        ),
    ],
)
def test_rules_asking_more_than_twice_what_they_use_are_named(rows, named):
    line = oversized_requests(rows)
    if not named:
        assert line is None
        return
    assert line is not None and line.startswith("interlink: these rules asked")
    for part in named:
        assert part in line


GROUP_LOGS = Path(__file__).parent / "group_logs"
# the pod of tests/group_logs/failed_member.log: its batch job ran from 08:42:48 UTC
GROUP_START = datetime(2026, 12, 2, 8, 42, 48, tzinfo=UTC)


def group_row(state: State, log: str) -> tuple[JobRow, str]:
    status = PodStatus(
        state,
        exit_code=0 if state == State.SUCCEEDED else 1,
        remote_job_id="2350",
        created=GROUP_START - timedelta(seconds=2),
        started=GROUP_START,
        finished=GROUP_START + timedelta(seconds=4),
        used_cpu_seconds=3.0,
        used_memory_mb=120.0,
    )
    row = JobRow("checks_fail", "", "snakejob-x-checks-1", 1, status, status.created)
    return replace(row, cpus_requested=2.0), (GROUP_LOGS / log).read_text()


def test_a_group_gives_one_row_per_member_with_its_own_times_and_fate():
    group, log = group_row(State.FAILED, "failed_member.log")
    members = [("fail", {"i": str(i)}) for i in range(4)] + [("fail", {"i": "7"})]
    rows = member_rows(group, members, logged_jobs(log))
    seen = [
        (r.rule, r.wildcards, r.status.state, r.status.started, r.run_time)
        for r in rows
    ]
    at = GROUP_START.replace
    assert seen == [
        ("fail", "i=0", State.SUCCEEDED, at(second=49), 1.0),
        ("fail", "i=1", State.SUCCEEDED, at(second=50), 1.0),
        ("fail", "i=2", State.FAILED, at(second=50), 1.0),
        ("fail", "i=3", State.SUCCEEDED, at(second=49), 1.0),
        ("fail", "i=7", State.FAILED, None, None),  # never started
    ]
    assert rows[4].status.reason == "its group failed before it started"
    for r in rows:  # the group's pod and batch job; not its usage
        assert (r.pod, r.status.remote_job_id, r.submitted) == (
            group.pod,
            "2350",
            group.submitted,
        )
        assert r.cpus_requested is None and r.status.used_cpu_seconds is None
    tsv = jobs_tsv(rows)
    assert len(tsv.splitlines()) == 1 + len(members)


def test_members_of_a_succeeded_group_succeeded_even_unseen_in_its_log():
    group, _ = group_row(State.SUCCEEDED, "batch.log")
    (member,) = member_rows(group, [("work", {"i": "1"})], logged_jobs("log was cut"))
    assert member.status.state == State.SUCCEEDED and member.status.started is None


def test_a_group_failure_names_the_job_that_failed_and_shows_its_lines():
    group, log = group_row(State.FAILED, "failed_member.log")
    msg = failure_message(
        "92d2", group.pod, replace(group.status, reason="exit code 1"), log, "g.log",
        group="checks", culprit=first_failed(logged_jobs(log)),
    )  # fmt: skip
    assert msg.startswith(
        f"interlink: group checks (job 92d2, pod {group.pod}) failed: exit code 1 "
        "(the rule's command exited with status 3).\n"
        "The job that failed in it: rule fail (i=2).\n"
        "The group's log up to that job's error (g.log):\n"
    )
    assert "boom" in msg and "(command exited with non-zero exit code)" in msg
    assert "Shutting down" not in msg  # what the group printed after the error


def test_a_group_failure_without_a_failed_job_in_its_log_shows_the_tail():
    msg = failure_message(
        "92d2", "p", PodStatus(State.FAILED, "OOMKilled"), "a\nb\n", "g.log", group="g"
    )
    assert "The job that failed" not in msg
    assert msg.endswith("Last lines of its log (g.log):\na\nb\n")
