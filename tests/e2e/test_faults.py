"""Faults of the chain itself: the API server restarts, the virtual node or Slurm goes
away for a while, bad input. Each run must complete (or refuse before creating any
pod), with every job run exactly once and nothing left behind."""

from __future__ import annotations

import base64
import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from snakemake_executor_plugin_interlink.kube import NotFound

from .conftest import REPO, Testbed, sacct, wait_until

CTL = str(REPO / "testbed" / "ctl.sh")


def write(workdir: Path, snakefile: str) -> None:
    (workdir / "Snakefile").write_text(snakefile)


def many_jobs(workdir: Path, n: int, seconds: float) -> None:
    write(
        workdir,
        f"""
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))
rule work:
    output: "out/{{i}}.txt"
    resources: mem_mb=300
    shell: "echo {{wildcards.i}} >> runs.log; sleep {seconds}; touch {{output}}"
""",
    )


def ran_once(workdir: Path, n: int) -> bool:
    runs = sorted(int(x) for x in (workdir / "runs.log").read_text().split())
    return runs == list(range(n))


def slurm_jobs_since(start: str) -> int:
    return len(sacct("-S", start, fields="JobID"))


def running_pods(testbed: Testbed) -> int:
    return sum(
        (p.get("status") or {}).get("phase") == "Running" for p in testbed.pods()
    )


def finished_pods(testbed: Testbed) -> int:
    return sum(
        (p.get("status") or {}).get("phase") == "Succeeded" for p in testbed.pods()
    )


def test_api_server_restart_mid_run(testbed: Testbed, workdir: Path, figures):
    many_jobs(workdir, 50, 1)
    start = time.strftime("%Y-%m-%dT%H:%M:%S")
    proc = testbed.start_snakemake(workdir)
    assert wait_until(
        lambda: (
            (workdir / "runs.log").exists()
            and len((workdir / "runs.log").read_text().split()) >= 5
        ),
        timeout=120,
    )
    subprocess.run([CTL, "stop", "kube-apiserver"], check=True)
    time.sleep(10)
    subprocess.run([CTL, "start"], check=True)
    out, _ = proc.communicate(timeout=900)
    print(out[-3000:])
    assert proc.returncode == 0, "the outage failed the run"
    assert "failed:" not in out and ", 0 failed" in out
    assert ran_once(workdir, 50)
    slurm = slurm_jobs_since(start)
    figures(f"API server down 10 s mid-run: 50 jobs, {slurm} Slurm jobs, 0 failed")
    assert slurm == 50, "every job was one Slurm job"


def test_slurm_controller_down_for_a_minute(testbed: Testbed, workdir: Path):
    many_jobs(workdir, 6, 15)
    proc = testbed.start_snakemake(workdir)
    # all six are submitted (two run, four queue in Slurm) before the controller stops
    assert wait_until(
        lambda: (
            sum(
                bool((p["metadata"].get("annotations") or {}).get("JobID"))
                for p in testbed.pods()
            )
            == 6
        ),
        timeout=120,
    )
    subprocess.run([CTL, "stop", "slurmctld"], check=True)
    time.sleep(60)
    subprocess.run([CTL, "start"], check=True)
    out, _ = proc.communicate(timeout=600)
    print(out[-3000:])
    assert proc.returncode == 0
    assert ran_once(workdir, 6)


def test_virtual_node_down_then_back_readopts_its_pods(testbed: Testbed, workdir: Path):
    many_jobs(workdir, 4, 40)  # longer than the outage: the node must report them
    proc = testbed.start_snakemake(workdir)
    assert wait_until(
        lambda: (
            len(testbed.pods()) == 4
            and all(
                (p["metadata"].get("annotations") or {}).get("JobID")
                for p in testbed.pods()
            )
        ),
        timeout=120,
    )
    subprocess.run([CTL, "stop", testbed.node], check=True)
    time.sleep(25)
    assert proc.poll() is None, "the run waits for the node"
    subprocess.run([CTL, "start"], check=True)
    out, _ = proc.communicate(timeout=600)
    print(out[-3000:])
    assert proc.returncode == 0
    assert ran_once(workdir, 4), "re-adopted through JobID, not resubmitted"


def bare_pod(testbed: Testbed, name: str, toleration_seconds: int) -> None:
    """A pod as Kubernetes' defaults would make it, with a short not-ready/unreachable
    toleration standing for the 300 s that DefaultTolerationSeconds gives every pod."""
    tolerations = [
        {"key": "virtual-node.interlink/no-schedule", "operator": "Exists"},
        *(
            {
                "key": f"node.kubernetes.io/{kind}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": toleration_seconds,
            }
            for kind in ("not-ready", "unreachable")
        ),
    ]
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "snakemake"},
        },
        "spec": {
            "restartPolicy": "Never",
            "nodeName": testbed.node,
            "tolerations": tolerations,
            "containers": [{"name": "c", "image": "x", "command": ["sleep", "300"]}],
        },
    }
    testbed.admin.request(
        "POST", f"/api/v1/namespaces/{testbed.namespace}/pods", body=manifest
    )


