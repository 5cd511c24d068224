"""Which pods of earlier runs a run adopts, stops or lists as orphans (runs.py), and
the job key on real Snakemake jobs."""

from __future__ import annotations

import contextlib
import linecache
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snakemake_executor_plugin_interlink.pod import (
    JOB_KEY_ANNOTATION,
    OUTPUTS_ANNOTATION,
    RUN_LABEL,
    output_hashes,
)
from snakemake_executor_plugin_interlink.runs import (
    Leftovers,
    RunMarker,
    finished_runs,
    job_key,
    orphans,
    parse_marker,
    runs_selector,
)

EARLIER = "11111111-1111-4111-8111-111111111111"  # a killed run of this directory
OLDER = "22222222-2222-4222-8222-222222222222"  # another one
STRANGER = "33333333-3333-4333-8333-333333333333"  # same path, another user's run


def pod(
    name: str,
    run: str = EARLIER,
    key: str = "k",
    outputs: tuple[str, ...] = ("out/a.txt",),
    phase: str = "Running",
    deleting: bool = False,
    created: str = "2026-12-01T10:00:00Z",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {RUN_LABEL: run},
        "annotations": {
            JOB_KEY_ANNOTATION: key,
            OUTPUTS_ANNOTATION: output_hashes(outputs),
        },
        "creationTimestamp": created,
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T10:05:00Z"
    return {"metadata": meta, "spec": {"nodeName": "vk"}, "status": {"phase": phase}}


def names(pods: Any) -> list[str]:
    return sorted(p["metadata"]["name"] for p in pods)


@pytest.mark.parametrize(
    ("pods", "adopted", "stopped"),
    [
        pytest.param([pod("p")], "p", [], id="same job running: adopted"),
        pytest.param([pod("p", phase="Pending")], "p", [], id="same job queued"),
        pytest.param([pod("p", phase="Succeeded")], "p", [], id="same job done"),
        pytest.param(
            [pod("p", phase="Failed")], None, [], id="failed: run again, not stopped"
        ),
        pytest.param(
            [pod("p", run=STRANGER)], None, [], id="another user's run: never touched"
        ),
        pytest.param(
            [pod("p", run=STRANGER, key="old")],
            None,
            [],
            id="another user's run writing the same path: never stopped",
        ),
        pytest.param([pod("p", key="old")], None, ["p"], id="edited rule: stopped"),
        pytest.param(
            [pod("p", key="old", outputs=("out/a.txt", "out/b.txt"))],
            None,
            ["p"],
            id="overlapping outputs: stopped",
        ),
        pytest.param(
            [pod("p", key="old", phase="Succeeded")],
            None,
            [],
            id="edited rule, pod already done: left to orphan handling",
        ),
        pytest.param(
            [pod("p", key="old", outputs=("out/other.txt",))],
            None,
            [],
            id="another job's pod: untouched",
        ),
        pytest.param(
            [pod("p", key="old", deleting=True)], None, [], id="being deleted: ignored"
        ),
        pytest.param(
            [
                pod("run", created="2026-12-01T10:00:00Z"),
                pod("done", run=OLDER, phase="Succeeded"),
            ],
            "done",
            ["run"],
            id="duplicate: the finished one adopted, the other stopped",
        ),
        pytest.param(
            [
                pod("old", run=OLDER, created="2026-12-01T09:00:00Z"),
                pod("new", created="2026-12-01T10:00:00Z"),
            ],
            "new",
            ["old"],
            id="two running: the newest adopted",
        ),
    ],
)
def test_a_job_claims_only_pods_of_this_directorys_runs(
    pods: list[dict[str, Any]], adopted: str | None, stopped: list[str]
) -> None:
    claim = Leftovers(pods, {EARLIER, OLDER}).claim("k", ["out/a.txt"])
    assert (claim.adopt or {}).get("metadata", {}).get("name") == adopted
    assert names(claim.stop) == stopped


def test_a_pod_is_claimed_once() -> None:
    leftovers = Leftovers([pod("p"), pod("q", key="old")], {EARLIER})
    first = leftovers.claim("k", ["out/a.txt"])
    assert first.adopt is not None and names(first.stop) == ["q"]
    again = leftovers.claim("k", ["out/a.txt"])
    assert again.adopt is None and again.stop == ()


def test_jobs_without_outputs_match_by_key_only() -> None:
    leftovers = Leftovers(
        [pod("a", key="ka", outputs=()), pod("b", key="kb", outputs=())], {EARLIER}
    )
    claim = leftovers.claim("kb", [])
    assert claim.adopt is not None and claim.adopt["metadata"]["name"] == "b"
    assert claim.stop == ()


@pytest.mark.parametrize(
    ("pods", "ours", "expected"),
    [
        ([pod("p")], set(), ["p"]),
        ([pod("p")], {"p"}, []),
        ([pod("p", run=STRANGER)], set(), []),
        ([pod("p", deleting=True)], set(), []),
        ([pod("p", phase="Failed"), pod("q", run=OLDER)], set(), ["p", "q"]),
    ],
    ids=["left", "adopted", "another user's", "being deleted", "two runs"],
)
def test_orphans_are_this_directorys_only(
    pods: list[dict[str, Any]], ours: set[str], expected: list[str]
) -> None:
    assert names(orphans(pods, {EARLIER, OLDER}, ours)) == expected


def test_runs_without_pods_left_are_finished() -> None:
    left = [pod("p", run=EARLIER)]
    assert finished_runs({EARLIER, OLDER}, left) == {OLDER}
    assert finished_runs({EARLIER}, []) == {EARLIER}
    assert finished_runs({EARLIER}, [pod("p", deleting=True)]) == {EARLIER}


def test_selector_names_each_run_once() -> None:
    assert runs_selector([OLDER, EARLIER, OLDER, ""]) == (
        f"{RUN_LABEL} in ({EARLIER},{OLDER})"
    )


def test_marker_round_trip() -> None:
    marker = RunMarker(EARLIER, "jupyter-ana", "jovyan", 42, 1764583200.5)
    assert parse_marker(EARLIER, marker.text()) == marker


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (f".{EARLIER}.tmp", RunMarker(EARLIER, "h", "u", 1, 0).text()),  # half-written
        (OLDER, RunMarker(EARLIER, "h", "u", 1, 0).text()),  # renamed by hand
        (EARLIER, ""),
        (EARLIER, "{not json"),
        (EARLIER, f'{{"run_id": "{EARLIER}"}}'),
        ("notes.txt", "run 1"),
    ],
)
def test_anything_else_in_the_folder_proves_nothing(name: str, text: str) -> None:
    assert parse_marker(name, text) is None


