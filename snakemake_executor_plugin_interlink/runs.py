"""Which pods of earlier runs a run may adopt or delete: proven, never guessed (pure).

A path is no identity: every JupyterHub user works in /home/jovyan, and two machines
can hold the same path. So every run writes a marker `.snakemake/interlink/runs/<run
id>` into its working directory before it creates anything, and a later run looks only
at pods labelled with the run ids it finds there. Another user's /home/jovyan is another
filesystem with other markers: nothing of that user's runs is ever adopted, listed as
an orphan or deleted. A marker goes when its run has no pod left.

Within this directory's runs, a job adopts a pod only when the pod was made for the
same job (`job_key`: rule, wildcards, code, params, files). A pod of an earlier run that
still writes one of the job's outputs but was made for something else (an edited rule)
is stopped before the job's own pod starts, so two pods never write the same file.

The executor does the I/O (the records, the API) and asks this module what to do; the
one read here is a local script's content, which is part of its job's key.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .pod import JOB_KEY_ANNOTATION, OUTPUTS_ANNOTATION, RUN_LABEL, output_hash
from .status import State, classify_pod

MARKERS = Path(".snakemake", "interlink", "runs")  # below the working directory

Pod = dict[str, Any]


@dataclass(frozen=True)
class RunMarker:
    """What a run writes about itself; the file's name is its run id."""

    run_id: str
    host: str
    user: str
    pid: int
    started: float  # epoch seconds

    def text(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"


def parse_marker(name: str, text: str) -> RunMarker | None:
    """A marker this executor wrote, or None for anything else in the folder (a
    half-written file, an editor's backup): those prove nothing."""
    try:
        uuid.UUID(name)
        fields = json.loads(text)
        marker = RunMarker(
            run_id=str(fields["run_id"]),
            host=str(fields["host"]),
            user=str(fields["user"]),
            pid=int(fields["pid"]),
            started=float(fields["started"]),
        )
    except (ValueError, TypeError, KeyError):
        return None
    return marker if marker.run_id == name else None


def runs_selector(runs: Iterable[str]) -> str:
    """The pods of these runs, and only those."""
    return f"{RUN_LABEL} in ({','.join(sorted(set(runs) - {''}))})"


def run_of(pod: Pod) -> str:
    return _metadata_value(pod, "labels", RUN_LABEL)


def _annotation(pod: Pod, key: str) -> str:
    return _metadata_value(pod, "annotations", key)


def _metadata_value(pod: Pod, part: str, key: str) -> str:
    """A label's or an annotation's value ("" when absent): the API's are strings."""
    return str((pod["metadata"].get(part) or {}).get(key, ""))


def _deleting(pod: Pod) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


# -- the job's key -----------------------------------------------------------------


def job_key(job: Any) -> str:
    """What defines a job's result, hashed: a pod made under another definition is
    never taken for this job. Parts: the rule's name, the wildcards, the rule's code
    (the shell command as formatted for this job, which holds its input, output,
    params, threads and resources as the command uses them; a `run:` block's source;
    a script's, notebook's or wrapper's path and, for a local file, its content), the
    params (`non_derived_params`, as Snakemake's own params trigger serialises them),
    the input and output paths and the rule's container image.

    Not `format_job_exec`: the job's Snakemake command line carries per-run parts (the
    exit-marker directory, the run's ids, `--wait-for-files` lists, the main process's
    settings), so an unchanged job would never match its own earlier pod. Not the
    contents of input files: an input edited while a killed run's pod still ran is not
    seen (its Snakemake would not have seen it either)."""
    if job.is_group():
        return _digest({"group": sorted(job_key(j) for j in job.jobs)})
    rule = job.rule
    wildcards = getattr(job, "wildcards_dict", None) or {}
    return _digest(
        {
            "rule": job.name,
            "wildcards": sorted((str(k), str(v)) for k, v in wildcards.items()),
            "code": _code(job),
            "params": sorted(
                text
                for text in map(_param_text, getattr(job, "non_derived_params", ()))
                if text is not None
            ),
            "input": sorted(map(str, job.input)),
            "output": sorted(map(str, job.output)),
            "container": str(getattr(job, "container_img_url", None) or ""),
            "kind": [
                str(getattr(rule, k, None) or "")
                for k in ("script", "notebook", "wrapper", "cwl")
            ],
        }
    )


def _digest(parts: Mapping[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _code(job: Any) -> str:
    rule = job.rule
    if getattr(rule, "shellcmd", None):
        try:
            return str(job.shellcmd)
        except Exception:  # a key must never fail a run: the template then
            return str(rule.shellcmd)
    for kind in ("script", "notebook"):
        template = getattr(rule, kind, None)
        if template:
            return _local_file_digest(job, str(template))
    # a run block's source (for other rules, the line naming their wrapper)
    return str(getattr(rule, "run_func_src", None) or "")


def _local_file_digest(job: Any, template: str) -> str:
    """A script's content, found as Snakemake finds it (relative to the rule's
    Snakefile, wildcards and params filled in); a remote one by its name only."""
    try:
        source = job._path_to_source_file(template)
        path = Path(str(source.get_path_or_uri(secret_free=True)))
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (AttributeError, OSError, ValueError, KeyError, IndexError):
        return ""


def _param_text(value: Any) -> str | None:
    """Builtin values by repr, as Snakemake's params trigger; others (objects whose
    repr holds a memory address, which changes every run) are left out."""
    if value is None or isinstance(
        value,
        int | float | bool | str | complex | range | list | tuple | dict | set | bytes,
    ):
        return repr(value)
    return None


# -- pods of earlier runs ----------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What to do, for one job, with the pods of this directory's earlier runs."""

    adopt: Pod | None = None
    stop: tuple[Pod, ...] = field(default_factory=tuple)


_PREFERENCE = {State.SUCCEEDED: 0, State.RUNNING: 1, State.WAITING: 2}


class Leftovers:
    """Pods of this directory's earlier (killed) runs that no job has claimed yet.
    Built once from the first full view; jobs then claim from it."""

    def __init__(self, pods: Iterable[Pod], earlier_runs: Iterable[str]):
        runs = set(earlier_runs)
        self._pods: dict[str, Pod] = {
            p["metadata"]["name"]: p
            for p in pods
            if run_of(p) in runs and not _deleting(p)
        }
        # by job key and by output: a claim costs its job's outputs, not all pods
        self._by_key: dict[str, set[str]] = {}
        self._by_output: dict[str, set[str]] = {}
        for name, pod in self._pods.items():
            self._by_key.setdefault(_annotation(pod, JOB_KEY_ANNOTATION), set()).add(
                name
            )
            for digest in _annotation(pod, OUTPUTS_ANNOTATION).split():
                self._by_output.setdefault(digest, set()).add(name)

    def claim(self, key: str, outputs: Iterable[str]) -> Claim:
        """The pod made for this very job (same key; pending, running or
        succeeded), and the still-active pods that write any of its outputs for
        something else (or a duplicate): those must stop before this job runs."""
        found = set(self._by_key.get(key, ()))
        for output in outputs:
            found |= self._by_output.get(output_hash(output), set())
        touching = [self._pods[name] for name in sorted(found) if name in self._pods]
        states = {p["metadata"]["name"]: classify_pod(p).state for p in touching}
        same = [
            p
            for p in touching
            if _annotation(p, JOB_KEY_ANNOTATION) == key
            and states[p["metadata"]["name"]] in _PREFERENCE
        ]
        same.sort(key=_created, reverse=True)  # the newest first (ISO timestamps)
        same.sort(key=lambda p: _PREFERENCE[states[p["metadata"]["name"]]])
        adopt = same[0] if same else None
        stop = tuple(
            p
            for p in touching
            if p is not adopt and not states[p["metadata"]["name"]].finished
        )
        for pod in (adopt, *stop):
            if pod is not None:
                del self._pods[pod["metadata"]["name"]]
        return Claim(adopt, stop)


def _created(pod: Pod) -> str:
    return str(pod["metadata"].get("creationTimestamp") or "")


def orphans(
    pods: Iterable[Pod], earlier_runs: Iterable[str], ours: set[str]
) -> list[Pod]:
    """Pods of this directory's earlier runs that this run neither adopted nor is
    already deleting: listed, or removed on request. A pod of any other run is never
    one, whatever its labels say about the directory."""
    runs = set(earlier_runs)
    return [
        p
        for p in pods
        if run_of(p) in runs and p["metadata"]["name"] not in ours and not _deleting(p)
    ]


def finished_runs(runs: Iterable[str], pods_left: Iterable[Pod]) -> set[str]:
    """Runs none of whose pods is left but those being deleted: their markers (and
    Secrets) can go, since nothing of theirs remains to adopt or remove (a later run
    ignores pods being deleted as well)."""
    return set(runs) - {run_of(p) for p in pods_left if not _deleting(p)} - {""}
