"""A Snakemake job + the run's context -> the pod manifest (pure; no I/O).

Every field of a job's pod is decided here or in `resources.py` (limits, requests,
annotations). The manifest follows interLink's contract: placement on the virtual node
by toleration + nodeSelector, `restartPolicy: Never`, no service-account token, no
ports, environment only through `secretKeyRef`, and a command that `cd`s itself because
interLink's default `singularity --containall` ignores `workingDir`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

from .resources import PodResources, pod_resources
from .settings import INTERLINK_TAINT_KEY, CheckedSettings, quantity_value

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "snakemake"
RUN_LABEL = "interlink.snakemake.io/run"
RULE_LABEL = "interlink.snakemake.io/rule"
JOBID_LABEL = "interlink.snakemake.io/jobid"
GROUP_LABEL = "interlink.snakemake.io/group"  # a group job's pod: the group's name
KIND_LABEL = "interlink.snakemake.io/kind"  # "group" on a group job's pod
WORKDIR_LABEL = "interlink.snakemake.io/workdir"  # for people: not an identity
HOST_LABEL = "interlink.snakemake.io/host"  # for people reading kubectl get pods
USER_LABEL = "interlink.snakemake.io/user"
RULE_ANNOTATION = "interlink.snakemake.io/rule"
WILDCARDS_ANNOTATION = "interlink.snakemake.io/wildcards"
ATTEMPT_ANNOTATION = "interlink.snakemake.io/attempt"
GROUP_ANNOTATION = "interlink.snakemake.io/group"
RULES_ANNOTATION = "interlink.snakemake.io/rules"  # a group's rules, space-separated
MEMBERS_ANNOTATION = "interlink.snakemake.io/members"  # how many jobs a group runs
OUTPUTS_ANNOTATION = "interlink.snakemake.io/output-hashes"  # runs.py reads both
JOB_KEY_ANNOTATION = "interlink.snakemake.io/job-key"
TIME_LIMIT_ANNOTATION = "interlink.snakemake.io/time-limit-minutes"
HTCONDOR_SINGULARITY_OPTIONS = "htcondor-job.vk.io/singularity-options"
MESH_NETWORK_ANNOTATION = "interlink.eu/mesh-network"  # "disabled": no FullMesh set-up
CONTAINER = "snakejob"
# the node-lifecycle controller taints a node with these when its kubelet (interLink's
# VK) stops reporting; pods are evicted once their toleration of them runs out
NODE_OUTAGE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
PIP_DEPLOYMENTS = ".snakemake/pip-deployments"  # on Snakemake's sys.path

# what a job prints last without a shared filesystem (completion.LogProbe reads it),
# then "<exit status> <start> <end> <cpu seconds> <peak memory KiB>" (times in epoch
# seconds), as its exit-status file holds
END_LINE = "[interlink] end of pod {pod}: "

# Runs the job's command and reports its end: the exit status, when it ran, and what
# it used, from the job itself (no sacct; the same on HTCondor). RUSAGE_CHILDREN holds
# the CPU time of every process of the command and the peak resident memory of its
# largest one. argv: where to write the end (a file, or "-" for the log's end line),
# the end line's prefix, where to keep the output ("-": nowhere), then the command.
_REPORT_START = """\
import os, resource, subprocess, sys, time
out, prefix, copy = sys.argv[1:4]
start = int(time.time())
"""
_RUN = "code = subprocess.call(sys.argv[4:])\n"
# With a shared filesystem it also keeps a copy of the command's output (stdout and
# stderr, as the pod's log has them), renamed into place before the exit status is
# written: the executor stores that as a succeeded job's log instead of asking interLink
# (one request less per job; HTCondor's plugin serves no logs). A process the command
# left in the background may hold the pipe: once the command ended, the output is read
# until the pipe is quiet for 0.2 s, 3 s at most. A copy that cannot be written is
# dropped, never the job.
_RUN_KEEPING_OUTPUT = """\
import select
try:
    kept, whole = open(copy + ".part", "wb", 0), True  # unbuffered: a kill keeps it
except OSError:
    kept, whole = None, False
