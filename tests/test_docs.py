"""Docs that come from code must match it."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_generated_docs_are_current():
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_manifest_uses_every_resource_kind():
    sys.path.insert(0, str(REPO / "scripts"))
    from gen_docs import example_manifest

    manifest = example_manifest()
    container = manifest["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "16000Mi"}
    assert manifest["metadata"]["annotations"]["slurm-job.vk.io/flags"] == (
        "--time=120 --partition=gpu --account=bio --qos=normal --constraint=a100 "
        "--ntasks-per-gpu=1 --gres=gpu:a100:1 --exclusive"
    )


FAILURE_PHRASES = [
    "exit code",
    "out of memory",
    "time limit was reached",
    "interLink could not submit",
    "did not find the Secret",
    "was evicted",
    "deleted outside Snakemake",
    "no longer exists",
    "no virtual node accepted",
    "pending on node",
    "image error",
    "could not be watched",
    "lacks permissions",
    "does not exist",
    "invalid resources",
    "must not contain",
    "cannot be passed to the job",
    "more than a Kubernetes Secret holds",
    "could not be fetched",
    "were not re-attached",
    "are still being deleted",
    "interLink no longer reports it",
]


def test_troubleshooting_covers_every_failure_message():
    code = "".join(
        p.read_text()
        for p in (REPO / "snakemake_executor_plugin_interlink").glob("*.py")
    )
    code = " ".join(code.replace('"\n', "").replace('f"', "").split())
    doc = (REPO / "docs" / "troubleshooting.md").read_text()
    for phrase in FAILURE_PHRASES:
        assert phrase in code, f"the code no longer says {phrase!r}"
        assert phrase in doc, f"docs/troubleshooting.md does not explain {phrase!r}"


def test_setup_doc_shows_the_role_the_testbed_applies():
    import yaml

    doc = (REPO / "docs" / "setup.md").read_text()
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    applied = [
        d
        for d in yaml.safe_load_all((REPO / "testbed" / "rbac.yaml").read_text())
        if d and d["kind"] in ("Role", "RoleBinding")
    ]
    assert list(yaml.safe_load_all(block)) == applied


# Commands in the docs are fenced ```sh blocks, and tests run every one of them: README.md
# and docs/ in tests/e2e/test_docs_commands.py, each example's README in its own test.
PROGRAMS = ("snakemake", "kubectl", "pip", "sacct", "condor_", "scripts/", "python")
PAGES_WITH_COMMANDS = {"README.md", "docs/further.md", "docs/setup.md"}


def doc_pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def example_pages() -> list[Path]:
    return sorted((REPO / "examples").glob("*/README.md"))


def test_every_command_shown_is_in_a_fenced_block():
    for page in doc_pages() + example_pages():
        fenced = False
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and re.match(rf"( {{4,}}|\t)({'|'.join(PROGRAMS)})", line):
                raise AssertionError(
                    f"{page.relative_to(REPO)}:{number}: a command outside a ```sh block "
                    "is run by no test"
                )


def test_pages_with_commands_are_the_ones_the_docs_test_runs():
    from tests.e2e.documented import commands

    shown = {str(p.relative_to(REPO)) for p in doc_pages() if commands(p)}
    assert shown == PAGES_WITH_COMMANDS, (
        "add a test of the new page's commands to tests/e2e/test_docs_commands.py"
    )
    source = (REPO / "tests" / "e2e" / "test_docs_commands.py").read_text()
    for page in PAGES_WITH_COMMANDS - {"README.md"}:
        assert page.split("/")[-1] in source, page


def test_every_example_readme_is_run_by_its_test():
    from tests.e2e.documented import commands

    tests = "".join(p.read_text() for p in (REPO / "tests" / "e2e").glob("test_*.py"))
    for page in example_pages():
        name = page.parent.name
        assert any(c.startswith("snakemake") for c in commands(page)), page
        assert re.search(rf'run_(example|readme)\([^)]*"{name}"', tests), (
            f"no end-to-end test runs examples/{name}/README.md (documented.run_readme)"
        )
