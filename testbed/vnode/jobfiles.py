"""The job directory, <state>/jobs/<namespace>-<pod uid>/, laid out as the plugin does.

job.slurm, job.sh, job.out (Slurm's output), run-<ctn>.out / .status per container,
<ctn>_envfile.properties (mode 600), JobID.jid; ConfigMap/Secret/emptyDir volumes are
materialised under the directory and linked at <job dir>/<mountPath> (without a sandbox
there is no real mount: the job finds them relative to its working directory; with
`--sandbox bwrap` they are bound at their mountPath, one bind per file as the plugin does).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import sandbox, sbatch

SINGULARITY_MOUNTS_ANNOTATION = "slurm-job.vk.io/singularity-mounts"

log = logging.getLogger(__name__)


class ProviderError(Exception):
    """The plugin refuses the pod (e.g. a bad hostPath): the pod becomes ProviderFailed.

    The text is the body of the plugin's answer; `plugin_status` its HTTP status, which
    interLink's API passes on to the VK (the VK's message names it)."""

    def __init__(self, message: str, plugin_status: int = 504) -> None:
        super().__init__(message)
        self.plugin_status = plugin_status


def job_dir(root: Path, pod: dict[str, Any]) -> Path:
    meta = pod["metadata"]
    return root / f"{meta['namespace']}-{meta['uid']}"


def _link_at_mount_path(job_dir: Path, source: Path, mount_path: str) -> None:
    link = job_dir / mount_path.lstrip("/")
    if link == job_dir or link.exists() or link.is_symlink():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(source)


def _write_files(target: Path, files: dict[str, str], mode: int) -> None:
    for rel, content in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)


def prepare_mounts(
    pod: dict[str, Any], container: dict[str, Any], job_dir: Path, volume_data: dict[str, dict[str, str]]
) -> list[str]:
    """The plugin's prepareMounts for one container: returns the binds singularity would get.

    hostPath must be of type Directory (and exist) or DirectoryOrCreate (created); any other
    type, including the default "", is refused. A volume of a kind the plugin does not know
    (e.g. a PVC) silently ends the processing of this container's remaining mounts.
    """
    volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    pod_name = pod["metadata"]["name"]
    binds: list[str] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise ProviderError(f"volume {mount['name']} not found in pod {pod_name}")
        mount_path = mount["mountPath"]
        mode = ":ro" if mount.get("readOnly") else ":rw"
        if "configMap" in volume or "secret" in volume or "projected" in volume:
            kind = "configMaps" if "configMap" in volume else "secrets" if "secret" in volume else "projectedVolumeMaps"
            target = job_dir / kind / volume["name"]
            files = volume_data.get(volume["name"], {})
            _write_files(target, files, _file_mode(volume))
            _link_at_mount_path(job_dir, target, mount_path)
            # one bind per file (mountDataSimpleVolume): <file>:<mountPath>/<key>, or the
            # mountPath itself with a subPath
            for key in files:
                inside = mount_path if mount.get("subPath") else os.path.join(mount_path, key)
                binds.append(f"{target / key}:{inside}{mode}")
        elif "emptyDir" in volume:
            target = job_dir / "emptyDirs" / volume["name"]
            target.mkdir(parents=True, exist_ok=True)
            _link_at_mount_path(job_dir, target, mount_path)
            binds.append(f"{target}:{mount_path}{mode}")
        elif "hostPath" in volume:
            host_path = volume["hostPath"].get("path", "")
            kind = volume["hostPath"].get("type") or ""
            if not host_path or not mount_path:
                raise ProviderError(f"hostPath or containerPath is empty for volume {volume['name']} in pod {pod_name}")
            if kind == "Directory":
                if not os.path.exists(host_path):
                    raise ProviderError(
                        f"hostPath directory {host_path} does not exist for volume {volume['name']} in pod {pod_name}"
                    )
            elif kind == "DirectoryOrCreate":
                os.makedirs(host_path, exist_ok=True)
            else:
                raise ProviderError(f"unsupported hostPath type {kind} for volume {volume['name']} in pod {pod_name}")
            binds.append(f"{host_path}:{mount_path}" + (":ro" if mount.get("readOnly") else ""))
        else:
            break  # "Silently ignoring unknown volume type": the rest of this container's mounts too
    return binds


def _file_mode(volume: dict[str, Any]) -> int:
    """A ConfigMap/Secret volume's files get its defaultMode (the API server's default:
    0644), as the plugin's mountData writes them; projected volumes get 0644."""
    source = volume.get("secret") or volume.get("configMap") or {}
    return int(source.get("defaultMode", 0o644)) & 0o777


_UMASK = 0o022  # the usual umask of the plugin's service


def write_env_file(directory: Path, container: str, pairs: list[tuple[str, str]]) -> Path:
    """The container's resolved environment, Secret values included, as the Slurm plugin
    writes it: `os.Create`, so 0666 minus the umask, i.e. 0644, readable by every user of
    the site (prepare.go `prepareEnvs`). The HTCondor plugin puts the same values as
    `--env` words into a 0777 executable, which is no better."""
    path = directory / f"{container}_envfile.properties"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 & ~_UMASK)
    os.fchmod(fd, 0o666 & ~_UMASK)
    with os.fdopen(fd, "wb") as handle:
        handle.write(sbatch.env_file_content(pairs))
    return path


@dataclass(frozen=True)
class SandboxConfig:
    """--sandbox bwrap: every container runs in bubblewrap over this image root."""

    image: sandbox.Image
    bwrap: str = "bwrap"
    unshare: str = "unshare"


