"""Every command that README.md and docs/ show runs here as written, on the testbed. The
examples' READMEs are run by the tests of each example (documented.run_readme)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .conftest import REPO, Testbed, copy_example, wait_until
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


def test_setup_page_from_an_empty_namespace_to_a_finished_workflow(
    testbed: Testbed, tmp_path: Path
):
    """docs/setup.md in order, in a namespace of its own: the administrator's kubectl
    commands, then the user's Snakemake with nothing but the Role they applied."""
    page = REPO / "docs" / "setup.md"
    namespace = f"docs-{uuid.uuid4().hex[:8]}"

    def rename(text: str) -> str:  # the page's namespace `snakemake` -> a fresh one
        return re.sub(r"(namespace:? +)snakemake\b", rf"\g<1>{namespace}", text)

    workdir = copy_example("hello", tmp_path)
    (workdir / "role.yaml").write_text(rename(code_blocks(page, "yaml")[0]))
    admin = user_env(testbed, kubeconfig=testbed.admin_kubeconfig)
    user = user_env(testbed)
    shown = [rename(c) for c in commands(page)]
    assert [c.split()[0] for c in shown] == ["kubectl"] * 3 + ["snakemake"]
    try:
        outputs = [
            run(c, workdir, admin if c.startswith("kubectl") else user) for c in shown
        ]
        nodes = outputs[2]
        assert testbed.node in nodes and testbed.env["TESTBED_HTCONDOR_NODE"] in nodes
        assert greeted(workdir) == ["alpha", "beta", "gamma"]
        assert "0 failed" in outputs[3]
        assert wait_until(
            lambda: not testbed.admin.list_pods(namespace, "")[0], timeout=30
        ), "pods left in the new namespace"
        secrets = testbed.admin.request(
            "GET", f"/api/v1/namespaces/{namespace}/secrets"
        )
        assert not [
            s
            for s in secrets["items"]
            if s["type"] != "kubernetes.io/service-account-token"
        ], "the run's Secret was left in the new namespace"
    finally:
        run(f"kubectl delete namespace {namespace} --wait=false", workdir, admin)
