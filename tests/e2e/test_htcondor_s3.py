"""HTCondor and object storage, end to end: the testbed's second virtual node (vk-htcondor,
HTCondor in a trixie chroot) and its S3 server (Ceph radosgw on 127.0.0.1:9000).

HTCondor jobs run as the chroot's user `tester`, never as root (HTCondor refuses root's
jobs). Shared-filesystem runs on vk-htcondor therefore use a world-writable working
directory under /tmp (which the chroot sees) and Snakemake with umask 000, and leave
`source-cache` out of --shared-fs-usage: the runtime source cache is a private directory
of the submitting user (see examples/htcondor/README.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from snakemake.common.tests import TestWorkflowsMinioPlayStorageBase

from snakemake_executor_plugin_interlink.settings import ExecutorSettings

from .conftest import (
    REPO,
    STATE,
    Testbed,
    copy_example,
    read_env,
    report_rows,
    sacct,
    wait_until,
)
from .documented import run_readme, user_env

ENV = read_env(STATE / "env") if (STATE / "env").exists() else {}
# Shared FS minus the runtime source cache (a 0700 temporary directory of the submitter).
SHARED_FS_WITHOUT_SOURCE_CACHE = [
    "--shared-fs-usage",
    "input-output",
    "persistence",
    "sources",
    "software-deployment",
    "software-deployment-cache",
    "storage-local-copies",
]


def _need(*keys: str) -> dict[str, str]:
    missing = [k for k in keys if k not in ENV]
    if missing:
        pytest.fail(
            f"the testbed runs without HTCondor/S3 ({', '.join(missing)} missing from "
            f"{STATE / 'env'}): run testbed/up.sh without TESTBED_HTCONDOR=0/TESTBED_S3=0"
        )
    return ENV


def htcondor_args() -> list[str]:
    env = _need("TESTBED_HTCONDOR_NODE", "TESTBED_HTCONDOR_TOLERATION")
    return [
        "--interlink-node",
        env["TESTBED_HTCONDOR_NODE"],
        "--interlink-tolerations",
        env["TESTBED_HTCONDOR_TOLERATION"],
    ]


def condor(*args: str, check: bool = True) -> str:
    """An HTCondor command inside the testbed's chroot, as root (a queue super user)."""
    root = _need("TESTBED_CHROOT")["TESTBED_CHROOT"]
    done = subprocess.run(
        ["chroot", root, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {done.stderr or done.stdout}")
    return done.stdout


def condor_jobs() -> list[str]:
    return condor("condor_q", "-allusers", "-af", "ClusterId", "JobStatus").split("\n")[
        :-1
    ]


def condor_ad(cluster: str, *attributes: str) -> dict:
    """A finished (or queued) job's attributes, from condor_history or condor_q."""
    for tool in ("condor_history", "condor_q"):
        text = condor(tool, cluster, "-json", "-attributes", ",".join(attributes))
        if text.strip() and json.loads(text):
            return json.loads(text)[0]
    raise AssertionError(f"HTCondor knows no job {cluster}")


def s3_client():
    import boto3

    env = _need("TESTBED_S3_ENDPOINT", "TESTBED_S3_ACCESS_KEY", "TESTBED_S3_SECRET_KEY")
    return boto3.client(
        "s3",
        endpoint_url=env["TESTBED_S3_ENDPOINT"],
        aws_access_key_id=env["TESTBED_S3_ACCESS_KEY"],
        aws_secret_access_key=env["TESTBED_S3_SECRET_KEY"],
        region_name="us-east-1",
    )


def empty_and_delete(client, bucket: str) -> None:
    with contextlib.suppress(client.exceptions.NoSuchBucket):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)


@pytest.fixture
def bucket() -> Iterator[str]:
    client = s3_client()
    name = f"e2e-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name
    empty_and_delete(client, name)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A working directory the HTCondor job's user can write: world-writable, under /tmp
    but outside pytest's own 0700 tree. Its name holds "-c", after which interLink's
    HTCondor plugin wraps the next word of the job's bash line in double quotes."""
    path = Path("/tmp") / f"interlink-e2e-cwd-{uuid.uuid4().hex[:12]}"
    path.mkdir(mode=0o1777)
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(autouse=True)
def no_condor_jobs_left_behind(testbed: Testbed) -> Iterator[None]:
    """Every test leaves HTCondor's queue empty (the node condor_rm's deleted pods)."""
    yield
    if "TESTBED_CHROOT" not in ENV:
        return
    emptied = wait_until(lambda: not condor_jobs(), timeout=30, interval=1)
    left = condor_jobs()
    if left:
        condor("condor_rm", "-all", check=False)
    assert emptied, f"HTCondor jobs left behind: {left}"


def write(workdir: Path, snakefile: str) -> Path:
    (workdir / "Snakefile").write_text(snakefile)
    return workdir


# ------------------------------------------------------------------ the S3 server


def test_radosgw_speaks_s3_with_the_testbeds_keys():
    client = s3_client()
    name = f"probe-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    try:
        client.put_object(Bucket=name, Key="dir/hello.txt", Body=b"hello radosgw\n")
        body = client.get_object(Bucket=name, Key="dir/hello.txt")["Body"].read()
        assert body == b"hello radosgw\n"
        listed = client.list_objects_v2(Bucket=name)["Contents"]
        assert [o["Key"] for o in listed] == ["dir/hello.txt"]
        assert name in [b["Name"] for b in client.list_buckets()["Buckets"]]
    finally:
        empty_and_delete(client, name)


# ------------------------------------------------------------------ HTCondor


def test_htcondor_example_sizes_jobs_from_whole_cpu_requests(
    testbed: Testbed, shared_dir: Path
):
    workdir = copy_example("htcondor", shared_dir)
    workdir.chmod(0o1777)
    with umask(0):
        run_readme("htcondor", workdir, user_env(testbed))
    summary = (workdir / "results" / "summary.txt").read_text().splitlines()
    assert summary == [
        *(
            f"{s} ran under HTCondor as tester with OMP_NUM_THREADS=1"
            for s in ("alpha", "beta", "gamma")
        ),
        "summary with OMP_NUM_THREADS=2",
    ]
    asked = {}
    for row in report_rows(workdir):
        ad = condor_ad(
            row["remote_job_id"],
            "RequestCpus",
            "RequestMemory",
            "MaxWallTimeMins",
            "Owner",
        )
        asked.setdefault(row["rule"], []).append(
            (ad["RequestCpus"], ad["RequestMemory"], ad["MaxWallTimeMins"], ad["Owner"])
        )
    assert asked == {
        "weigh": [(1, 300, 60, "tester")] * 3,
        "summary": [(2, 400, 60, "tester")],
    }
    # interLink's HTCondor plugin answers every log request with 200 "NOT IMPLEMENTED":
    # the log is the output the job kept on the shared filesystem
    log = next(
        (workdir / ".snakemake/interlink_logs/summary").rglob("*.log")
    ).read_text()
    assert "Finished jobid: 0 (Rule: summary)" in log, log[:2000]
    again = testbed.snakemake(workdir, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_fractional_cpu_request_is_refused_as_the_htcondor_plugin_refuses_it(
    testbed: Testbed, shared_dir: Path
):
    # with the Slurm flavour and requests of 10% of the limits, cpu is "100m"
    write(
        shared_dir,
        """
rule tiny:
    output: "tiny.txt"
    shell: "touch {output}"
""",
    )
    done = testbed.snakemake(
        shared_dir, *htcondor_args(), "--interlink-requests", "10%", timeout=180
    )
    assert done.returncode != 0
    assert "interLink could not submit the job" in done.stderr
    # the plugin crashes; Flask (debug=True) answers with the Werkzeug debugger's page,
    # which escapes '100m' as &#39;100m&#39;, and interLink's API escapes that once more
    assert (
        "invalid literal for int() with base 10: &amp;#39;100m&amp;#39;" in done.stderr
    )
    assert "(HTTP 500)" in done.stderr
    assert not (shared_dir / "tiny.txt").exists()


def test_held_job_fails_after_the_pending_timeout(testbed: Testbed, shared_dir: Path):
    # RequestCpus = 4 on a 2-CPU pool: the job stays idle, then an operator holds it
    write(
        shared_dir,
        """
rule greedy:
    output: "greedy.txt"
    threads: 4
    shell: "touch {output}"
""",
    )
    proc = testbed.start_snakemake(
        shared_dir,
        "--interlink-flavour",
        "htcondor",
        *htcondor_args(),
        "--interlink-pending-timeout",
        "25",
    )
    try:

        def submitted() -> list[dict]:
            return [
                p
                for p in testbed.pods()
                if (p["metadata"].get("annotations") or {}).get("JobID")
            ]

        assert wait_until(lambda: bool(submitted()), timeout=60), "never submitted"
        (pod,) = submitted()
        cluster = pod["metadata"]["annotations"]["JobID"]
        condor("condor_hold", "-reason", "held by the e2e test", cluster)

        def held() -> bool:
            for p in testbed.pods():
                for c in (p.get("status") or {}).get("containerStatuses") or []:
                    waiting = (c.get("state") or {}).get("waiting") or {}
                    if waiting.get("reason") == "JobHeld":
                        return "held by the e2e test" in waiting.get("message", "")
            return False

        assert wait_until(held, timeout=30), "the pod never showed JobHeld"
        assert all(p["status"]["phase"] == "Pending" for p in testbed.pods())
        out, _ = proc.communicate(timeout=180)
    finally:
        proc.kill()
    print(out[-5000:])
    assert proc.returncode != 0
    assert "pending on node vk-htcondor for more than 25 s" in out
    assert "--interlink-pending-timeout" in out


@contextlib.contextmanager
def vk_htcondor_options(args: str) -> Iterator[None]:
    """vk-htcondor restarted with TESTBED_HTCONDOR_VNODE_ARGS=<args>; restored afterwards."""
    up = [str(REPO / "testbed" / "up.sh")]

    def restart(value: str) -> None:
        env = {**os.environ, "TESTBED_HTCONDOR_VNODE_ARGS": value}
        done = subprocess.run(up, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    restart(args)
    try:
        yield
    finally:
        restart("")


def test_htcondor_serves_no_logs_so_the_jobs_kept_output_is_their_log(
    testbed: Testbed, shared_dir: Path
):
    write(
        shared_dir,
        """
rule all:
    input: "quiet.txt", "loud.txt"
rule quiet:
    output: "quiet.txt"
    shell: "echo done > {output}"
rule loud:
    output: "loud.txt"
    shell: "echo goodbye-from-htcondor; exit 2"
""",
    )
    started = time.monotonic()
    with umask(0):
        done = testbed.snakemake(
            shared_dir,
            "--keep-going",
            "--interlink-flavour",
            "htcondor",
            *htcondor_args(),
            *SHARED_FS_WITHOUT_SOURCE_CACHE,
            timeout=600,
        )
    print(f"run took {time.monotonic() - started:.0f} s")
    assert done.returncode != 0
    assert (shared_dir / "quiet.txt").read_text() == "done\n"
    (log,) = (shared_dir / ".snakemake/interlink_logs/quiet").rglob("*.log")
    assert "Finished jobid: 0 (Rule: quiet)" in log.read_text(), log.read_text()
    # a failed job's log is asked of interLink, whose plugin answers HTTP 200 with
    # "NOT IMPLEMENTED" (quotes included) for any pod: the stored log says so, then
    # gives the output the job kept, and the error shows its end
    (log,) = (shared_dir / ".snakemake/interlink_logs/loud").rglob("*.log")
    text = log.read_text()
    assert "does not serve logs" in text and '"NOT IMPLEMENTED"' in text, text
    assert "goodbye-from-htcondor" in text
    assert "goodbye-from-htcondor" in done.stderr, done.stderr[-3000:]


KILL_MY_END_REPORTER = """\
p=$$
while [ "$p" -gt 1 ]; do
  if tr '\\0' ' ' < /proc/$p/cmdline | grep -q end-reporter; then kill -9 "$p"; exit 0; fi
  p=$(awk '{print $4}' /proc/$p/stat)
done
echo "no end reporter above $$" >&2
exit 3
"""


def test_a_job_the_site_kills_keeps_its_output_until_then_on_htcondor(
    testbed: Testbed, shared_dir: Path
):
    """As a time limit or an eviction would, the job's script is killed (SIGKILL)
    before it ends: HTCondor's plugin serves no log, and the job wrote no end, so its
    stored log is the output it kept until the kill."""
    (shared_dir / "kill_my_end_reporter.sh").write_text(KILL_MY_END_REPORTER)
    write(
        shared_dir,
        """
rule killed:
    output: "killed.txt"
    shell: "echo before-the-kill; sh kill_my_end_reporter.sh; sleep 30; touch {output}"
""",
    )
    with umask(0):
        done = testbed.snakemake(
            shared_dir,
            "--interlink-flavour",
            "htcondor",
            *htcondor_args(),
            *SHARED_FS_WITHOUT_SOURCE_CACHE,
            timeout=600,
        )
    assert done.returncode != 0
    (log,) = (shared_dir / ".snakemake/interlink_logs/killed").rglob("*.log")
    text = log.read_text()
    assert '"NOT IMPLEMENTED"' in text, text
    assert "until it stopped (its script did not end" in text, text
    assert "before-the-kill" in text
    assert "no end reporter above" not in text
    assert not list((shared_dir / ".snakemake/interlink_output").iterdir())


def test_htcondor_plugin_head_fails_every_job_although_htcondor_runs_it(
    testbed: Testbed, shared_dir: Path
):
    """interlink-htcondor-plugin HEAD answers /create with 201, which interLink's VK
    refuses: the pod is ProviderFailed while its HTCondor job was submitted."""
    write(
        shared_dir,
        """
rule quiet:
    output: "quiet.txt"
    shell: "echo done > {output}"
""",
    )
    history = lambda: set(condor("condor_history", "-af", "ClusterId").split())  # noqa: E731
    before = history()
    with vk_htcondor_options("--plugin-build head"), umask(0):
        done = testbed.snakemake(
            shared_dir,
            "--interlink-flavour",
            "htcondor",
            *htcondor_args(),
            *SHARED_FS_WITHOUT_SOURCE_CACHE,
            timeout=600,
        )
        # the executor deletes the failed pod; the VK's delete condor_rm's the job
        assert wait_until(lambda: bool(history() - before), timeout=60, interval=2), (
            "no HTCondor job was submitted"
        )
    assert done.returncode != 0
    assert "interLink could not submit the job" in done.stderr
    assert "(HTTP 201)" in done.stderr and "&#34;PodJID&#34;" in done.stderr


# ------------------------------------------------------------------ object storage


def test_s3_example_without_a_shared_filesystem(
    testbed: Testbed, tmp_path: Path, bucket: str
):
    workdir = copy_example("s3", tmp_path)
    env = _need("TESTBED_S3_ACCESS_KEY", "TESTBED_S3_SECRET_KEY")
    outputs = run_readme(
        "s3",
        workdir,
        user_env(testbed),
        BUCKET=bucket,
        PREFIX="s3-example",
        ACCESS_KEY=env["TESTBED_S3_ACCESS_KEY"],
        SECRET_KEY=env["TESTBED_S3_SECRET_KEY"],
    )
    assert "b'9455\\n'" in outputs[-1], "the README's boto3 snippet reads the total"
    client = s3_client()
    keys = sorted(
        o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])
    )
    assert keys == sorted(
        [f"s3-example/data/chunk{i}.txt" for i in (1, 2, 3)]
        + [f"s3-example/results/squares{i}.txt" for i in (1, 2, 3)]
        + ["s3-example/results/total.txt"]
    )
    total = client.get_object(Bucket=bucket, Key="s3-example/results/total.txt")
    assert total["Body"].read() == b"9455\n"
    assert not (workdir / "results").exists() and not (workdir / "data").exists()
    assert all(row["state"] == "succeeded" for row in report_rows(workdir))


def test_two_sites_example_spreads_one_run_over_slurm_and_htcondor(
    testbed: Testbed, tmp_path: Path, bucket: str
):
    workdir = copy_example("two-sites", tmp_path)
    run_readme(
        "two-sites", workdir, user_env(testbed), BUCKET=bucket, PREFIX="two-sites"
    )
    report = s3_client().get_object(Bucket=bucket, Key="two-sites/results/report.txt")
    assert report["Body"].read().decode().splitlines() == [
        "1.txt 820 HTCondor",
        "2.txt 420 HTCondor",
        "3.txt 273 HTCondor",
        "4.txt 220 HTCondor",
    ]
    sites: dict[str, set[str]] = {}
    for row in report_rows(workdir):
        job = row["remote_job_id"]
        if row["rule"] == "fold":
            ad = condor_ad(job, "Cmd", "RequestCpus")
            assert row["pod"] in ad["Cmd"] and ad["RequestCpus"] == 1, ad
            sites.setdefault(row["rule"], set()).add("htcondor")
        else:
            state = sacct("-j", job, fields="State")
            assert state == ["COMPLETED"], (row, state)
            sites.setdefault(row["rule"], set()).add("slurm")
    assert sites == {"draw": {"slurm"}, "fold": {"htcondor"}, "report": {"slurm"}}


class TestSnakemakeS3Suite(TestWorkflowsMinioPlayStorageBase):
    """Snakemake's own storage test suite (simple and group workflows) with no shared
    filesystem: the default node (vk-slurm), S3 on the testbed's radosgw."""

    __test__ = True

    def get_executor(self) -> str:
        return "interlink"

    def get_executor_settings(self) -> ExecutorSettings | None:
        env = read_env(STATE / "env")
        return ExecutorSettings(
            kubeconfig=Path(env["TESTBED_EXECUTOR_KUBECONFIG"]),
            namespace=env["TESTBED_NAMESPACE"],
            status_interval=0.5,
        )

    def get_assume_shared_fs(self) -> bool:
        return False

    def cleanup_test(self):
        # the base class deletes the bucket only if it is empty
        empty_and_delete(s3_client(), self.bucket)


class TestSnakemakeS3SuiteOnHTCondor(TestSnakemakeS3Suite):
    """The same suite on the HTCondor node.

    The suite sets Snakemake's workdir through the API, and without a common workdir
    Snakemake then passes `--directory <workdir>` to every job, which changes into it (at a
    real site: a new, empty directory of that name). The chroot sees the host's /tmp, so
    the job, running as `tester`, meets pytest's 0700 tmp_path there: the suite runs in a
    world-writable directory instead, with umask 000.
    """

    @pytest.fixture
    def tmp_path(self, shared_dir: Path) -> Iterator[Path]:
        with umask(0):
            yield shared_dir

    def _copy_test_files(self, test_path, tmp_path):
        super()._copy_test_files(test_path, tmp_path)
        for path in [Path(tmp_path), *Path(tmp_path).rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)

    def get_executor_settings(self) -> ExecutorSettings | None:
        env = read_env(STATE / "env")
        _need("TESTBED_HTCONDOR_NODE", "TESTBED_HTCONDOR_TOLERATION")
        return ExecutorSettings(
            kubeconfig=Path(env["TESTBED_EXECUTOR_KUBECONFIG"]),
            namespace=env["TESTBED_NAMESPACE"],
            status_interval=0.5,
            node=env["TESTBED_HTCONDOR_NODE"],
            flavour="htcondor",
            tolerations=[env["TESTBED_HTCONDOR_TOLERATION"]],
        )


def test_the_testbeds_s3_keeps_every_part_of_concurrent_multipart_uploads(bucket: str):
    """A job's storage plugin uploads large outputs in parts, ten at a time. radosgw's
    dbstore lost parts stored at once (completion then fails with 400 InvalidPart, about
    one upload in ten under load), which no real S3 does: the testbed runs it with one
    request thread (testbed/configs/ceph.conf)."""
    from boto3.s3.transfer import TransferConfig

    client = s3_client()
    parts = TransferConfig(multipart_chunksize=8 * 2**20, max_concurrency=10)
    data = b"\0" * (80 * 2**20)
    for i in range(20):
        client.upload_fileobj(io.BytesIO(data), bucket, f"big-{i}", Config=parts)
    sizes = [obj["Size"] for obj in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sizes == [len(data)] * 20
