"""End-to-end fixtures: the running testbed (testbed/up.sh), never mocks.

Every test here runs the executor with the testbed's *executor* kubeconfig, whose user
holds only the namespaced Role of docs/setup.md, so the tests prove that Role suffices.
"""

from __future__ import annotations

import base64
import csv
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from snakemake_executor_plugin_interlink.kube import KubeClient, load_access

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("INTERLINK_TESTBED_STATE", "/tmp/interlink-testbed"))
MANAGED = "app.kubernetes.io/managed-by=snakemake"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip().removeprefix("export ")
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


class Testbed:
    __test__ = False  # a fixture value, not a test class

    def __init__(self, env: dict[str, str], local: bool = False):
        """`local`: the load test's node vk-local (fast local mode) and its namespace,
        which run beside the Slurm node's tests without touching them."""
        self.env = env
        self.local = local
        self.namespace = env[
            "TESTBED_LOCAL_NAMESPACE" if local else "TESTBED_NAMESPACE"
        ]
        self.executor_kubeconfig = env["TESTBED_EXECUTOR_KUBECONFIG"]
        self.admin_kubeconfig = env["TESTBED_ADMIN_KUBECONFIG"]
        self.node = env["TESTBED_LOCAL_NODE" if local else "TESTBED_NODE"]
        self.logs = Path(env.get("TESTBED_LOGS", STATE / "logs"))
        self.admin = KubeClient(load_access(kubeconfig=Path(self.admin_kubeconfig)))
        self.procs: list[subprocess.Popen] = []

    def pods(self, selector: str = MANAGED) -> list[dict]:
        return self.admin.list_pods(self.namespace, selector)[0]

    def submitted(self, at_least: int = 1) -> bool:
        """Whether that many pods' jobs reached the batch system (interLink writes the
        JobID annotation then). Their phase tells little: interLink refreshes about one
        pod's status per 10 s, so a job may go from Pending to Succeeded unseen."""
        return (
            sum(
                bool((p["metadata"].get("annotations") or {}).get("JobID"))
                for p in self.pods()
            )
            >= at_least
        )

    def secrets(self, selector: str = MANAGED) -> list[dict]:
        answer = self.admin.request(
            "GET",
            f"/api/v1/namespaces/{self.namespace}/secrets",
            params={"labelSelector": selector},
        )
        return answer["items"]

    def slurm_jobs(self) -> list[str]:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i %j %T"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line for line in out.splitlines() if line.strip()]

    def slurm_quiet(self, timeout: float = 60) -> None:
        """Wait until Slurm runs no job, then one second more, so that a `sacct -S now`
        sees none of an earlier test's jobs: a run ends when its jobs' status files say
        so, and their batch jobs end (or are cancelled) a moment later."""
        assert wait_until(lambda: not self.slurm_jobs(), timeout), self.slurm_jobs()
        time.sleep(1.1)

    def executor_args(self, in_pod: bool = False) -> list[str]:
        """In a pod the service account names the cluster and the namespace."""
        where = [
            "--interlink-kubeconfig",
            self.executor_kubeconfig,
            "--interlink-namespace",
            self.namespace,
        ]
        return [
            "--executor",
            "interlink",
            *([] if in_pod else where),
            "--interlink-status-interval",
            "0.5",
            *(
                [
                    "--interlink-node",
                    self.node,
                    "--interlink-tolerations",
                    self.env["TESTBED_LOCAL_TOLERATION"],
                ]
                if self.local
                else []
            ),
        ]

    def command(self, *args: str, in_pod: bool = False) -> list[str]:
        """snakemake with the executor on the testbed; later options win."""
        return [
            sys.executable,
            "-m",
            "snakemake",
            *self.executor_args(in_pod),
            "--jobs",
            "20",
            "--latency-wait",
            "5",
            *args,
        ]

    def snakemake(
        self,
        workdir: Path,
        *args: str,
        timeout: float = 600,
        env: dict[str, str] | None = None,
        under: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess:
        """Run to the end; `under` is a wrapper command Snakemake runs inside."""
        done = subprocess.run(
            [*under, *self.command(*args)],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        print(done.stdout[-5000:], done.stderr[-20000:], sep="\n")
        return done

    @staticmethod
    def unlock(workdir: Path) -> None:
        """What a user does after a killed run: `snakemake --unlock`."""
        subprocess.run(
            [sys.executable, "-m", "snakemake", "--unlock"],
            cwd=workdir,
            check=True,
            capture_output=True,
        )

    def start_snakemake(
        self,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        pod: Path | None = None,
    ) -> subprocess.Popen:
        """`pod`: a service account's directory (pod_files); Snakemake then runs as
        from inside a pod that mounts it (as_pod, in_pod_env)."""
        command = self.command(*args, in_pod=pod is not None)
        base = dict(os.environ)
        if pod is not None:
            command = ["sh", "-c", as_pod(shlex.join(command), pod)]
            base = in_pod_env(self, base, home=workdir)
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**base, **(env or {})},
            preexec_fn=_interruptible,
        )
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:  # a test that failed midway leaves its Snakemake
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:  # a killed run's output nobody read
                proc.stdout.close()
        self.procs.clear()
        self.admin.delete_pods(self.namespace, MANAGED)
        for secret in self.secrets():
            self.admin.delete_secret(self.namespace, secret["metadata"]["name"])
        wait_until(lambda: not self.pods(), timeout=60)
        if not self.local:  # vk-local's jobs are local processes, ended with their pods
            subprocess.run(["scancel", "--user", "root"], check=False)


