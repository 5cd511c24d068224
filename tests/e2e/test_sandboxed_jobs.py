"""The executor's real jobs in the testbed's `singularity exec --containall` stand-in.

Real Snakemake and the executor run in-process against tests/fake_cluster.py, whose node
runs each pod's container as vk-slurm does with TESTBED_SANDBOX=bwrap: the job directory
written by the testbed's virtual node (testbed/vnode/jobfiles.py), then job.sh, so that
the job's Snakemake is the job image's, only the pod's binds are visible and /tmp and
HOME share a 64 MiB session. No Kubernetes and no Slurm: what is proven is what the
container sees. Needs the job image (TESTBED_IMAGE_ROOT in the testbed's env file, i.e.
testbed/up.sh with TESTBED_SANDBOX=bwrap), root and bubblewrap; object storage uses the
testbed's S3.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from snakemake import api
from snakemake.settings import types as sm

from snakemake_executor_plugin_interlink.settings import ExecutorSettings

from ..fake_cluster import Call, FakeCluster
from .conftest import REPO, STATE, read_env
from .test_htcondor_s3 import empty_and_delete, s3_client

sys.path.insert(0, str(REPO / "testbed"))
from vnode import jobfiles, sandbox
from vnode.logs_server import LogError, read_logs

pytestmark = pytest.mark.sandbox

ENV = read_env(STATE / "env") if (STATE / "env").exists() else {}
IMAGE_ROOT = os.environ.get("TESTBED_IMAGE_ROOT") or ENV.get("TESTBED_IMAGE_ROOT", "")


class SandboxNode(FakeCluster):
    """FakeCluster whose node runs each pod's container in the sandbox, one at a time."""

    def __init__(self, workdir: Path, jobs: Path):
        self.jobs = jobs
        self.secrets: dict[str, dict[str, str]] = {}
        self.sandboxed = jobfiles.SandboxConfig(
            sandbox.load_image(IMAGE_ROOT),
            bwrap=str(shutil.which("bwrap")),
            unshare=str(shutil.which("unshare")),
        )
        super().__init__(workdir, lambda rule, wildcards: [], run_seconds=0.0)

    def _answer(self, request: httpx.Request, call: Call) -> httpx.Response:
        if call.verb == "create-secret":
            body = json.loads(request.content)
            data = {
                k: base64.b64decode(v).decode()
                for k, v in (body.get("data") or {}).items()
            }
            self.secrets[body["metadata"]["name"]] = {
                **data,
                **(body.get("stringData") or {}),
            }
        pod = self.pods.get(call.name)
        if call.verb == "log" and pod is not None:
            try:
                text = read_logs(
                    jobfiles.job_dir(self.jobs, pod),
                    call.name,
                    pod["spec"]["containers"][0]["name"],
                    int(call.params.get("tailLines") or 0),
                    int(call.params.get("limitBytes") or 0),
                )
            except LogError as exc:
                return httpx.Response(exc.status, text=str(exc))
            return httpx.Response(
                200, content=text, headers={"content-type": "text/plain"}
            )
        return super()._answer(request, call)

    def _env(self, container: dict[str, Any]) -> list[tuple[str, str]]:
        """What the VK resolves: values, and secretKeyRefs from the run's Secret."""
        pairs = []
        for item in container.get("env") or []:
            if "value" in item:
                pairs.append((item["name"], item["value"]))
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                pairs.append((item["name"], self.secrets[ref["name"]][ref["key"]]))
        return pairs

    def run_job(self, pod: dict[str, Any]) -> int:
        """What vk-slurm does with --sandbox bwrap: the job directory, then job.sh."""
        container = pod["spec"]["containers"][0]
        env = {container["name"]: self._env(container)}
        script, _ = jobfiles.write_job(
            self.jobs, pod, env, {}, sandboxed=self.sandboxed
        )
        subprocess.run(
            ["bash", str(script.parent / "job.sh")], capture_output=True, check=False
        )
        status = script.parent / f"run-{container['name']}.status"
        return int(status.read_text()) if status.exists() else 1


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxNode]:
    if (
        not IMAGE_ROOT
    ):  # selected (-m sandbox): a missing image fails, as a testbed does
        pytest.fail(
            "no job image: TESTBED_SANDBOX=bwrap testbed/up.sh builds it "
            "(or set TESTBED_IMAGE_ROOT to testbed/setup-image.sh's output)"
        )
    if os.geteuid() != 0 or not shutil.which("bwrap"):
        pytest.fail("the sandbox needs root and bubblewrap")
    workdir = tmp_path / "wd"
    workdir.mkdir()
    fake = SandboxNode(workdir, tmp_path / "jobs")
    fake.install(monkeypatch)
    monkeypatch.chdir(workdir)
    yield fake
    fake.close()


