"""Pod -> Slurm job scripts, as the interLink Slurm plugin writes them (pure: no I/O).

Two files per job, as in the plugin: `job.slurm` (the #SBATCH header, the pre-exec
annotation, then a call of job.sh) and `job.sh` (runs every container in the background
with its output in run-<name>.out and its exit code in run-<name>.status, init containers
first and fail-fast, and exits with the highest exit code). The container runtime call
(`singularity exec --containall ... image cmd args`) is replaced by `runtime`, a shell
function that runs the command on the host with a clean environment in the job directory.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Any

from . import flags as slurm_flags
from . import sandbox as sandbox_mod
from .quantity import cpu_cores, memory_bytes

FLAGS_ANNOTATION = "slurm-job.vk.io/flags"
PRE_EXEC_ANNOTATION = "slurm-job.vk.io/pre-exec"
# PATH inside the stand-in "container": an image would bring its own; the host's is not passed
# (singularity --containall implies --cleanenv).
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Limits:
    """What the plugin derives from pod limits (requests are never read)."""

    cpus: int
    memory_bytes: int
    cpu_from_pod: bool  # False: no container has a cpu limit (the plugin's isDefaultCPU)
    memory_from_pod: bool  # False: no memory limit anywhere -> the plugin submits --mem=1


@dataclass(frozen=True)
class ContainerRun:
    """One container of the job script."""

    name: str
    argv: list[str]
    env_file: str | None = None  # NUL-separated NAME=value pairs, read by `runtime`
    init: bool = False
    binds: tuple[str, ...] = ()  # what singularity would --bind (informative: paths are the host's)
    direct: bool = False  # argv is run as is, not through the `runtime` stand-in (the jobScript "container")
    sandbox: tuple[str, ...] = ()  # --sandbox bwrap: bubblewrap's arguments (sandbox.bwrap_args)
    session: str = ""  # --sandbox bwrap: the host directory the session tmpfs is mounted on


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Init containers first, then containers: the order in which the plugin reads them."""
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def pod_limits(pod: dict[str, Any]) -> Limits:
    """Maximum of the cpu (rounded up) and memory limits over all containers.

    Without any cpu limit the plugin uses 1 cpu; without any memory limit, 1 MiB.
    """
    cpus, memory = 0, 0
    cpu_from_pod = memory_from_pod = False
    for container in all_containers(pod):
        limits = (container.get("resources") or {}).get("limits") or {}
        container_cpus = math.ceil(cpu_cores(limits.get("cpu")))
        container_memory = memory_bytes(limits.get("memory"))
        # Same order of updates as the plugin: a default set by an earlier container without
        # limits is only replaced by a larger limit (so 512Ki after a default gives --mem=1).
        if container_cpus == 0:
            if not cpu_from_pod:
                cpus = 1
        else:
            cpus = max(cpus, container_cpus)
            cpu_from_pod = True
        if container_memory == 0:
            if not memory_from_pod:
                memory = 1024 * 1024
        else:
            memory = max(memory, container_memory)
            memory_from_pod = True
    return Limits(cpus or 1, memory or 1024 * 1024, cpu_from_pod, memory_from_pod)


def sbatch_flags(pod: dict[str, Any]) -> list[str]:
    """The #SBATCH flags after the job name and output: annotation flags, then limits.

    `--cpus-per-task`/`-c` and `--mem` from the annotation are dropped when the pod has
    such a limit; the limits are appended last, so they win over everything else.
    """
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    limits = pod_limits(pod)
    chosen: list[str] = []
    cpu_from_flags = memory_from_flags = False
    for flag in slurm_flags.split_flags(annotations.get(FLAGS_ANNOTATION, "")):
        key = slurm_flags.flag_key(flag)
        if key == "--cpus-per-task":
            if limits.cpu_from_pod:
                continue
            cpu_from_flags = True
        elif key == "--mem":
            if limits.memory_from_pod:
                continue
            memory_from_flags = True
        chosen.append(flag)
    run_as = ((pod.get("spec") or {}).get("securityContext") or {}).get("runAsUser")
    if isinstance(run_as, int) and run_as >= 0:
        chosen.append(f"--uid={run_as}")
    if limits.cpu_from_pod:
        chosen.append(f"--cpus-per-task={limits.cpus}")
    elif not cpu_from_flags:
        chosen.append("--cpus-per-task=1")
    if limits.memory_from_pod:
        chosen.append(f"--mem={limits.memory_bytes // 1024 // 1024}")
    elif not memory_from_flags:
        chosen.append("--mem=1")
    return slurm_flags.deduplicate(chosen)


def time_limit_seconds(flags: list[str]) -> int | None:
    """The --time the job was given, in seconds (for the local backend, which has no Slurm)."""
    for flag in flags:
        if slurm_flags.flag_key(flag) == "--time":
            return slurm_flags.slurm_time_seconds(slurm_flags.flag_value(flag))
    return None