job = subprocess.Popen(sys.argv[4:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
pipe, ended = job.stdout.fileno(), None
while ended is None or time.time() < ended + 3:
    if select.select([pipe], [], [], 0.2)[0]:
        chunk = os.read(pipe, 65536)
        if not chunk:
            break
        try:
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        except OSError:
            pass
        try:
            whole = whole and kept.write(chunk) == len(chunk)
        except OSError:
            whole = False
    elif ended is not None:
        break
    if ended is None and job.poll() is not None:
        ended = time.time()
code = job.wait()
try:
    if kept is not None:
        kept.close()
    if whole:
        os.replace(copy + ".part", copy)
except OSError:
    pass
"""
_REPORT_END = """\
code = 128 - code if code < 0 else code
used = resource.getrusage(resource.RUSAGE_CHILDREN)
line = "%d %d %d %.1f %d" % (
    code, start, int(time.time()), used.ru_utime + used.ru_stime, used.ru_maxrss
)
if out == "-":
    print(prefix + line, flush=True)
else:
    with open(out + ".tmp", "w") as f:
        f.write(line + "\\n")
    os.replace(out + ".tmp", out)
sys.exit(code)
"""
# Without a shared filesystem: in the job's command (no single quote inside: it
# travels in one). With one: a file in the working directory (completion.ExitMarkers
# writes it), so that every pod, and every watch event of it, stays small.
END_REPORTER = _REPORT_START + _RUN + _REPORT_END
END_REPORTER_KEEPING_OUTPUT = _REPORT_START + _RUN_KEEPING_OUTPUT + _REPORT_END
# named by its content: a pod of an earlier run, still pending, runs the script it was
# made for
_REPORTER_HASH = hashlib.sha256(END_REPORTER_KEEPING_OUTPUT.encode()).hexdigest()
END_REPORTER_FILE = f"end-reporter-{_REPORTER_HASH[:12]}.py"


def end_line_pattern(pod: str) -> re.Pattern[str]:
    """The end line of this pod only: a job cannot end another, and a rule that prints
    something similar does not end its own job early."""
    return re.compile(
        "^" + re.escape(END_LINE.format(pod=pod)) + r"(\d+(?: [\d.]*)*)$", re.MULTILINE
    )


# The job's own Snakemake gets `--retries 0`, but a rule's `retries:` wins over it
# (Rule.restart_times), so a failed attempt would be retried inside the same pod, sized
# for attempt 1. A preemptible rule's retry count wins over both: marking every rule
# preemptible (no names given) with 0 retries stops that, so each attempt is a new pod,
# which the main Snakemake sizes with that attempt's resources.
NO_RETRIES_IN_JOB = "--preemptible-rules --preemptible-retries 0"

# Snakemake numbers a single job; a group job's id is a UUID string
JobId = int | str

_LABEL_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")
_DNS_INVALID = re.compile(r"[^a-z0-9]+")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
GROUP_NAME_PART = 20  # of a group pod's name: readable, and the name stays <= 63


@dataclass(frozen=True)
class GroupSpec:
    """What a group job's pod says about the group: Snakemake's group name, its
    rules and how many jobs it runs."""

    name: str
    rules: tuple[str, ...]
    members: int

    @property
    def readable(self) -> str:
        """The group's name for people: Snakemake names the groups it makes itself
        (pipes, services) with a random UUID, which says less than their rules."""
        return "-".join(self.rules) if _UUID.match(self.name) else self.name


@dataclass(frozen=True)
class JobSpec:
    """What the pod needs to know about one Snakemake job (or group job)."""

    jobid: JobId
    rule: str
    attempt: int
    threads: int
    resources: Mapping[str, Any]
    command: str
    wildcards: Mapping[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    key: str = ""  # what defines the job's result (runs.job_key)
    group: GroupSpec | None = None  # a group job's


def wildcards_text(wildcards: Mapping[str, str]) -> str:
    """ "sample=A,n=1": how logs and the run report name a job's wildcards."""
    return ",".join(f"{k}={v}" for k, v in wildcards.items())


def output_hash(path: str) -> str:
    """One output file, short: a later run of the same directory finds the pods that
    write a file it is about to write (runs.py), without the paths' length."""
    return hashlib.sha256(path.encode()).hexdigest()[:12]


def output_hashes(outputs: tuple[str, ...]) -> str:
    return " ".join(sorted({output_hash(o) for o in outputs}))


@dataclass(frozen=True)
class RunContext:
    """What all pods of one Snakemake run share."""

    run_id: str
    namespace: str
    workdir: str
    image: str
    host: str = ""
    user: str = ""
    shared_fs: bool = True
    exit_dir: str | None = None  # where jobs write their exit status (completion.py)
    output_dir: str | None = None  # where they keep their output (completion.py)
    reporter: str | None = None  # END_REPORTER_KEEPING_OUTPUT's file (completion.py)
    secret_name: str | None = None
    env_names: tuple[str, ...] = ()
    env_changed_on_htcondor: tuple[str, ...] = ()  # see env_changed_by_htcondor_line
    storage_plugin_packages: tuple[str, ...] = ()

    @property
    def workdir_hash(self) -> str:
        """The working directory's path, for people: the same path on another machine
        or in another user's JupyterHub gives the same hash, so nothing is decided by
        it (runs.py proves which runs are this directory's)."""
        return hashlib.sha256(self.workdir.encode()).hexdigest()[:16]

    @property
    def selector(self) -> str:
        """This run's pods."""
        return f"{RUN_LABEL}={self.run_id}"

    @property
    def labels(self) -> dict[str, str]:
        """What the run's pods and Secret carry to say whose they are."""
        labels = {
            MANAGED_BY_LABEL: MANAGED_BY,
            RUN_LABEL: self.run_id,
            WORKDIR_LABEL: self.workdir_hash,
        }
        if self.host:
            labels[HOST_LABEL] = label_value(self.host)
        if self.user:
            labels[USER_LABEL] = label_value(self.user)
        return labels


def pod_name(run_id: str, jobid: JobId, attempt: int, group: str | None = None) -> str:
    """DNS-1123 and at most 63 characters: the rule name goes into labels, not into
    the name. A group job's pod shows the group's name (lowercased, other characters
    as `-`, truncated) and 12 hex digits of its UUID, which keep it unique."""
    if group is None:
        return f"{run_name_prefix(run_id)}{jobid}-{attempt}"
    readable = _DNS_INVALID.sub("-", group.lower())[:GROUP_NAME_PART].strip("-")
    parts = (readable, short_id(jobid), str(attempt))
    return run_name_prefix(run_id) + "-".join(part for part in parts if part)


def run_name_prefix(run_id: str) -> str:
    """How the names of a run's pods and of its Secret begin."""
    return f"snakejob-{run_id[:8]}-"


def short_id(jobid: JobId) -> str:
    """12 hex digits standing for a group job's UUID in names: unique enough among
    the groups of a run (at 10,000 groups a clash has a chance of 2 in 10^7)."""
    return hashlib.sha256(str(jobid).encode()).hexdigest()[:12]


def job_title(rule: str, group: GroupSpec | None) -> str:
    """How messages name a job's pod's work: its rule, or a group and its rules."""
    if group is None:
        return rule
    return f"group {group.readable} (rules {', '.join(group.rules)})"


def secret_name(run_id: str) -> str:
    return f"{run_name_prefix(run_id)}env"


def label_value(text: str) -> str:
    """Any text as a valid label value (<= 63 chars of [A-Za-z0-9_.-], alphanumeric at
    both ends); a hash suffix keeps altered values distinct."""
    cleaned = _LABEL_INVALID.sub("_", text).strip("_.-")
    if cleaned == text and len(text) <= 63:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{cleaned[:52].rstrip('_.-')}-{digest}".lstrip("-")


def job_script(
    command: str,
    run: RunContext,
    workdir: str,
    pod: str | None = None,
    scratch_dir: str = "",
) -> str:
    """The container's shell script: where the job runs, Snakemake's command, and the
    command's exit status written where the executor sees it without interLink.
    Without a shared filesystem the job works in a scratch directory made in
    `scratch_dir` (bound from the worker node), else in the container's own temporary
    directory."""
    lines = []
    if run.shared_fs:
        lines.append(f"cd {shlex.quote(workdir)} || exit 1")
    else:
        parent = shlex.quote(scratch_dir) if scratch_dir else '"${TMPDIR:-/tmp}"'
        lines += [
            f"scratch=$(mktemp -d {parent}/snakejob.XXXXXX) || exit 1",
            'cd "$scratch" || exit 1',
            "trap 'cd / && rm -rf \"$scratch\"' EXIT",
        ]
        if run.storage_plugin_packages:
            pkgs = " ".join(shlex.quote(p) for p in run.storage_plugin_packages)
            lines.append(
                f"python -m pip install --quiet --target {PIP_DEPLOYMENTS} {pkgs} "
                "|| exit 1"
            )
    if not pod:
        lines.append(command)
        return "\n".join(lines)
    # how the command ended and what it used, as the job saw it (interLink may never
    # show it): in the exit-status file, else as the log's last line
    out = f"{run.exit_dir}/{pod}" if run.exit_dir else "-"
    if run.reporter and run.output_dir:
        reporter = ["python", run.reporter, out, "", f"{run.output_dir}/{pod}"]
    else:
        reporter = ["python", "-c", END_REPORTER, out, END_LINE.format(pod=pod), "-"]
    lines.append(shlex.join([*reporter, "/bin/sh", "-c", command]))
    return "\n".join(lines)


def requested(manifest: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The cpus and memory (MB) a job's pod asks for: its container's limits, which
    interLink turns into the batch job's request."""
    limits = manifest["spec"]["containers"][0].get("resources", {}).get("limits", {})
    cpu, memory = limits.get("cpu"), limits.get("memory")
    return (
        None if cpu is None else float(quantity_value(cpu)),
        None if memory is None else float(quantity_value(memory)) / 2**20,
    )


def container_command(script: str, flavour: str) -> list[str]:
    """The container's command. interLink's HTCondor plugin writes the word after `-c`
    into a bash file wrapped in double quotes (handles.py), so the site's bash would
    expand `$`, backquotes and quotes of the script before the job's shell sees it: the
    script travels base64-encoded there, as a word of letters, digits, `+/=`, and
    Python (which every job image has, for Snakemake) decodes and runs it."""
    if flavour != "htcondor":
        return ["/bin/sh", "-c", script]
    encoded = base64.b64encode(script.encode()).decode()
    decode_and_run = (
        "import base64,os,sys;a=sys.argv;"
        "os.execvp(a[1],[a[1],a[2],base64.b64decode(a[3]).decode()])"
    )
    return ["/bin/sh", "-c", f"python -c '{decode_and_run}' /bin/sh -c {encoded}"]


def pod_for_job(
    spec: JobSpec, settings: CheckedSettings, run: RunContext
) -> tuple[dict[str, Any], PodResources]:
    """The pod manifest of one job, and the resources it was built from."""
    res = pod_resources(spec.rule, spec.threads, spec.resources, settings)
    name = pod_name(
        run.run_id,
        spec.jobid,
        spec.attempt,
        spec.group.readable if spec.group else None,
    )
    labels = {
        **settings.labels,
        **run.labels,
        **_job_labels(spec),
        JOBID_LABEL: str(spec.jobid),
    }
    annotations = {
        **res.annotations,
        **_job_annotations(spec),
        ATTEMPT_ANNOTATION: str(spec.attempt),
        OUTPUTS_ANNOTATION: output_hashes(spec.outputs),
        JOB_KEY_ANNOTATION: spec.key,
    }
    if res.time_limit_minutes is not None:
        annotations[TIME_LIMIT_ANNOTATION] = str(res.time_limit_minutes)
    if not settings.pod_network:
        annotations[MESH_NETWORK_ANNOTATION] = "disabled"
    scratch_dir = scratch_bind(settings, res.flavour)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": res.image or settings.image or run.image,
        "command": container_command(
            job_script(spec.command, run, run.workdir, name, scratch_dir),
            res.flavour,
        ),
        "resources": {"limits": res.limits, "requests": res.requests},
    }
    if run.secret_name and run.env_names:
        container["env"] = [
            {
                "name": env,
                "valueFrom": {"secretKeyRef": {"name": run.secret_name, "key": env}},
            }
            for env in run.env_names
        ]
    paths = bind_paths(run, settings)
    volumes: list[dict[str, Any]] = []
    if res.flavour == "htcondor":
        check_env_for_htcondor(run, f"Rule {spec.rule}")
        options = annotations.get(HTCONDOR_SINGULARITY_OPTIONS, "")
        if paths:
            options = htcondor_bind_options(spec.rule, paths, options)
        if options:
            annotations[HTCONDOR_SINGULARITY_OPTIONS] = without_dash_c(options)
    else:
        volumes, mounts = _host_path_volumes(run, paths, scratch_dir)
        if mounts:
            container["volumeMounts"] = mounts
    spec_: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": _node_selector(res, settings),
        "tolerations": [
            {"key": INTERLINK_TAINT_KEY, "operator": "Exists"},
            *_outage_tolerations(settings.node_outage_tolerance),
            *(t.manifest() for t in settings.tolerations),
        ],
        "containers": [container],
    }
    if volumes:
        spec_["volumes"] = volumes
    if settings.service_account:
        spec_["serviceAccountName"] = settings.service_account
    if settings.image_pull_secrets:
        spec_["imagePullSecrets"] = [{"name": s} for s in settings.image_pull_secrets]
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": run.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec_,
    }
    return manifest, res