def run(node: SandboxNode, snakefile: str, bucket: str = "", **settings: Any) -> None:
    """Run the workflow in the node's working directory (object storage in `bucket`)."""
    workdir = node.workdir
    (workdir / "Snakefile").write_text(snakefile)
    storage: dict[str, Any] = {"shared_fs_usage": sm.SharedFSUsage.all()}
    providers: dict[str, Any] = {}
    if bucket:
        from snakemake_interface_common.plugin_registry.plugin import TaggedSettings
        from snakemake_storage_plugin_s3 import StorageProviderSettings

        storage = {
            "shared_fs_usage": frozenset(),
            "default_storage_provider": "s3",
            "default_storage_prefix": f"s3://{bucket}/wf",
        }
        tagged = TaggedSettings()
        tagged.register_settings(
            StorageProviderSettings(
                endpoint_url=ENV["TESTBED_S3_ENDPOINT"],
                access_key=ENV["TESTBED_S3_ACCESS_KEY"],
                secret_key=ENV["TESTBED_S3_SECRET_KEY"],
            )
        )
        providers = {"storage_provider_settings": {"s3": tagged}}
    with api.SnakemakeApi(sm.OutputSettings(show_failed_logs=True)) as snakemake_api:
        workflow = snakemake_api.workflow(
            resource_settings=sm.ResourceSettings(cores=1, nodes=2),
            storage_settings=sm.StorageSettings(**storage),
            snakefile=workdir / "Snakefile",
            **providers,
        )
        try:
            workflow.dag().execute_workflow(
                executor="interlink",
                executor_settings=ExecutorSettings(
                    namespace="ns", status_interval=0.2, **settings
                ),
                execution_settings=sm.ExecutionSettings(latency_wait=1),
                remote_execution_settings=sm.RemoteExecutionSettings(
                    container_image="docker://any/image:1"
                ),
            )
        except Exception as exc:  # the job's own output says why, not Snakemake's
            tail = job_output(node)[-4000:]
            raise RuntimeError(f"{exc}\n-- the jobs' output (end):\n{tail}") from exc


def job_output(node: SandboxNode) -> str:
    return "".join(p.read_text() for p in node.jobs.glob("*/run-snakejob.out"))


def test_a_shared_fs_job_runs_the_images_snakemake_in_the_bound_workdir(
    node: SandboxNode,
):
    run(
        node,
        'rule all:\n    input: "out.txt"\n'
        'rule work:\n    output: "out.txt"\n'
        '    shell: "command -v python > {output}; echo HOME=$HOME >> {output}; "\n'
        "        \"python -c 'import sys; print(sys.base_prefix)' >> {output}\"\n",
    )
    # the image's venv over Debian's Python, whatever the pod's image names
    assert (node.workdir / "out.txt").read_text() == (
        "/opt/snakemake/bin/python\nHOME=/root\n/usr\n"
    )


@pytest.fixture
def bucket() -> Iterator[str]:
    if "TESTBED_S3_ENDPOINT" not in ENV:
        pytest.skip("the testbed runs without S3")
    client = s3_client()
    name = f"e2e-sandbox-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name
    empty_and_delete(client, name)


BIG = (
    'rule all:\n    input: "big.bin"\n'
    'rule work:\n    output: "big.bin"\n'
    '    shell: "head -c 80M /dev/zero > {output}"\n'
)


def test_a_job_without_a_shared_fs_has_room_beyond_the_64_mib_session(
    node: SandboxNode, bucket: str
):
    """Its scratch directory is on the worker node's /tmp, bound into the job."""
    run(node, BIG, bucket)
    assert "Finished jobid: 0 (Rule: work)" in job_output(node)


def test_without_the_scratch_bind_the_64_mib_session_is_too_small(
    node: SandboxNode, bucket: str
):
    """What every such job met before --interlink-scratch-dir: the container's /tmp."""
    with pytest.raises(Exception, match="did not complete successfully"):
        run(node, BIG, bucket, scratch_dir="")
    assert "No space left on device" in job_output(node)


def test_a_rules_tmpdir_has_room_beyond_the_64_mib_session(node: SandboxNode):
    """Snakemake's default tmpdir is /tmp: the worker node's, bound into the job."""
    run(
        node,
        'rule all:\n    input: "t.txt"\n'
        'rule work:\n    output: "t.txt"\n'
        '    shell: "head -c 80M /dev/zero > $TMPDIR/big.$$; rm $TMPDIR/big.$$; '
        'touch {output}"\n',
    )
    assert (node.workdir / "t.txt").exists()
