"""Every command that README.md and docs/ show runs here as written, on the testbed. The
examples' READMEs are run by the tests of each example (documented.run_readme)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .conftest import (
    REPO,
    Testbed,
    as_pod,
    copy_example,
    in_pod_env,
    pod_files,
    wait_until,
)
from .documented import code_blocks, commands, run, user_env

README = REPO / "README.md"


def test_readme_set_up_commands_are_the_ones_ci_runs():
    ci = [
        line.strip().removeprefix("exec ")
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if re.match(r"\s*(exec )?scripts/", line)
    ]
    assert [c for c in commands(README) if c.startswith("scripts/")] == ci


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A new virtualenv with nothing but pip, and a wheel of this checkout where pip looks
    first, so that `pip install snakemake-executor-plugin-interlink` installs this tree
    the way a user installs the release (dependencies come from the package index)."""
    root = tmp_path_factory.mktemp("fresh")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            root / "dist",
            REPO,
        ],
        check=True,
    )
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    return root


def greeted(workdir: Path) -> list[str]:
    summary = (workdir / "results" / "summary.txt").read_text().splitlines()
    return [line.split()[1] for line in summary]


@pytest.mark.parametrize("page", ["README.md", "docs/further.md"])
def test_quick_start_from_pip_install_to_a_finished_workflow(
    testbed: Testbed, tmp_path: Path, fresh_venv: Path, page: str
):
    shown = [c for c in commands(REPO / page) if not c.startswith("scripts/")]
    assert [c.split()[:2] for c in shown] == [
        ["pip", "install"],
        ["snakemake", "--executor"],
    ]
    workdir = copy_example("hello", tmp_path)
    env = user_env(testbed, path_first=fresh_venv / "venv" / "bin")
    env["PIP_FIND_LINKS"] = (
        f"{fresh_venv / 'dist'} {os.environ.get('PIP_FIND_LINKS', '')}"
    )
    for command in shown:
        run(command, workdir, env)
    plugin = run(
        "python -c 'import snakemake_executor_plugin_interlink as p; print(p.__file__)'",
        workdir,
        env,
    )
    assert str(fresh_venv / "venv") in plugin, "the plugin came from the fresh install"
    assert greeted(workdir) == ["alpha", "beta", "gamma"]


def test_setup_page_from_an_empty_namespace_to_finished_workflows(
    testbed: Testbed, tmp_path: Path
):
    """docs/setup.md in order, in a namespace of its own: the administrator's kubectl
    commands, the laptop user's Snakemake with nothing but the Role, then the same Role
    bound to a service account and Snakemake run as from inside a pod."""
    page = REPO / "docs" / "setup.md"
    namespace = f"docs-{uuid.uuid4().hex[:8]}"

    def rename(text: str) -> str:  # the page's namespace `snakemake` -> a fresh one
        return re.sub(r"(namespace:? +)snakemake\b", rf"\g<1>{namespace}", text)

    workdir = copy_example("hello", tmp_path)
    role, pod_subject = code_blocks(page, "yaml")
    (workdir / "role.yaml").write_text(rename(role))
    admin = user_env(testbed, kubeconfig=testbed.admin_kubeconfig)
    user = user_env(testbed)
    shown = [rename(c) for c in commands(page)]
    assert [c.split()[0] for c in shown] == ["kubectl"] * 3 + ["snakemake"] * 2
    *laptop, in_pod = shown
    try:
        outputs = [
            run(c, workdir, admin if c.startswith("kubectl") else user) for c in laptop
        ]
        nodes = outputs[2]
        assert testbed.node in nodes and testbed.env["TESTBED_HTCONDOR_NODE"] in nodes
        assert greeted(workdir) == ["alpha", "beta", "gamma"]
        assert f"in namespace {namespace} via kubeconfig" in outputs[3]
        assert_nothing_left(testbed, namespace)

        pod_dir = imitate_pod(
            testbed, workdir, namespace, rename(role), pod_subject, admin
        )
        shutil.rmtree(workdir / "results")
        out = run(
            as_pod(in_pod, pod_dir), workdir, in_pod_env(testbed, user, home=tmp_path)
        )
        assert f"in namespace {namespace} via in-cluster service account" in out
        assert greeted(workdir) == ["alpha", "beta", "gamma"]
        assert_nothing_left(testbed, namespace)
    finally:
        run(f"kubectl delete namespace {namespace} --wait=false", workdir, admin)


def imitate_pod(
    testbed: Testbed,
    workdir: Path,
    namespace: str,
    role: str,
    pod_subject: str,
    admin: dict[str, str],
) -> Path:
    """Bind the page's Role to a new service account with the page's subject block, and
    write what Kubernetes mounts into its pods: token, ca.crt, namespace."""
    import yaml

    account = "jupyter-user"
    subject = pod_subject.replace("<the pod's service account>", account)
    subject = subject.replace("<its namespace>", namespace)
    documents = list(yaml.safe_load_all(role))
    documents[1]["subjects"] = yaml.safe_load(subject)["subjects"]
    (workdir / "role-for-pods.yaml").write_text(yaml.safe_dump_all(documents))
    run("kubectl apply -f role-for-pods.yaml", workdir, admin)
    run(f"kubectl -n {namespace} create serviceaccount {account}", workdir, admin)

    return pod_files(testbed, namespace, account, workdir.parent / "serviceaccount")


def assert_nothing_left(testbed: Testbed, namespace: str) -> None:
    assert wait_until(
        lambda: not testbed.admin.list_pods(namespace, "")[0], timeout=30
    ), f"pods left in {namespace}"
    secrets = testbed.admin.request("GET", f"/api/v1/namespaces/{namespace}/secrets")
    assert not [
        s
        for s in secrets["items"]
        if s["type"] != "kubernetes.io/service-account-token"
    ], f"the run's Secret was left in {namespace}"