def container_binds(pod: dict[str, Any], mount_binds: list[str]) -> list[sandbox.Bind]:
    """What singularity would bind for a container: the `singularity-mounts` annotation's
    words (first on its command line), then the plugin's own --bind words."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    words = annotations.get(SINGULARITY_MOUNTS_ANNOTATION, "")
    try:
        return sandbox.binds_of_words(words) + [sandbox.parse_bind(spec) for spec in mount_binds]
    except ValueError as exc:  # singularity refuses it when the job runs; refused at create here
        raise ProviderError(f"testbed: {exc}") from None


def write_job(
    root: Path,
    pod: dict[str, Any],
    env: dict[str, list[tuple[str, str]]],
    volume_data: dict[str, dict[str, str]],
    container_path: str = sbatch.CONTAINER_PATH,
    job_script_template: bool = False,
    sandboxed: SandboxConfig | None = None,
) -> tuple[Path, int | None]:
    """Create the job directory and scripts; returns (job.slurm path, --time in seconds).

    `job_script_template`: the site's interLink has a JobScriptTemplate. The plugin still
    prepares every container's mounts and env file, then runs jobScript.sh (0770) as the
    job's only "container", `jobScript` (Create.go SubmitHandler): see
    sbatch.render_template_job_script. `sandboxed`: containers run in bubblewrap over an
    image root (sandbox.py) instead of on the host."""
    directory = job_dir(root, pod)
    directory.mkdir(parents=True, exist_ok=True)
    init_names = {c["name"] for c in (pod.get("spec") or {}).get("initContainers") or []}
    runs: list[sbatch.ContainerRun] = []
    for container in sbatch.all_containers(pod):
        name = container["name"]
        binds = prepare_mounts(pod, container, directory, volume_data)
        env_file = str(write_env_file(directory, name, env[name])) if env.get(name) else None
        isolation: dict[str, Any] = {}
        if sandboxed is not None:
            session = str(directory / f"session-{name}")
            args = sandbox.bwrap_args(sandboxed.image, container_binds(pod, binds), session)
            isolation = {"sandbox": tuple(args), "session": session}
        runs.append(
            sbatch.ContainerRun(
                name,
                sbatch.container_argv(container),
                env_file,
                init=name in init_names,
                binds=tuple(binds),
                **isolation,
            )
        )
    sandbox_fn = ""
    if sandboxed is not None:
        sandbox_fn = sbatch.sandbox_function(sandboxed.image, sandboxed.bwrap, sandboxed.unshare)
    if job_script_template:
        script = directory / "jobScript.sh"
        script.write_text(sbatch.render_template_job_script(pod, str(directory), runs, container_path, sandbox_fn))
        script.chmod(0o770)
        runs = [sbatch.ContainerRun(sbatch.JOB_SCRIPT_CONTAINER, [str(script)], direct=True)]
    flags = sbatch.sbatch_flags(pod)
    (directory / "job.slurm").write_text(sbatch.render_job_slurm(pod, str(directory), flags))
    (directory / "job.sh").write_text(sbatch.render_job_sh(pod, str(directory), runs, container_path, sandbox_fn))
    (directory / "job.slurm").chmod(0o774)
    (directory / "job.sh").chmod(0o774)
    return directory / "job.slurm", sbatch.time_limit_seconds(flags)


def record_submission(directory: Path, pod: dict[str, Any], job_id: str) -> None:
    (directory / "JobID.jid").write_text(job_id)
    (directory / "PodUID.uid").write_text(pod["metadata"]["uid"])
    (directory / "PodNamespace.ns").write_text(pod["metadata"]["namespace"])


def load_jids(root: Path) -> dict[str, tuple[str, Path]]:
    """What the Slurm plugin knows at its start (prepare.go `LoadJIDs`): pod UID -> (job id,
    job dir) for every job dir holding JobID.jid, PodUID.uid and PodNamespace.ns."""
    known: dict[str, tuple[str, Path]] = {}
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return known
    for directory in entries:
        texts = [read_text(directory / name) for name in ("JobID.jid", "PodUID.uid", "PodNamespace.ns")]
        if not directory.is_dir() or any(text is None for text in texts):
            continue
        job_id, uid, _ = texts
        known[str(uid)] = (str(job_id), directory)
    return known


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


OUTPUT_FILES = ("job.out", "run-*.out", "init-*.out", "err/*", "out/*")  # Slurm, HTCondor


def output_tail(directory: Path, limit: int = 1500) -> str:
    """The end of what a job printed (its job dir is gone with its pod): for the agent's
    log when a pod fails, which testbed/logs.sh shows when a test fails."""
    parts = []
    for pattern in OUTPUT_FILES:
        for path in sorted(directory.glob(pattern)):
            text = (read_text(path) or "").strip()
            if text:
                parts.append(f"--- {path.relative_to(directory)}\n{text[-limit:]}")
    return "\n".join(parts)


def status_files(directory: Path, names: list[str]) -> dict[str, str | None]:
    """Each container's run-<name>.status (or init-<name>.status), None where absent."""
    result = {}
    for name in names:
        text = read_text(directory / f"run-{name}.status")
        result[name] = text if text is not None else read_text(directory / f"init-{name}.status")
    return result


def remove(directory: Path, attempts: int = 5) -> None:
    """rm -rf, retried: files still being closed by slurmstepd can make a first pass fail."""
    for attempt in range(attempts):
        try:
            shutil.rmtree(directory)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if attempt == attempts - 1:
                log.warning("could not remove %s: %s", directory, exc)
                return
            time.sleep(0.1 * (attempt + 1))
