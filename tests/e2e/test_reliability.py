"""Faults injected into the real testbed: the run survives, loses no job, runs none
twice, leaves nothing behind and leaks no secret."""

from __future__ import annotations

import contextlib
import csv
import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .conftest import STATE, Testbed, sacct, wait_until

JOBS = STATE / "vnode" / "jobs"  # the Slurm plugin's DataRootFolder on the testbed

MARKER = "s3cr3t-MARKER-'quoted' \"double\" $dollar `tick`\nline two ünïcödé ✓"
MARKER_PROBE = "s3cr3t-MARKER"


def write(workdir: Path, snakefile: str) -> None:
    (workdir / "Snakefile").write_text(snakefile)


def test_environment_arrives_byte_for_byte_and_never_leaks(
    testbed: Testbed, workdir: Path
):
    write(
        workdir,
        """
rule all:
    input: "env.bin"
rule env:
    output: "env.bin"
    shell: "sleep 3; printf %s \\"$SNAKEJOB_MARKER\\" > {output}"
""",
    )
    proc = testbed.start_snakemake(
        workdir,
        "--envvars",
        "SNAKEJOB_MARKER",
        "--verbose",
        env={"SNAKEJOB_MARKER": MARKER},
    )
    seen_specs: list = []
    env_files: dict[str, tuple[int, bytes]] = {}

    def snapshot() -> bool:
        pods = testbed.pods()
        seen_specs.extend(pods)
        # what the site's disk holds while the job runs (docs/further.md warns of it);
        # only this run's pods (<namespace>-<uid>): an earlier test's may still be there
        for pod in pods:
            uid = pod["metadata"]["uid"]
            path = JOBS / f"{testbed.namespace}-{uid}" / "snakejob_envfile.properties"
            with contextlib.suppress(OSError):
                env_files[str(path)] = (path.stat().st_mode & 0o777, path.read_bytes())
        return proc.poll() is not None

    assert wait_until(snapshot, timeout=180)
    assert seen_specs, "the pod was seen while it ran"
    ((mode, content),) = env_files.values()
    assert mode == 0o644, "the Slurm plugin writes the env file with os.Create"
    assert b"SNAKEJOB_MARKER=" in content
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out[-3000:]
    assert (workdir / "env.bin").read_bytes() == MARKER.encode()
    # nowhere else: pod specs and annotations, events, the executor's debug log, logs
    events = testbed.admin.request(
        "GET", f"/api/v1/namespaces/{testbed.namespace}/events"
    )
    stored = [p.read_text(errors="replace") for p in workdir.rglob("*.log")]
    for text in (json.dumps(seen_specs), json.dumps(events), out, *stored):
        assert MARKER_PROBE not in text


def test_sigkill_then_rerun_reattaches_instead_of_running_again(
    testbed: Testbed, workdir: Path
):
    write(
        workdir,
        """
rule all:
    input: expand("out/{i}.txt", i=range(3))
rule work:
    output: "out/{i}.txt"
    shell: "echo {wildcards.i} >> runs.log; sleep 20; echo done > {output}"
""",
    )
    proc = testbed.start_snakemake(workdir)
    # the Slurm node has 2 CPUs: two jobs run, the third waits in Slurm's queue
    assert wait_until(lambda: testbed.submitted(3), timeout=90)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(testbed.pods()) == 3, "the killed run's pods go on"
    testbed.unlock(workdir)
    done = testbed.snakemake(workdir, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("re-attached to pod") == 3
    assert sorted((workdir / "runs.log").read_text().split()) == ["0", "1", "2"], (
        "every job ran exactly once"
    )
    assert all((workdir / f"out/{i}.txt").read_text() == "done\n" for i in range(3))
    # the re-attached jobs' rows in the rerun's report carry what their pods asked for
    reports = (workdir / ".snakemake" / "interlink_reports").glob("*/jobs.tsv")
    with max(reports, key=lambda p: p.stat().st_mtime).open() as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["rule"] == "work"]
    assert len(rows) == 3
    assert all(float(r["cpus_requested"]) == 1 for r in rows), rows
    assert all(float(r["memory_requested_mb"]) > 0 for r in rows), rows


def test_orphans_of_a_killed_run_are_listed_then_removed_on_request(
    testbed: Testbed, workdir: Path
):
    write(
        workdir,
        """
rule all:
    input: expand("out/{i}.txt", i=range(2))
rule work:
    output: "out/{i}.txt"
    shell: "sleep 60; touch {output}"
""",
    )
    proc = testbed.start_snakemake(workdir)
    assert wait_until(lambda: testbed.submitted(2), timeout=90)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # the workflow changed: nothing of the dead run is needed any more
    write(workdir, 'rule all:\n    output: "other.txt"\n    shell: "touch {output}"\n')
    testbed.unlock(workdir)
    done = testbed.snakemake(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "2 pod(s) of earlier runs in this directory were not re-attached" in done.stderr
    )
    assert "delete pods,secrets -l" in done.stderr
    assert len(testbed.pods()) == 2
    done = testbed.snakemake(workdir, "--forceall", "--interlink-remove-orphans")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "removed 2 pod(s) of earlier runs" in done.stderr
    assert wait_until(lambda: not testbed.pods(), timeout=60)