def node_settled(testbed: Testbed) -> bool:
    """Ready, and without the node-lifecycle controller's taints."""
    node = testbed.admin.request("GET", f"/api/v1/nodes/{testbed.node}")
    ready = any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in node["status"].get("conditions", [])
    )
    taints = node["spec"].get("taints") or []
    return ready and not any(t["key"].startswith("node.kubernetes.io/") for t in taints)


def deleting(testbed: Testbed, name: str) -> bool:
    pod = next((p for p in testbed.pods() if p["metadata"]["name"] == name), None)
    return pod is not None and bool(pod["metadata"].get("deletionTimestamp"))


def test_jobs_ride_out_a_virtual_node_outage_that_evicts_other_pods(
    testbed: Testbed, workdir: Path
):
    """The node-lifecycle controller taints a silent node and evicts pods whose
    toleration runs out (Kubernetes' default: 300 s, which would kill hours-long jobs
    during an interLink restart and orphan their batch jobs). The executor's pods
    tolerate the outage (--interlink-node-outage-tolerance) and finish once the
    node is back."""
    many_jobs(workdir, 2, 120)
    proc = testbed.start_snakemake(workdir)
    assert wait_until(
        lambda: (
            sum(
                bool((p["metadata"].get("annotations") or {}).get("JobID"))
                for p in testbed.pods()
            )
            == 2
        ),
        timeout=120,
    )
    # The 1.20 node-lifecycle controller can keep a node that flapped (as the earlier
    # tests make vk-slurm do) in its NoExecute queue's set and then never taint it
    # again (markNodeForTainting resets the entry only from 1.21 on): restarted, it
    # starts from a clean state, as a cluster that saw no flap.
    subprocess.run([CTL, "stop", "kube-controller-manager"], check=True)
    subprocess.run([CTL, "start"], check=True)
    # a node that came back moments ago may still carry the controller's taints
    assert wait_until(lambda: node_settled(testbed), timeout=120)
    bare_pod(testbed, "evicted-by-default", toleration_seconds=5)
    assert wait_until(
        lambda: any(
            (p["metadata"].get("annotations") or {}).get("JobID")
            for p in testbed.pods()
            if p["metadata"]["name"] == "evicted-by-default"
        ),
        timeout=60,
    )
    subprocess.run([CTL, "stop", testbed.node], check=True)
    try:
        # the last ping (<= 30 s ago), node-monitor-grace-period (40 s), the
        # unreachable taint (rate-limited), then 5 s
        assert wait_until(
            lambda: deleting(testbed, "evicted-by-default"), timeout=240
        ), "the node-lifecycle controller did not evict the pod with a short toleration"
        jobs = [
            p["metadata"]["name"]
            for p in testbed.pods()
            if p["metadata"]["name"] != "evicted-by-default"
        ]
        assert len(jobs) == 2 and not any(deleting(testbed, name) for name in jobs)
    finally:
        subprocess.run([CTL, "start"], check=True)
    out, _ = proc.communicate(timeout=600)
    print(out[-3000:])
    assert proc.returncode == 0, "the executor's jobs were evicted"
    assert ran_once(workdir, 2)


def test_virtual_node_down_fails_waiting_jobs_after_the_timeout(
    testbed: Testbed, workdir: Path
):
    many_jobs(workdir, 2, 1)
    subprocess.run([CTL, "stop", testbed.node], check=True)
    try:
        done = testbed.snakemake(
            workdir, "--interlink-unschedulable-timeout", "15", timeout=300
        )
    finally:
        subprocess.run([CTL, "start"], check=True)
    assert done.returncode != 0
    assert (
        f"virtual node {testbed.node} did not submit the job within 15 s" in done.stderr
    )
    assert "interLink may be down" in done.stderr


def test_missing_namespace_is_refused_before_any_pod(testbed: Testbed, workdir: Path):
    many_jobs(workdir, 1, 0)
    done = testbed.snakemake(workdir, "--interlink-namespace", "no-such-namespace")
    assert done.returncode != 0
    assert "no-such-namespace" in done.stderr
    assert "create it" in done.stderr or "lacks permissions" in done.stderr
    assert not (workdir / "runs.log").exists()