SERVICE_ACCOUNT_DIR = "/run/secrets/kubernetes.io/serviceaccount"


def as_pod(command: str, service_account: Path) -> str:
    """A shell command run as from inside a pod: in a mount namespace of its own, the
    service account's directory bound at its standard path (a token written there
    later is seen, as the kubelet's rotated tokens are)."""
    inside = (
        f"mount -t tmpfs tmpfs /run && mkdir -p {SERVICE_ACCOUNT_DIR} && "
        f"mount --bind {shlex.quote(str(service_account))} {SERVICE_ACCOUNT_DIR} && "
        f"exec {command}"
    )
    return "unshare --mount --propagation private sh -c " + shlex.quote(inside)


def in_pod_env(testbed: Testbed, env: dict[str, str], home: Path) -> dict[str, str]:
    """`env` with no kubeconfig anywhere, and the API server where a pod finds it."""
    host, port = urlsplit(testbed.admin.access.server).netloc.rsplit(":", 1)
    return {
        **{k: v for k, v in env.items() if k != "KUBECONFIG"},
        "HOME": str(home),
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
    }


def pod_files(testbed: Testbed, namespace: str, account: str, directory: Path) -> Path:
    """What Kubernetes mounts into the pods of a service account (token, ca.crt,
    namespace), from the token Secret the controller-manager makes for it."""

    def token_secret() -> dict | None:
        found = testbed.admin.request(
            "GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}"
        )
        names = [s["name"] for s in found.get("secrets", [])]
        return names and testbed.admin.request(
            "GET", f"/api/v1/namespaces/{namespace}/secrets/{names[0]}"
        )

    assert wait_until(lambda: bool(token_secret()), timeout=30), "no token secret"
    data = token_secret()["data"]
    directory.mkdir()
    for name in ("token", "ca.crt"):
        (directory / name).write_bytes(base64.b64decode(data[name]))
    (directory / "namespace").write_text(namespace)
    return directory