def _job_labels(spec: JobSpec) -> dict[str, str]:
    """A single job's rule, or a group job's kind and group name: a group runs many
    rules, and a rule label on its pod would name one of them."""
    if spec.group is None:
        return {RULE_LABEL: label_value(spec.rule)}
    return {KIND_LABEL: "group", GROUP_LABEL: label_value(spec.group.name)}


def _job_annotations(spec: JobSpec) -> dict[str, str]:
    if spec.group is None:
        return {
            RULE_ANNOTATION: spec.rule,
            WILDCARDS_ANNOTATION: json.dumps(dict(spec.wildcards), ensure_ascii=False),
        }
    return {
        GROUP_ANNOTATION: spec.group.name,
        RULES_ANNOTATION: " ".join(spec.group.rules),
        MEMBERS_ANNOTATION: str(spec.group.members),
    }


def _outage_tolerations(seconds: int) -> list[dict[str, Any]]:
    """Ride out an interLink outage instead of the admission default (300 s), after
    which running pods would be evicted and their batch jobs orphaned."""
    tolerations: list[dict[str, Any]] = []
    for key in NODE_OUTAGE_TAINTS:
        toleration: dict[str, Any] = {
            "key": key,
            "operator": "Exists",
            "effect": "NoExecute",
        }
        if seconds:
            toleration["tolerationSeconds"] = seconds
        tolerations.append(toleration)
    return tolerations


