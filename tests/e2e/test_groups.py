"""Job groups applied from outside the workflow (a profile, or --groups and
--group-components): one pod and one Slurm job per group job, named after the group,
one log per group, one report row per job of it; pipes and services inside a group;
the job that failed in a group named in the error."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from .conftest import Testbed, report_rows, wait_until

GROUPED = """
rule all:
    input: "gathered.txt"
rule work:
    output: "out/{i}.txt"
    resources: mem_mb=100
    shell: "sleep 2; echo {wildcards.i} > {output}"
rule gather:
    input: expand("out/{i}.txt", i=range(6))
    output: "gathered.txt"
    shell: "cat {input} > {output}"
"""


def watch_pods(testbed: Testbed, stop: threading.Event) -> dict[str, dict[str, Any]]:
    """Every pod seen while the run lasts, by name. The executor
    deletes each pod once its log is stored, so the count comes from watching."""
    seen: dict[str, dict[str, Any]] = {}

    def poll() -> None:
        while not stop.is_set():
            for pod in testbed.pods():
                seen.setdefault(pod["metadata"]["name"], pod)
            stop.wait(0.2)

    threading.Thread(target=poll, daemon=True).start()
    return seen


def test_groups_from_a_profile_run_one_pod_per_group_job(
    testbed: Testbed, workdir: Path
):
    (workdir / "Snakefile").write_text(GROUPED)
    profile = workdir / "profile"
    profile.mkdir()
    (profile / "config.yaml").write_text(
        "groups:\n  - work=batch\ngroup-components:\n  - batch=3\ncores: 2\n"
    )
    stop = threading.Event()
    seen = watch_pods(testbed, stop)
    try:
        done = testbed.snakemake(workdir, "--profile", str(profile))
    finally:
        stop.set()
    assert done.returncode == 0, done.stderr[-3000:]
    assert (workdir / "gathered.txt").read_text().split() == [str(i) for i in range(6)]

    rows = report_rows(workdir)
    assert sorted((r["rule"], r["wildcards"]) for r in rows) == [
        ("gather", ""),
        *(("work", f"i={i}") for i in range(6)),
    ]
    work = [r for r in rows if r["rule"] == "work"]
    group_pods = {r["pod"] for r in work}
    assert len(group_pods) == 2, "six jobs in groups of three"
    assert len({r["remote_job_id"] for r in work}) == 2, "one Slurm job per group"
    for row in work:  # each member's own times, from the group's log
        assert row["state"] == "succeeded"
        assert row["started"] and row["finished"] >= row["started"]
        assert float(row["run_time_s"]) >= 1.0, "a 2 s job, 1 s resolution"
    for pod in group_pods:  # two side by side (cores: 2), then the third
        starts = sorted(r["started"] for r in work if r["pod"] == pod)
        assert starts[0] < starts[2], starts
    assert len({r["pod"] for r in rows}) == 3
    assert set(seen) == {r["pod"] for r in rows}, "no other pod was created"

    for name in group_pods:
        assert re.fullmatch(r"snakejob-[0-9a-f]{8}-batch-[0-9a-f]{12}-1", name)
        labels = seen[name]["metadata"]["labels"]
        assert labels["interlink.snakemake.io/kind"] == "group"
        assert labels["interlink.snakemake.io/group"] == "batch"
        assert "interlink.snakemake.io/rule" not in labels
        annotations = seen[name]["metadata"]["annotations"]
        assert annotations["interlink.snakemake.io/rules"] == "work"
        assert annotations["interlink.snakemake.io/members"] == "3"
        # the group's summed resources: two jobs side by side (cores: 2), 2 x 100 MB
        # (raised to the floor of a job's own Snakemake)
        (container,) = seen[name]["spec"]["containers"]
        assert container["resources"]["limits"] == {"cpu": "2", "memory": "256Mi"}
    logs = sorted((workdir / ".snakemake" / "interlink_logs").rglob("*.log"))
    group_logs = [p for p in logs if p.parent.name == "group_batch"]
    assert len(group_logs) == 2
    for log in group_logs:
        assert re.fullmatch(r"work-[0-9a-f]{12}\.log", log.name)
        assert log.read_text().count("Finished jobid:") == 3


def test_pipes_and_services_run_inside_a_group(testbed: Testbed, workdir: Path):
    (workdir / "Snakefile").write_text(
        """
rule all:
    input: "piped.txt", "client.txt"
rule produce:
    output: pipe("p/{i}.pipe")
    shell: "seq 1 5 > {output}"
rule consume:
    input: "p/{i}.pipe"
    output: "p/{i}.txt"
    shell: "wc -l < {input} > {output}"
rule piped:
    input: expand("p/{i}.txt", i=range(2))
    output: "piped.txt"
    shell: "cat {input} > {output}"
rule server:
    output: service("socket.txt")
    shell: "echo up > {output}; sleep 1000"
rule client:
    input: "socket.txt"
    output: "client.txt"
    shell: "cat {input} > {output}"
"""
    )
    done = testbed.snakemake(
        workdir, "--groups", "server=svc", "client=svc", "--cores", "2"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (workdir / "piped.txt").read_text().split() == ["5", "5"]
    assert (workdir / "client.txt").read_text() == "up\n"
    rows = report_rows(workdir)
    assert sorted((r["rule"], r["wildcards"]) for r in rows) == [
        ("client", ""),
        ("consume", "i=0"),
        ("consume", "i=1"),
        ("piped", ""),
        ("produce", "i=0"),
        ("produce", "i=1"),
        ("server", ""),
    ]
    assert all(r["state"] == "succeeded" for r in rows)
    pods = {r["rule"]: r["pod"] for r in rows}
    assert pods["server"] == pods["client"] and "-svc-" in pods["server"]
    # Snakemake names pipe groups with a UUID: the pods say their rules instead
    pipe_pods = {r["pod"] for r in rows if r["rule"] in ("produce", "consume")}
    assert len(pipe_pods) == 2
    assert all("-consume-produce-" in pod for pod in pipe_pods)
    logs = workdir / ".snakemake" / "interlink_logs"
    assert len(list(logs.glob("group_svc/client+server-*.log"))) == 1
    assert len(list(logs.glob("group_consume-produce/consume+produce-*.log"))) == 2


def test_the_job_that_failed_in_a_group_is_named(testbed: Testbed, workdir: Path):
    (workdir / "Snakefile").write_text(
        """
rule all:
    input: expand("checked/{i}.txt", i=range(4))
rule check:
    output: "checked/{i}.txt"
    shell: "if [ {wildcards.i} = 2 ]; then echo broken input >&2; exit 3; fi; touch {output}"
"""
    )
    done = testbed.snakemake(
        workdir,
        "--groups",
        "check=checks",
        "--group-components",
        "checks=4",
        "--cores",
        "1",
    )
    assert done.returncode != 0
    found = re.search(
        r"interlink: group checks \(job [0-9a-f-]+, pod (snakejob-\S+-checks-\S+)\) "
        r"failed: exit code 1 \(the rule's command exited with status 3\)\.\n"
        r"The job that failed in it: rule check \(i=2\)\.\n"
        r"The group's log up to that job's error \((\S+)\):\n",
        done.stderr,
    )
    assert found, done.stderr[-5000:]
    message = done.stderr[found.end() :]
    assert "broken input" in message.split("Error in rule check:")[0]
    assert (workdir / found.group(2)).is_file()
    rows = {r["wildcards"]: r["state"] for r in report_rows(workdir)}
    assert rows["i=2"] == "failed"
    assert wait_until(lambda: not testbed.pods(), timeout=30)