def container_argv(container: dict[str, Any]) -> list[str]:
    """What the container runs: command + args (`singularity exec`).

    Without a command the plugin uses `singularity run`, i.e. the image's entrypoint with
    the args; there is no image here, so the args are run as the command (and `true`
    stands for an image whose entrypoint does nothing).
    """
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    return argv or ["true"]


def render_job_slurm(pod: dict[str, Any], job_dir: str, flags: list[str]) -> str:
    """job.slurm: what sbatch receives."""
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={meta.get('uid', '')}",
        f"#SBATCH --output={job_dir}/job.out",
    ]
    lines += [f"#SBATCH {flag}" for flag in flags if flag]
    lines.append("")
    if PRE_EXEC_ANNOTATION in annotations:
        lines.append(annotations[PRE_EXEC_ANNOTATION])
    lines.append(f"{job_dir}/job.sh")
    return "\n".join(lines) + "\n"


_RUNTIME_FN = r"""# Stand-in for `singularity exec --containall`: the host's environment is not passed, the
# pod's env comes from the env file, and the command starts in the job directory.
runtime() {
  local envfile=$1 vars=()
  shift
  if [ "$envfile" != - ]; then mapfile -d '' -t vars <"$envfile"; fi
  env -i PATH=@PATH@ HOME="$workingPath" "${vars[@]}" "$@"
}
"""

_SANDBOX_FN = r"""# Stand-in for `singularity exec --containall` over the image root (--sandbox bwrap): a
# private session tmpfs of @SIZE@ MiB for HOME, /tmp and /var/tmp (mounted in a mount
# namespace of its own), then bubblewrap with a clean environment: the image's PATH, HOME,
# the variables Apptainer always passes, the pod's env (which cannot set HOME).
sandbox() {
  local envfile=$1 session=$2 vars=() kept=() entry key
  shift 2
  if [ "$envfile" != - ]; then mapfile -d '' -t vars <"$envfile"; fi
  for key in @PASSED@; do
    if [ -n "${!key+x}" ]; then kept+=("$key=${!key}"); fi
  done
  for entry in "${vars[@]}"; do
    if [[ $entry != HOME=* ]]; then kept+=("$entry"); fi
  done
  mkdir -p "$session" || return 255
  @UNSHARE@ --mount --propagation private -- /bin/bash -c '
    mount -t tmpfs -o size=@SIZE@m,mode=0755 apptainer-session "$1" || exit 255
    mkdir -m 0700 "$1/home" && mkdir -m 1777 "$1/tmp" "$1/var_tmp" || exit 255
    shift
    exec "$@"' sandbox "$session" env -i PATH=@PATH@ HOME=@HOME@ "${kept[@]}" @BWRAP@ "$@"
}
"""


def sandbox_function(image: sandbox_mod.Image, bwrap: str = "bwrap", unshare: str = "unshare") -> str:
    """The job script's `sandbox` function for this image (bwrap and unshare by absolute path:
    `env -i` looks them up in the image's PATH)."""
    return (
        _SANDBOX_FN.replace("@SIZE@", str(sandbox_mod.SESSION_SIZE_MIB))
        .replace("@PASSED@", " ".join(sandbox_mod.ALWAYS_PASSED))
        .replace("@UNSHARE@", shlex.quote(unshare))
        .replace("@BWRAP@", shlex.quote(bwrap))
        .replace("@PATH@", shlex.quote(image.path))
        .replace("@HOME@", shlex.quote(image.home))
    )


def _container_line(run: ContainerRun) -> str:
    """How job.sh (or a template's script) starts one container's command."""
    command = " ".join(shlex.quote(arg) for arg in run.argv)
    if run.direct:
        return command
    env_file = shlex.quote(run.env_file) if run.env_file else "-"
    if run.sandbox:
        args = " ".join(shlex.quote(arg) for arg in run.sandbox)
        return f"sandbox {env_file} {shlex.quote(run.session)} {args} -- {command}"
    return f"runtime {env_file} {command}"