def _node_selector(res: PodResources, settings: CheckedSettings) -> dict[str, str]:
    node = res.node or settings.node
    if node:
        selector = {"kubernetes.io/hostname": node}
    else:
        key, value = settings.node_label
        selector = {key: value}
    return {**settings.node_selector, **selector}


def bind_paths(run: RunContext, settings: CheckedSettings) -> list[str]:
    """Host directories the job sees at the same path: the working directory in
    shared-FS mode, then --interlink-binds."""
    return ([run.workdir] if run.shared_fs else []) + [
        p for p in settings.binds if p != run.workdir
    ]


def scratch_bind(settings: CheckedSettings, flavour: str) -> str:
    """The worker nodes' directory bound into the job for its scratch directory and
    Snakemake's default tmpdir (/tmp), or "": not on HTCondor sites, whose plugin runs
    no --containall and copies hostPath volumes instead of binding them."""
    return "" if flavour == "htcondor" else settings.scratch_dir


def _host_path_volumes(
    run: RunContext, paths: list[str], scratch_dir: str = ""
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """hostPath volumes, which interLink's Slurm plugin turns into --bind in this
    order: the scratch directory first (created where missing), so that it hides no
    bind below it (the working directory under /tmp)."""
    volumes, mounts = [], []
    if scratch_dir and scratch_dir not in paths:
        source = {"path": scratch_dir, "type": "DirectoryOrCreate"}
        volumes.append({"name": "scratch", "hostPath": source})
        mounts.append({"name": "scratch", "mountPath": scratch_dir})
    for i, path in enumerate(paths):
        name = "workdir" if run.shared_fs and i == 0 else f"bind-{i}"
        volumes.append({"name": name, "hostPath": {"path": path, "type": "Directory"}})
        mounts.append({"name": name, "mountPath": path})
    return volumes, mounts


_HTCONDOR_SAFE_VALUE = re.compile(r"[A-Za-z0-9_./+:@%=-]*")


def env_changed_by_htcondor_line(env: Mapping[str, str]) -> tuple[str, ...]:
    """The variables whose values would not reach an HTCondor job as they are: the
    plugin writes `--env NAME=value` unquoted into the job's bash file (handles.py
    prepare_envs), where bash splits, expands and unquotes them, and singularity
    splits a comma-separated list. Names only: the values may be secrets."""
    return tuple(
        sorted(k for k, v in env.items() if not _HTCONDOR_SAFE_VALUE.fullmatch(v))
    )


def check_env_for_htcondor(run: RunContext, where: str) -> None:
    """Refuse, before any pod, an environment an HTCondor job would not get as set."""
    if run.env_changed_on_htcondor:
        raise WorkflowError(
            f"{where}: on an HTCondor site interLink's plugin puts the job's "
            "environment unquoted on a bash line, which would change the values of "
            f"{', '.join(run.env_changed_on_htcondor)} (a space, quote, $, comma or "
            "another character bash reads). Use values of letters, digits and "
            "_./+:@%=- only, or run these jobs on a Slurm site."
        )


def without_dash_c(options: str) -> str:
    """The options as the site's bash reads them, but with no "-c" in their text.

    interLink's HTCondor plugin wraps the word after any word containing "-c" in double
    quotes (handles.py), and the word after the singularity options is the job's list
    of `--env` flags: quoted, it reaches singularity as one unknown flag and every job
    exits 255. A workdir such as /home/ada/my-cohort or an option such as --cleanenv
    is enough. Bash reads a "c" after "-" the same when it is written `\\c` outside
    quotes, or leaves its quotes for it (`"-"\\c"`), so each such "c" is written so."""
    written: list[str] = []
    quote = ""
    i = 0
    while i < len(options):
        char = options[i]
        if char == "\\" and quote != "'" and i + 1 < len(options):
            written.append(options[i : i + 2])  # an escaped pair, as bash reads it
            i += 2
            continue
        if char == "c" and written and written[-1].endswith("-"):
            if quote and options[i + 1 : i + 2] == quote:  # no "" (the plugin drops it)
                written.append(f"{quote}\\c")
                quote = ""
                i += 1
            else:
                written.append(f"{quote}\\c{quote}")
        else:
            written.append(char)
            if quote and char == quote:
                quote = ""
            elif not quote and char in "'\"":
                quote = char
        i += 1
    return "".join(written)


_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_.+@%/-]*")


def htcondor_bind_options(rule: str, paths: list[str], options: str) -> str:
    """interLink's HTCondor plugin copies hostPath volumes into the job's sandbox
    (transfer_input_files) and binds the copy, so what a job writes there is lost: bind
    the shared directories themselves through the singularity options, which the
    plugin puts unquoted on the job's bash line (hence plain paths only)."""
    unsafe = [p for p in paths if not _PLAIN_PATH.fullmatch(p)]
    if unsafe:
        raise WorkflowError(
            f"Rule {rule}: on an HTCondor site the shared directories {unsafe} are "
            "bound through interLink's singularity options, which reach the site's "
            "bash unquoted: use paths of letters, digits and _.+@%/- only, or object "
            "storage (--shared-fs-usage none with a default storage provider)."
        )
    return " ".join(o for o in (options, f"--bind {','.join(paths)}") if o)
