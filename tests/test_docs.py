"""Docs that come from code must match it."""

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
    assert container["resources"]["limits"] == {
        "cpu": "8",
        "memory": "16000Mi",
        "nvidia.com/gpu": "1",
    }
    assert manifest["metadata"]["annotations"]["slurm-job.vk.io/flags"] == (
        "--time=120 --partition=gpu --account=bio --qos=normal --constraint=a100 "
        "--ntasks=1 --gres=gpu:a100:1 --exclusive"
    )
