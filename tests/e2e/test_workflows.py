"""Real workflows through the whole chain: Snakemake -> kube-apiserver -> virtual node
-> Slurm, and back."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Optional

from snakemake.common.tests import TestWorkflowsLocalStorageBase

from snakemake_executor_plugin_interlink.settings import ExecutorSettings

from .conftest import (
    STATE,
    Testbed,
    copy_example,
    interrupt,
    read_env,
    report_rows,
    sacct,
    wait_until,
)
from .documented import run_readme, user_env


class TestSnakemakeSuite(TestWorkflowsLocalStorageBase):
    """Snakemake's own plugin test suite (simple and group workflows), shared FS."""

    __test__ = True

    def get_executor(self) -> str:
        return "interlink"

    def get_executor_settings(self) -> Optional[ExecutorSettings]:
        env = read_env(STATE / "env")
        return ExecutorSettings(
            kubeconfig=Path(env["TESTBED_EXECUTOR_KUBECONFIG"]),
            namespace=env["TESTBED_NAMESPACE"],
            status_interval=0.5,
        )


def run_example(testbed: Testbed, tmp_path: Path, example: str) -> Path:
    """The example's README commands as written, then the checks every example passes:
    a rerun finds nothing to do and each job's log is stored."""
    workdir = copy_example(example, tmp_path)
    run_readme(example, workdir, user_env(testbed))
    again = testbed.snakemake(workdir, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr
    logs = list((workdir / ".snakemake" / "interlink_logs").rglob("*.log"))
    assert logs, "no job log was stored"
    return workdir


def slurm_allocation(remote_job_id: str) -> tuple[str, str, str]:
    """What Slurm gave one job: (AllocCPUS, ReqMem, Timelimit)."""
    out = sacct("-j", remote_job_id, fields="AllocCPUS,ReqMem,Timelimit")
    cpus, mem, time_limit = out[0].split("|")
    return cpus, mem, time_limit


def test_accounting_is_read_only_once_slurmdbd_has_whole_rows(testbed: Testbed):
    """The allocation checks below read sacct right after a run: the rows of its last,
    shortest jobs must be their real ones, not slurmdbd's placeholders."""
    jobs = [
        subprocess.run(
            ["sbatch", "--parsable", "--wrap=true", "--mem=123", "-t3", "-o/dev/null"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for _ in range(10)
    ]
    # slurmdbd learns of new jobs a moment after their submission: read at once, the
    # rows must still be all of them, whole
    assert sacct("-j", ",".join(jobs), fields="ReqMem,Timelimit") == [
        "123M|00:03:00"
    ] * len(jobs)
    seen: set[str] = set()

    def ended() -> bool:
        rows = sacct("-j", ",".join(jobs), fields="ReqMem,Timelimit,State")
        seen.update(row.rsplit("|", 1)[0] for row in rows)
        return rows == ["123M|00:03:00|COMPLETED"] * len(jobs)

    # read from submission to the end of the last job, when placeholders are likeliest
    assert wait_until(ended, timeout=120, interval=0.1), seen
    assert seen == {"123M|00:03:00"}


def slurm_allocations(
    workdir: Path, rules: tuple[str, ...] = ()
) -> dict[str, list[tuple[str, str, str]]]:
    """Per rule (all, or those named), what Slurm gave each job, found through the run
    report's remote job ids."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for row in report_rows(workdir):
        if rules and row["rule"] not in rules:
            continue
        assert row["remote_job_id"], row
        found.setdefault(row["rule"], []).append(slurm_allocation(row["remote_job_id"]))
    return found


def test_hello_runs_on_slurm_with_the_rules_resources(testbed: Testbed, tmp_path: Path):
    workdir = run_example(testbed, tmp_path, "hello")
    summary = (workdir / "results" / "summary.txt").read_text().splitlines()
    assert [line.split()[1] for line in summary] == ["alpha", "beta", "gamma"]
    # threads: 2, mem_mb=500, runtime=5 became --cpus-per-task=2 --mem=500 --time=5
    assert slurm_allocations(workdir) == {
        "greet": [("2", "500M", "00:05:00")] * 3,
        "summary": [("1", "400M", "00:02:00")],
    }
    log = workdir / ".snakemake/interlink_logs/greet/sample=alpha"
    (stored,) = log.glob("*.log")  # by rule and wildcards
    # a succeeded job's log is the output it kept on the shared filesystem: its own
    # Snakemake's lines, without the site's (only interLink's log has those)
    text = stored.read_text()
    assert "Finished jobid: 0 (Rule: greet)" in text and "scontrol" not in text, text
    assert list((workdir / ".snakemake/interlink_output").iterdir()) == []


def write(workdir: Path, snakefile: str) -> Path:
    (workdir / "Snakefile").write_text(snakefile)
    return workdir


def test_failing_rule_reports_exit_code_and_log_tail_and_retries(
    testbed: Testbed, workdir: Path
):
    write(
        workdir,
        """
rule fail:
    output: "never.txt"
    shell: "echo this-job-says-goodbye; exit 3"
""",
    )
    done = testbed.snakemake(workdir, "--retries", "1")
    assert done.returncode != 0
    out = done.stderr
    assert "the rule's command exited with status 3" in out
    assert "this-job-says-goodbye" in out, "the log tail is part of the error"
    attempts = set(re.findall(r"pod (snakejob-\w+-\d+-(\d+))\) failed", out))
    assert {a for _, a in attempts} == {"1", "2"}, "--retries 1 resubmitted the job"
    # each attempt's log is kept (a retry has the same job id); a failed job's log
    # is interLink's: the site's lines beside the job's output
    folder = workdir / ".snakemake/interlink_logs/fail/all"
    assert sorted(p.name for p in folder.iterdir()) == ["0.attempt2.log", "0.log"]
    for log in folder.iterdir():
        text = log.read_text()
        assert "scontrol show job" in text and "this-job-says-goodbye" in text, text


def test_rule_retries_run_each_attempt_in_a_pod_sized_for_it(
    testbed: Testbed, workdir: Path
):
    """A rule's `retries:` is the main Snakemake's: attempt 2 is a new pod whose batch
    job has attempt 2's memory, not a retry inside attempt 1's pod."""
    write(
        workdir,
        """
rule flaky:
    output: "flaky.txt"
    retries: 2
    resources: mem_mb=lambda wc, attempt: 400 * attempt
    # attempt 1 fails; its sleep lets interLink's JobID reach the pod before its end
    shell: "if [ {resources.mem_mb} -lt 800 ]; then sleep 3; exit 5; fi; echo {resources.mem_mb} > {output}"
""",
    )
    testbed.slurm_quiet()
    start = time.strftime("%Y-%m-%dT%H:%M:%S")
    done = testbed.snakemake(workdir)
    assert done.returncode == 0
    assert (workdir / "flaky.txt").read_text().split() == ["800"]
    rows = sorted(report_rows(workdir), key=lambda row: int(row["attempt"]))
    assert [(row["attempt"], row["state"]) for row in rows] == [
        ("1", "failed"),
        ("2", "succeeded"),
    ], "each attempt ran in a pod of its own"
    assert rows[0]["pod"] != rows[1]["pod"]
    # the batch jobs of this test, in order (a report row may lack the job id when the
    # job ended before interLink's JobID was seen): those that ran since it started,
    # once slurmdbd has both (the run can end before attempt 2's row arrives there)
    rows = sacct("-S", start, fields="ReqMem,State", at_least=2)
    jobs = [line.split("|") for line in rows]
    memory = [mem for mem, state in jobs if not state.startswith("CANCELLED")]
    assert memory == ["400M", "800M"], "attempt 2's batch job got attempt 2's memory"


def test_runtime_exceeded_gets_the_time_limit_reason(testbed: Testbed, workdir: Path):
    write(
        workdir,
        """
rule slow:
    output: "slow.txt"
    resources: runtime=1
    shell: "sleep 300; touch {output}"
""",
    )
    done = testbed.snakemake(workdir, timeout=400)
    assert done.returncode != 0
    assert "time limit" in done.stderr and "raise runtime" in done.stderr


def test_unknown_partition_fails_fast_with_slurms_message(
    testbed: Testbed, workdir: Path
):
    write(
        workdir,
        """
rule p:
    output: "p.txt"
    resources: slurm_partition="nosuchpartition"
    shell: "touch {output}"
""",
    )
    done = testbed.snakemake(workdir, timeout=120)
    assert done.returncode != 0
    assert "interLink could not submit the job" in done.stderr
    assert "invalid partition" in done.stderr.lower()


def test_pod_deleted_with_kubectl_fails_the_job_clearly(
    testbed: Testbed, workdir: Path
):
    write(
        workdir,
        """
rule sleepy:
    output: "s.txt"
    shell: "sleep 120; touch {output}"
""",
    )
    proc = testbed.start_snakemake(workdir)
    try:
        assert wait_until(lambda: testbed.submitted(1), timeout=60)
        (pod,) = testbed.pods()
        testbed.admin.delete_pod(testbed.namespace, pod["metadata"]["name"])
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    print(out)
    assert proc.returncode != 0
    assert "deleted outside Snakemake" in out


def test_sigint_mid_run_leaves_nothing_behind(testbed: Testbed, workdir: Path):
    write(
        workdir,
        """
rule all:
    input: expand("out/{i}.txt", i=range(6))
rule sleepy:
    output: "out/{i}.txt"
    shell: "sleep 300; touch {output}"
""",
    )
    proc = testbed.start_snakemake(workdir, "--envvars", "HOME")
    assert wait_until(lambda: testbed.submitted(2), timeout=90)
    assert testbed.secrets(), "the run's Secret exists while it runs"
    interrupt(proc)
    assert not testbed.pods() and not testbed.secrets()
    assert wait_until(lambda: not testbed.slurm_jobs(), timeout=30)


def test_profile_resources_reach_slurm(testbed: Testbed, tmp_path: Path):
    workdir = run_example(testbed, tmp_path, "profile")
    assert slurm_allocations(workdir) == {
        "heavy": [("2", "1G", "00:10:00")],
        "light": [("1", "256M", "00:05:00")],
    }


def test_threads_zero_runs_on_one_cpu_and_a_gpu_model_alone_asks_slurm_for_one_gpu(
    testbed: Testbed, workdir: Path
):
    """Rules the Slurm plugin accepts: `threads: 0` (a rule that uses no core) and
    `gpu_model` without `gpu` (one GPU of that model). The testbed's Slurm has no GPUs,
    so the GPU job fails at sbatch with Slurm's own words: the flag reached Slurm."""
    write(
        workdir,
        """
rule all:
    input: "nocore.txt", "gpu.txt"
rule nocore:
    output: "nocore.txt"
    threads: 0
    shell: "echo none > {output}"
rule gpu:
    output: "gpu.txt"
    resources: gpu_model="tesla"
    shell: "touch {output}"
""",
    )
    proc = testbed.start_snakemake(workdir, "--keep-going")
    flags: dict[str, str] = {}

    def snapshot() -> bool:
        for pod in testbed.pods():
            meta = pod["metadata"]
            rule = meta["annotations"].get("interlink.snakemake.io/rule", "")
            flags[rule] = meta["annotations"].get("slurm-job.vk.io/flags", "")
        return proc.poll() is not None

    assert wait_until(snapshot, timeout=300)
    out, _ = proc.communicate()
    print(out[-5000:])
    assert proc.returncode != 0, "the GPU job cannot run on a Slurm without GPUs"
    assert "--gres=gpu:tesla:1" in flags["gpu"].split()
    assert "invalid generic resource" in out.lower(), "Slurm's own refusal"
    assert (workdir / "nocore.txt").read_text() == "none\n"
    ((cpus, _, _),) = slurm_allocations(workdir, ("nocore",))["nocore"]
    assert cpus == "1"


# both quote kinds, spaces, `$`, backquotes, a backslash, non-ASCII (issue 12)
AWKWARD_WILDCARDS = ["a'b\"c $HOME", "naïve \\ `id` ü"]


def test_wildcards_with_quotes_spaces_and_dollars_run(testbed: Testbed, workdir: Path):
    """Snakemake writes --target-jobs with `repr`, which the job's shell could not read
    for a'b"c ("Unterminated quoted string", exit 2): single and group jobs run."""
    write(
        workdir,
        f"""
VALUES = {AWKWARD_WILDCARDS!r}

rule all:
    input: expand(["single/{{w}}.txt", "group/{{w}}.txt"], w=VALUES)

rule single:
    output: "single/{{w}}.txt"
    shell: "printf %s {{wildcards.w:q}} > {{output:q}}"

rule first:
    output: temp("mid/{{w}}.txt")
    group: "pair"
    shell: "printf %s {{wildcards.w:q}} > {{output:q}}"

rule second:
    input: "mid/{{w}}.txt"
    output: "group/{{w}}.txt"
    group: "pair"
    shell: "cp {{input:q}} {{output:q}}"
""",
    )
    done = testbed.snakemake(workdir)
    assert done.returncode == 0
    for value in AWKWARD_WILDCARDS:
        for kind in ("single", "group"):
            assert (workdir / kind / f"{value}.txt").read_text() == value
        assert not (workdir / "mid" / f"{value}.txt").exists(), "temp file removed"


def test_a_wildcard_value_snakemake_cannot_pass_is_refused_before_its_pod(
    testbed: Testbed, workdir: Path
):
    """Snakemake's --target-jobs parser splits values at ',': the job would be
    another one (or none), so no pod is created for it."""
    write(
        workdir,
        """
rule all:
    input: "out/a,b.txt"

rule make:
    output: "out/{w}.txt"
    shell: "touch {output:q}"
""",
    )
    done = testbed.snakemake(workdir)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Rule make: the value 'a,b' of wildcard w cannot be passed" in out
    (run_id,) = re.findall(r"interlink: run ([0-9a-f-]{36}) ", out)
    events = testbed.admin.request(
        "GET", f"/api/v1/namespaces/{testbed.namespace}/events"
    )["items"]
    ours = f"snakejob-{run_id[:8]}-"
    assert not [e for e in events if e["involvedObject"]["name"].startswith(ours)]
    assert not (workdir / "out").exists()