def test_environment_too_large_for_a_secret_is_refused(testbed: Testbed, workdir: Path):
    many_jobs(workdir, 1, 0)
    # one variable may hold at most 128 KiB (execve), so eleven of 100 kB
    big = {f"HUGE{i}": "x" * 100_000 for i in range(11)}
    done = testbed.snakemake(workdir, "--envvars", *big, env=big)
    assert done.returncode != 0
    assert "more than a Kubernetes Secret holds" in done.stderr
    assert not testbed.pods() and not testbed.secrets()


@dataclass
class ExecutorAccount:
    kubeconfig: Path
    revoke: Callable[[], None]  # removes its RoleBinding


@contextmanager
def executor_account(
    testbed: Testbed, tmp_path: Path, name: str, without_verb: str = ""
) -> Iterator[ExecutorAccount]:
    """A service account of its own with the Role of docs/setup.md (less one verb if
    asked), so that a test can take its rights away without touching other tests."""
    ns, admin = testbed.namespace, testbed.admin
    role = yaml.safe_load((REPO / "testbed" / "rbac.yaml").read_text().split("---")[1])
    role["metadata"]["name"] = name
    if without_verb:
        role["rules"][0]["verbs"].remove(without_verb)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        },
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }
    base = f"/api/v1/namespaces/{ns}"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
    admin.request("POST", f"{base}/serviceaccounts", body={"metadata": {"name": name}})
    admin.request("POST", f"{rbac}/roles", body=role)
    admin.request("POST", f"{rbac}/rolebindings", body=binding)

    def revoke() -> None:
        with contextlib.suppress(NotFound):
            admin.request("DELETE", f"{rbac}/rolebindings/{name}")

    try:
        assert wait_until(
            lambda: admin.request("GET", f"{base}/serviceaccounts/{name}").get(
                "secrets"
            ),
            timeout=30,
        )
        secret = admin.request("GET", f"{base}/serviceaccounts/{name}")["secrets"][0][
            "name"
        ]
        token = base64.b64decode(
            admin.request("GET", f"{base}/secrets/{secret}")["data"]["token"]
        ).decode()
        config = yaml.safe_load(Path(testbed.executor_kubeconfig).read_text())
        config["users"][0]["user"] = {"token": token}
        path = tmp_path / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        yield ExecutorAccount(path, revoke)
    finally:
        revoke()
        admin.request("DELETE", f"{rbac}/roles/{name}")
        admin.request("DELETE", f"{base}/serviceaccounts/{name}")


def test_missing_rbac_verb_is_named_before_any_pod(
    testbed: Testbed, workdir: Path, tmp_path: Path
):
    many_jobs(workdir, 1, 0)
    with executor_account(
        testbed, tmp_path, "limited-executor", without_verb="deletecollection"
    ) as account:
        done = testbed.snakemake(
            workdir, "--interlink-kubeconfig", str(account.kubeconfig)
        )
    assert done.returncode != 0
    assert "lacks permissions" in done.stderr and "deletecollection pods" in done.stderr
    assert not testbed.pods()


@pytest.mark.keeps_pods  # without its Role the run cannot delete its pods
def test_a_role_removed_while_jobs_run_fails_them_in_bounded_time(
    testbed: Testbed, workdir: Path, tmp_path: Path
):
    """The Role goes away while every job is Running: no pod changes any more, and
    the run must still end, each job naming the refused permission. (It used to wait
    for ever: a round with no changed pod never looked at the watch's failure.)"""
    many_jobs(workdir, 2, 600)
    tolerance, relist = 10, 10  # the watch notices at its next start, <= relist
    with executor_account(testbed, tmp_path, "revoked-executor") as account:
        proc = testbed.start_snakemake(
            workdir,
            "--interlink-kubeconfig",
            str(account.kubeconfig),
            "--interlink-relist-interval",
            str(relist),
            "--interlink-refusal-tolerance",
            str(tolerance),
        )
        assert wait_until(lambda: running_pods(testbed) == 2, timeout=120)
        account.revoke()
        revoked = time.monotonic()
        out, _ = proc.communicate(timeout=tolerance + relist + 120)
        took = time.monotonic() - revoked
    print(out[-4000:])
    assert proc.returncode != 0
    assert out.count("could not be watched for 10 s") == 2
    assert 'system:serviceaccount:snakemake:revoked-executor" cannot' in out
    assert took < tolerance + relist + 60


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.1])
def test_sigint_during_a_wide_submission_leaves_nothing(
    testbed: Testbed, workdir: Path, delay: float
):
    """The signal lands while 60 pods are being created and status rounds run."""
    import signal

    many_jobs(workdir, 60, 30)
    proc = testbed.start_snakemake(workdir, "--interlink-status-interval", "0.1")
    assert wait_until(lambda: len(testbed.pods()) > 0, timeout=60, interval=0.02)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=180)
    assert not testbed.pods() and not testbed.secrets()
    assert wait_until(lambda: not testbed.slurm_jobs(), timeout=30)