def report_rows(workdir: Path) -> list[dict[str, str]]:
    """The run report's rows (jobs.tsv): one per pod, so one per attempt."""
    (report,) = (workdir / ".snakemake" / "interlink_reports").glob("*/jobs.tsv")
    with report.open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _interruptible() -> None:
    """Ctrl-C as a terminal sends it: a test suite started in the background of a
    script (`cmd &` without job control) ignores SIGINT, and its children inherit that,
    so the tests' SIGINT would never reach Snakemake."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sacct(*selection: str, fields: str, at_least: int = 0) -> list[str]:
    """Slurm's accounting for a selection (`-j ID,...`, `-S TIME`), one line per job (no
    header, no steps, `|`-separated `fields`), split in words.

    Accounting reaches slurmdbd asynchronously: a job can be missing for a moment after
    submission, and a short job's end can arrive before its start, so that until the start
    does, its row is a placeholder (one cpu, no time limit, memory unknown and printed
    "16?"). So the rows are taken from a read in which every job named by `-j` (and
    `at_least` jobs in all: a time selection names none) is present and every row has
    its time limit, or from the last read after a minute."""
    wanted = set()
    if "-j" in selection:
        wanted = set(selection[selection.index("-j") + 1].split(","))
    rows: list[list[str]] = []

    def whole() -> bool:
        nonlocal rows
        out = subprocess.run(
            [
                "sacct",
                "-n",
                "-X",
                "-P",
                *selection,
                "-o",
                f"JobIDRaw,Timelimit,{fields}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        rows = [line.split("|", 2) for line in out]
        present = {row[0] for row in rows}
        limits = all(row[1] for row in rows)
        return wanted <= present and len(present) >= at_least and limits

    wait_until(whole, timeout=60, interval=0.5)
    return [word for row in rows for word in row[2].split()]


def wait_until(predicate, timeout: float = 60, interval: float = 0.25) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


def running_testbed(local: bool = False) -> Iterator[Testbed]:
    env_file = STATE / "env"
    if not env_file.exists():
        pytest.fail(
            f"the testbed is not running ({env_file} missing): run testbed/up.sh"
        )
    env = read_env(env_file)
    if local and "TESTBED_LOCAL_NODE" not in env:
        pytest.fail(
            "the testbed runs without vk-local: run testbed/up.sh without TESTBED_LOCAL=0"
        )
    bed = Testbed(env, local)
    bed.cleanup()
    yield bed
    bed.admin.close()


@pytest.fixture(scope="session")
def testbed() -> Iterator[Testbed]:
    yield from running_testbed()


@pytest.fixture(scope="session")
def local_testbed() -> Iterator[Testbed]:
    """vk-local and its namespace: tests marked `load` use this one only, so that they can
    run in a pytest process of their own beside the others (scripts/test.sh)."""
    yield from running_testbed(local=True)


@pytest.fixture(autouse=True)
def nothing_left_behind(request):
    """Every end-to-end test must leave no pod, Secret or Slurm job of its runs."""
    local = request.node.get_closest_marker("load") is not None
    testbed = request.getfixturevalue("local_testbed" if local else "testbed")
    yield
    if request.node.get_closest_marker("keeps_pods"):
        testbed.cleanup()
        return
    settled = wait_until(
        lambda: not testbed.pods() and not testbed.secrets(), timeout=30
    )
    pods = [p["metadata"]["name"] for p in testbed.pods()]
    secrets = [s["metadata"]["name"] for s in testbed.secrets()]
    slurm = [] if local else testbed.slurm_jobs()
    testbed.cleanup()
    assert settled and not pods and not secrets, f"left behind: {pods} {secrets}"
    assert not slurm, f"Slurm jobs left behind: {slurm}"


@pytest.fixture
def figures(capsys):
    """Print a measured figure even when the test passes (CI's log keeps it)."""

    def say(line: str) -> None:
        with capsys.disabled():
            print(f"\nFIGURES: {line}")

    return say


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory under /tmp, which the virtual node binds like a shared FS."""
    return tmp_path


def copy_example(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(
        REPO / "examples" / name,
        target,
        ignore=shutil.ignore_patterns(".snakemake", "results"),
    )
    return target


def interrupt(
    proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 120
) -> str:
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=timeout)
    print(out[-10000:])
    return out