# -- the job key, on jobs of real Snakemake DAGs -------------------------------------

SNAKEFILE = """
rule all:
    input: expand("out/{i}.txt", i=range(2)), "py.txt", "script.txt"
rule work:
    input: "in.txt"
    output: "out/{i}.txt"
    params: factor=3, per_sample=lambda wc: "s" + wc.i
    shell: "echo {params.factor} {wildcards.i} > {output}"
rule py:
    output: "py.txt"
    run:
        open(output[0], "w").write("x")
rule script:
    output: "script.txt"
    script: "scripts/make.py"
"""


@contextlib.contextmanager
def _in(directory: Path) -> Iterator[None]:
    before = os.getcwd()
    try:
        yield
    finally:
        os.chdir(before)


def keys(workdir: Path, snakefile: str = SNAKEFILE) -> dict[str, str]:
    """The key of every job Snakemake would run, by rule and wildcards."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        DAGSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    (workdir / "Snakefile").write_text(snakefile)
    linecache.clearcache()  # Snakemake reads a run block's source through it
    (workdir / "in.txt").touch()
    (workdir / "scripts").mkdir(exist_ok=True)
    if not (workdir / "scripts" / "make.py").exists():
        (workdir / "scripts" / "make.py").write_text("open(snakemake.output[0], 'w')\n")
    with _in(workdir), SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            snakefile=workdir / "Snakefile",
            workdir=workdir,
            storage_settings=StorageSettings(),
        )
        workflow_api.dag(DAGSettings())
        workflow = workflow_api._workflow
        workflow._prepare_dag(
            forceall=False, ignore_incomplete=True, lock_warn_only=True, nolock=True
        )
        workflow._build_dag()
        return {
            f"{job.name}:{','.join(job.wildcards_dict.values())}": job_key(job)
            for job in workflow.dag.needrun_jobs()
        }


def test_the_key_is_the_same_in_every_run_and_differs_between_jobs(
    tmp_path: Path,
) -> None:
    first = keys(tmp_path)
    assert first == keys(tmp_path), "no per-run part (a lambda's address, a run id)"
    assert len(set(first.values())) == len(first) == 5


@pytest.mark.parametrize(
    ("edit", "changed"),
    [
        (lambda s: s.replace("echo {params", "echo new {params"), {"work:0", "work:1"}),
        (lambda s: s.replace("factor=3", "factor=4"), {"work:0", "work:1"}),
        (lambda s: s.replace('"s" + wc.i', '"t" + wc.i'), {"work:0", "work:1"}),
        (lambda s: s.replace('write("x")', 'write("y")'), {"py:"}),
        (
            lambda s: s.replace('input: "in.txt"', 'input: "in.txt", "Snakefile"'),
            {"work:0", "work:1"},
        ),
        (
            lambda s: s.replace(
                "    shell: ", "    resources: mem_mb=500\n    shell: "
            ),
            set(),
        ),
    ],
    ids=[
        "shell command",
        "param",
        "param from a function",
        "run block",
        "input",
        "resources: not the result",
    ],
)
def test_an_edited_rule_gives_its_jobs_new_keys(
    tmp_path: Path, edit: Any, changed: set[str]
) -> None:
    before = keys(tmp_path)
    after = keys(tmp_path, edit(SNAKEFILE))
    assert {job for job in before if before[job] != after[job]} == changed


def test_an_edited_script_gives_its_job_a_new_key(tmp_path: Path) -> None:
    before = keys(tmp_path)
    (tmp_path / "scripts" / "make.py").write_text(
        "open(snakemake.output[0], 'w')  # 2\n"
    )
    after = keys(tmp_path)
    assert {job for job in before if before[job] != after[job]} == {"script:"}


# -- start-up refuses to guess -------------------------------------------------------