def test_sigterm_finishes_running_jobs_then_cleans_up(testbed: Testbed, workdir: Path):
    """Snakemake's SIGTERM: submit nothing new, wait for what runs, then exit; the
    executor then removes every pod and the Secret."""
    import signal

    many_jobs(workdir, 4, 8)
    proc = testbed.start_snakemake(
        workdir,
        "--jobs",
        "2",
        "--envvars",
        "HOME",
        "--interlink-termination-grace",
        "120",
    )
    assert wait_until(lambda: testbed.submitted(2), timeout=90)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    print(out[-3000:])
    assert "Will exit after finishing currently running jobs" in out
    assert len(list((workdir / "out").glob("*.txt"))) == 2
    assert not testbed.pods() and not testbed.secrets()


@pytest.mark.keeps_pods  # the API server is away while the run ends: see below
def test_sigterm_during_an_api_outage_ends_after_the_grace(
    testbed: Testbed, workdir: Path
):
    """A JupyterHub culling its server sends SIGTERM, then SIGKILL 30 s later.
    Snakemake alone would wait for the running jobs, for ever while the API server is
    away. After the grace the run cancels them and ends; what it could not delete it
    names, with the command that removes it."""
    import signal

    many_jobs(workdir, 2, 120)
    proc = testbed.start_snakemake(workdir, "--interlink-termination-grace", "5")
    assert wait_until(lambda: testbed.submitted(2), timeout=90)
    subprocess.run([CTL, "stop", "kube-apiserver"], check=True)
    try:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)  # bounded: a hang fails the test here
    finally:
        subprocess.run([CTL, "start"], check=True)
    print(out[-3000:])
    assert proc.returncode != 0
    assert out.count("did not end within --interlink-termination-grace") == 2
    assert "could not delete the run's pods" in out and "kubectl -n" in out
    assert len(testbed.pods()) == 2, (
        "the outage kept the pods: the fixture removes them"
    )


def test_sigterm_cancels_what_still_runs_after_the_grace(
    testbed: Testbed, workdir: Path
):
    import signal

    many_jobs(workdir, 2, 120)
    proc = testbed.start_snakemake(workdir, "--interlink-termination-grace", "5")
    assert wait_until(lambda: testbed.submitted(2), timeout=90)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    print(out[-3000:])
    assert proc.returncode != 0
    assert out.count("was cancelled. Run the workflow again") == 2
    assert not testbed.pods() and not testbed.secrets()
    assert wait_until(lambda: not testbed.slurm_jobs(), timeout=30), (
        "batch jobs cancelled"
    )


# Runs Snakemake's CLI twice in one process (a notebook, a test harness), then names the
# threads still alive. The interface package's module-level pool (ThreadPoolExecutor-0)
# lives as long as the process by design; anything else was started by a run.
TWO_RUNS_IN_ONE_PROCESS = """
import sys, threading
from snakemake.cli import main
for _ in range(2):
    try:
        main(sys.argv[1:])
    except SystemExit as e:
        print("EXIT", e.code, file=sys.stderr)
left = [t.name for t in threading.enumerate()
        if t is not threading.main_thread() and not t.name.startswith("ThreadPoolExecutor-0_")]
print("LEFT", left, file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("snakefile", "args"),
    [
        # refused when the job is submitted: the run had started its threads
        (
            'rule bad:\n    output: "b"\n    resources: mem_mb=-5\n    shell: "touch {output}"\n',
            (),
        ),
        # refused during start-up: the base class's status thread already ran
        (
            'rule ok:\n    output: "o"\n    shell: "touch {output}"\n',
            ("--interlink-namespace", "no-such-namespace"),
        ),
    ],
    ids=["bad-resources", "failed-start-up"],
)
def test_no_thread_outlives_a_failed_run_in_the_same_process(
    testbed: Testbed, workdir: Path, snakefile: str, args: tuple[str, ...]
):
    (workdir / "Snakefile").write_text(snakefile)
    command = testbed.command(*args)
    done = subprocess.run(
        [command[0], "-c", TWO_RUNS_IN_ONE_PROCESS, *command[3:]],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(done.stderr[-5000:])
    assert done.stderr.count("EXIT 1") == 2, "both runs fail"
    assert "LEFT []" in done.stderr
    assert "cannot schedule new futures" not in done.stderr
