"""Fetching a finished job's log before its pod is deleted, and storing it.

interLink's Slurm plugin deletes the job directory, and with it the output, when the
pod is deleted: the log must be read first. The request goes API server -> virtual
kubelet -> interLink -> plugin; a log that cannot be read never fails a successful job:
the reason is stored in its place.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .kube import KubeClient, KubeError
from .pod import CONTAINER, JobId, short_id, wildcards_text

_UNSAFE = re.compile(r"[^\w.=,+@-]+")


def path_part(text: str, limit: int = 100) -> str:
    """One safe path component (no '/', no '..', bounded) that stays recognisable."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    if cleaned == text and len(text.encode()) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{cleaned[: limit - 11]}-{digest}"


def log_name(stem: str, attempt: int) -> str:
    """A retry keeps the same job id: each attempt's log is kept under its own name
    (the first one's is the plain one)."""
    return f"{stem}.log" if attempt <= 1 else f"{stem}.attempt{attempt}.log"


def log_path(
    log_dir: Path,
    rule: str,
    wildcards: Mapping[str, str],
    jobid: JobId,
    attempt: int = 1,
) -> Path:
    """<log_dir>/<rule>/<wildcards>/<jobid>.log (<jobid>.attempt<N>.log for a retry),
    every part sanitised."""
    spec = wildcards_text(wildcards) or "all"
    name = log_name(path_part(str(jobid)), attempt)
    return log_dir / path_part(rule) / path_part(spec) / name


def group_log_path(
    log_dir: Path, group: str, rules: Sequence[str], jobid: JobId, attempt: int = 1
) -> Path:
    """<log_dir>/group_<group>/<rules joined by +>-<12 hex digits of the group job's
    UUID>.log: one log per group job (and attempt), found by the group's name."""
    name = log_name(f"{path_part('+'.join(rules), 80)}-{short_id(jobid)}", attempt)
    return log_dir / path_part(f"group_{group}") / name


def store_log(
    kube: KubeClient,
    namespace: str,
    pod: str,
    path: Path,
    limit_bytes: int,
    insecure_backend: bool,
    kept: KeptOutput | None = None,
) -> str:
    """Fetch and write the log; return its text, or why it could not be fetched
    (which is then what the file holds, followed by the output the job kept on the
    shared filesystem, if it did)."""
    try:
        text = kube.pod_log(namespace, pod, CONTAINER, limit_bytes, insecure_backend)
    except KubeError as e:
        text = unfetched_log_text(namespace, pod, e)
    else:
        if not serves_no_logs(text):
            return write_log(path, text)
        text = (
            f"[interlink] the site's interLink plugin does not serve logs: it answers "
            f"every request with {text.strip()} (interlink-htcondor-plugin). The job's "
            "output stays at the site (HTCondor: its Output and Error files).\n"
        )
    return write_log(path, with_kept_output(text, kept))


@dataclass(frozen=True)
class KeptOutput:
    """The last bytes of the output a job kept on the shared filesystem. Not `whole`
    when its script did not end (the site killed the job: time limit, memory,
    eviction) or could not write all of it: the output up to then."""

    text: str
    whole: bool


KEPT_OUTPUT = "[interlink] the output the job kept on the shared filesystem:\n"
KEPT_PART = (
    "[interlink] the output the job kept on the shared filesystem until it stopped "
    "(its script did not end: the job was killed, or its copy could not be "
    "written):\n"
)


def with_kept_output(note: str, kept: KeptOutput | None) -> str:
    """Why interLink gave no log, then the output the job kept, if it did."""
    if kept is None:
        return note
    return f"{note}{KEPT_OUTPUT if kept.whole else KEPT_PART}{kept.text}"


def write_log(path: Path, text: str) -> str:
    """Write a job's log; a log that cannot be written (a full disk, a read-only
    log directory) is said in the text returned, which the job's message shows: it
    never changes the job's outcome."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, errors="replace")
    except OSError as e:
        text += f"\n[interlink] this log could not be stored at {path}: {e}\n"
    return text


_NOT_IMPLEMENTED = re.compile(r'^\s*"?NOT IMPLEMENTED"?\s*$')


def serves_no_logs(text: str) -> bool:
    """interLink's HTCondor plugin answers every log request with 200 and this body."""
    return bool(_NOT_IMPLEMENTED.match(text))


def unfetched_log_text(namespace: str, pod: str, error: KubeError) -> str:
    """What a log that could not be fetched says instead: the cause, as far as the
    answer tells it, and how to try again by hand."""
    detail = str(error)
    lowered = detail.lower()
    if any(word in lowered for word in ("x509", "certificate", "tls", "handshake")):
        cause = (
            "the API server could not reach the virtual kubelet over TLS: its serving "
            "certificate is not trusted (run with --interlink-insecure-log-backend) or "
            "not issued yet (its CSR is pending: kubectl get csr, kubectl certificate "
            "approve)"
        )
    elif "status code: 400" in lowered or error.status == 400:
        cause = "interLink refused the log request as malformed"
    else:
        cause = "the virtual node or its interLink plugin failed to read the log"
    return (
        f"[interlink] the log of pod {pod} could not be fetched: {cause}.\n"
        f"[interlink] answer: {detail}\n"
        f"[interlink] while the pod exists (--interlink-keep-failed-pods keeps failed "
        f"ones): kubectl -n {namespace} logs {pod} --limit-bytes=1000000\n"
    )