_JOB_SH_HEAD = (
    r"""#!/bin/bash
# Written by the testbed's virtual node, standing in for the interLink Slurm plugin's job.sh.
export workingPath=@JOB_DIR@
export SANDBOX=@JOB_DIR@
cd "$workingPath" || exit 1

stamp() { date -Is --utc; }

"""
    + _RUNTIME_FN
    + r"""
# Init containers: one after the other; the first failure ends the job.
runInit() {
  local name=$1 rc
  shift
  printf '%s\n' "$(stamp) Running init container $name..."
  time ( "$@" ) &>"$workingPath/init-$name.out"
  rc=$?
  printf '%s\n' "$rc" >"$workingPath/init-$name.status"
  if [ "$rc" != 0 ]; then
    printf '%s\n' "$(stamp) InitContainer $name failed with status $rc" >&2
    exit "$rc"
  fi
}

# Containers: all in the background, waited for at the end.
started=""
runCtn() {
  local name=$1
  shift
  time ( "$@" ) >>"$workingPath/run-$name.out" 2>&1 &
  started="$started $!:$name"
  printf '%s\n' "$(stamp) Running in background $name pid $!..."
}

waitCtns() {
  local entry pid name rc
  for entry in $started; do
    pid=${entry%%:*}
    name=${entry#*:}
    printf '%s\n' "$(stamp) Waiting for container $name pid $pid..."
    wait "$pid"
    rc=$?
    printf '%s\n' "$rc" >"$workingPath/run-$name.status"
    printf '%s\n' "$(stamp) Container $name pid $pid ended with status $rc."
  done
  highest=0
  for f in "$workingPath"/*.status; do
    [ -e "$f" ] || continue
    rc=$(cat "$f")
    [ "$rc" -gt "$highest" ] && highest=$rc
  done
}

printf '%s\n' "This pod @POD@ has been submitted to SLURM node ${SLURMD_NODENAME:-$(hostname -s)}."
printf '%s\n' "To get more info, please run: scontrol show job ${SLURM_JOBID:-(local mode: no Slurm job)}."
"""
)


def render_job_sh(
    pod: dict[str, Any],
    job_dir: str,
    runs: list[ContainerRun],
    container_path: str = CONTAINER_PATH,
    sandbox_fn: str = "",
) -> str:
    """job.sh: the containers' commands, run through the `runtime` stand-in, or through
    `sandbox` (`sandbox_fn`, see sandbox_function) for containers that have bwrap arguments."""
    meta = pod.get("metadata") or {}
    head = (
        _JOB_SH_HEAD.replace("@JOB_DIR@", shlex.quote(job_dir))
        .replace("@PATH@", container_path)
        .replace("@POD@", f"{meta.get('name', '')}/{meta.get('uid', '')}")
    )
    lines = [head]
    if sandbox_fn:
        lines.append(sandbox_fn)
    for run in runs:
        verb = "runInit" if run.init else "runCtn"
        if run.binds:
            lines.append("# singularity would --bind " + " ".join(run.binds))
        lines.append(f"{verb} {shlex.quote(run.name)} {_container_line(run)}")
    lines.append("")
    lines.append("waitCtns")
    lines.append("printf '%s\\n' \"$(stamp) End of script, highest exit code $highest...\"")
    lines.append('exit "$highest"')
    return "\n".join(lines) + "\n"


def env_file_content(pairs: list[tuple[str, str]]) -> bytes:
    """The env file `runtime` reads: NAME=value entries separated by NUL (any value works)."""
    return b"".join(f"{name}={value}".encode() + b"\0" for name, value in pairs)


JOB_SCRIPT_CONTAINER = "jobScript"  # the Slurm plugin's name for a site job script's "container"


def render_template_job_script(
    pod: dict[str, Any],
    job_dir: str,
    runs: list[ContainerRun],
    container_path: str = CONTAINER_PATH,
    sandbox_fn: str = "",
) -> str:
    """jobScript.sh: the stand-in for a site's `JobScriptTemplate`.

    interLink's API (pkg/interlink/api/create.go `CreateHandler`, f6321757) renders the
    template file named by its config's JobScriptTemplate (a Go text/template over the pod)
    into the create request's `JobScript`; the Slurm plugin (Create.go `SubmitHandler`,
    f8451d9) then writes it to jobScript.sh and makes it the job's ONLY "container", named
    jobScript: job.sh runs `runCtn jobScript <dir>/jobScript.sh`, so the pod's containers never
    get a run-<name>.out nor run-<name>.status. This stand-in is a template that does run what
    the pod's containers run (init containers first, fail-fast, then the containers one after
    the other, each through the same `runtime` stand-in; quoted, unlike a naive template) and
    exits with the highest exit code; its output goes where job.sh sends it.
    """
    meta = pod.get("metadata") or {}
    lines = [
        "#!/bin/bash",
        "# Stand-in for a site's JobScriptTemplate, rendered by interLink's API for pod "
        f"{meta.get('name', '')}/{meta.get('uid', '')}.",
        f"export workingPath={shlex.quote(job_dir)}",
        'cd "$workingPath" || exit 1',
        "",
        _RUNTIME_FN.replace("@PATH@", container_path),
        *([sandbox_fn] if sandbox_fn else []),
        "highest=0",
    ]
    for run in runs:
        lines.append(_container_line(run))
        lines.append("rc=$?")
        if run.init:
            lines.append('if [ "$rc" != 0 ]; then exit "$rc"; fi')
        lines.append('if [ "$rc" -gt "$highest" ]; then highest=$rc; fi')
    lines.append('exit "$highest"')
    return "\n".join(lines) + "\n"
