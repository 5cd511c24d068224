"""Regenerate the parts of the docs that come from code: the settings reference
(docs/settings.md) and the example pod manifest in docs/further.md.

    python scripts/gen_docs.py          # rewrite
    python scripts/gen_docs.py --check  # exit 1 when stale (tests/test_docs.py)
"""

from __future__ import annotations

import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from snakemake_executor_plugin_interlink.pod import JobSpec, RunContext, pod_for_job
from snakemake_executor_plugin_interlink.settings import (
    CheckedSettings,
    ExecutorSettings,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"
BEGIN, END = (
    "<!-- BEGIN GENERATED: pod manifest -->",
    "<!-- END GENERATED: pod manifest -->",
)

EXAMPLE_RULE = {
    "mem_mb_per_cpu": 2000,
    "runtime": "2h",
    "slurm_partition": "gpu",
    "slurm_account": "bio",
    "qos": "normal",
    "constraint": "a100",
    "gpu": 1,
    "gpu_model": "a100",
    "tasks": 1,
    "slurm_extra": "--exclusive",
}


def example_manifest() -> dict:
    """The pod of a rule that uses every resource kind."""
    manifest, _ = pod_for_job(
        JobSpec(
            jobid=7,
            rule="call_variants",
            attempt=1,
            threads=8,
            resources=EXAMPLE_RULE,
            command="python -m snakemake --target-jobs ...",
            wildcards={"sample": "A"},
            outputs=("calls/A.vcf",),
            key="3f1d0c5b9a7e4d2c8b6a1f0e9d8c7b6a",  # runs.job_key
        ),
        CheckedSettings(
            annotations={"slurm-job.vk.io/pre-exec": "module load apptainer"}
        ),
        RunContext(
            run_id="5f0c1e2a-1b2c-4d3e-8f90-123456789abc",
            namespace="snakemake",
            workdir="/home/me/project",
            image="snakemake/snakemake:v9.27.1",
            secret_name="snakejob-5f0c1e2a-env",
            env_names=("AWS_ACCESS_KEY_ID",),
            host="jupyter-me",
            user="jovyan",
        ),
    )
    return manifest


def settings_reference() -> str:
    rows = [
        "# Settings reference",
        "",
        "Generated from `ExecutorSettings` by `scripts/gen_docs.py`; a test fails when "
        "it is stale. Every setting is a command-line option and an environment "
        "variable; in a profile, write it without the leading dashes "
        "(`interlink-namespace: snakemake`).",
        "",
        "| option | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for f in fields(ExecutorSettings):
        default = f.default if f.default is not MISSING else f.default_factory()
        shown = "" if default in (None, []) else f"`{default}`"
        help_text = f.metadata["help"].replace("%%", "%").replace("|", "\\|")
        option = "--interlink-" + f.name.replace("_", "-")
        rows.append(
            f"| `{option}` | `SNAKEMAKE_INTERLINK_{f.name.upper()}` | {shown} "
            f"| {help_text} |"
        )
    return "\n".join(rows) + "\n"


def with_manifest(text: str) -> str:
    block = (
        "```json\n"
        + json.dumps(example_manifest(), indent=2, ensure_ascii=False)
        + "\n```"
    )
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main() -> int:
    targets = {
        DOCS / "settings.md": settings_reference(),
        DOCS / "further.md": with_manifest((DOCS / "further.md").read_text()),
    }
    stale = [
        p for p, text in targets.items() if not p.exists() or p.read_text() != text
    ]
    if "--check" in sys.argv:
        for p in stale:
            print(f"stale: {p} (run: python scripts/gen_docs.py)")
        return 1 if stale else 0
    for p in stale:
        p.write_text(targets[p])
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