def test_pod_deleted_by_someone_else_is_resubmitted_with_retries(
    testbed: Testbed, workdir: Path
):
    write(
        workdir,
        """
rule sleepy:
    output: "s.txt"
    shell: "sleep 15; touch {output}"
""",
    )
    proc = testbed.start_snakemake(workdir, "--retries", "1")
    assert wait_until(lambda: testbed.submitted(1), timeout=60)
    (pod,) = testbed.pods()
    testbed.admin.delete_pod(testbed.namespace, pod["metadata"]["name"])
    out, _ = proc.communicate(timeout=180)
    print(out[-4000:])
    assert proc.returncode == 0
    assert "deleted outside Snakemake" in out
    assert (workdir / "s.txt").exists()


def test_throttling_and_a_flaky_network_are_survived(
    testbed: Testbed, workdir: Path, tmp_path: Path, figures
):
    import re

    write(
        workdir,
        """
rule all:
    input: expand("out/{i}.txt", i=range(30))
rule work:
    output: "out/{i}.txt"
    shell: "echo {wildcards.i} >> runs.log; touch {output}"
""",
    )
    with proxied_kubeconfig(testbed, tmp_path) as (proxy, proxied):
        done = testbed.snakemake(
            workdir, "--interlink-kubeconfig", str(proxied), timeout=600
        )
    print("fault proxy:", dict(proxy.counts))
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(int(x) for x in (workdir / "runs.log").read_text().split()) == list(
        range(30)
    )
    assert proxy.counts["429"] and proxy.counts["503"] and proxy.counts["reset"]
    requests, retried = map(
        int,
        re.search(
            r"interlink: (\d+) API requests \((\d+) retried\)", done.stderr
        ).groups(),
    )
    figures(
        f"fault proxy: {proxy.counts['requests']} requests, injected "
        f"{proxy.counts['429']} x 429, {proxy.counts['503']} x 503, "
        f"{proxy.counts['reset']} resets; executor: {requests} requests, {retried} "
        "retried; 30 jobs, each ran once"
    )
    injected = proxy.counts["429"] + proxy.counts["503"] + proxy.counts["reset"]
    assert retried <= injected + 5, (
        "no retry storm: at most one retry per injected fault"
    )


def test_a_create_whose_answer_is_lost_runs_its_job_once(
    testbed: Testbed, workdir: Path, tmp_path: Path
):
    """The API server creates each pod and its answer is lost: the retried create
    meets the pod (409) and takes it as its own; no job runs twice."""
    write(
        workdir,
        """
rule all:
    input: expand("out/{i}.txt", i=range(4))
rule work:
    output: "out/{i}.txt"
    shell: "echo {wildcards.i} >> runs.log; touch {output}"
""",
    )
    start = time.strftime("%Y-%m-%dT%H:%M:%S")
    faults = {"p429": 0, "p503": 0, "p_reset": 0, "lose_first_create_answers": True}
    with proxied_kubeconfig(testbed, tmp_path, **faults) as (proxy, proxied):
        done = testbed.snakemake(workdir, "--interlink-kubeconfig", str(proxied))
    assert done.returncode == 0, done.stderr[-3000:]
    assert proxy.counts["lost"] == 4
    runs = sorted(int(x) for x in (workdir / "runs.log").read_text().split())
    assert runs == [0, 1, 2, 3]
    assert len(sacct("-S", start, fields="JobID")) == 4


@contextmanager
def proxied_kubeconfig(
    testbed: Testbed, tmp_path: Path, **faults: Any
) -> Iterator[tuple[Any, Path]]:
    """The executor's kubeconfig, pointed at a fault proxy in front of the API
    server."""
    import base64

    import yaml

    from .faultproxy import FaultProxy

    config = yaml.safe_load(Path(testbed.executor_kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = tmp_path / "ca.crt"
    ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    with FaultProxy(cluster["server"], str(ca), **faults) as proxy:
        cluster["server"] = f"http://127.0.0.1:{proxy.port}"
        del cluster["certificate-authority-data"]
        proxied = tmp_path / "proxied.kubeconfig"
        proxied.write_text(yaml.safe_dump(config))
        yield proxy, proxied
