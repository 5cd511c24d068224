"""The HTCondor side of the virtual node: job files on disk and the condor_* commands.

HTCondor runs in a Debian trixie chroot (testbed/setup-chroot.sh); /tmp is bound into it,
so the job directories under the testbed's state dir have the same path on both sides.
Jobs are submitted as an unprivileged user of the chroot (HTCondor refuses root's jobs);
queries, condor_rm and pings run as root, a queue super user.

Job directory (<state>/jobs/<namespace>-<pod uid>/, mode 1777 like the plugin's):
<pod>-<uid>.jdl (submit description), <pod>-<uid>.sh (executable), <ctn>_envfile.properties,
configMaps/ and secrets/ (files shipped with transfer_input_files), log/ out/ err/ (HTCondor's
user log, Output and Error, transferred back when the job ends), JobID.jid.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import condor, jobfiles, sbatch
from .batch import BatchUnavailable, SubmitError

log = logging.getLogger(__name__)

CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Owner:
    name: str
    uid: int
    gid: int
    home: str


def chroot_user(root: Path, name: str) -> Owner:
    """The submitting user as the chroot's /etc/passwd defines it."""
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[0] == name:
            return Owner(name, int(fields[2]), int(fields[3]), fields[5])
    raise ValueError(f"no user {name!r} in {root}/etc/passwd (setup-chroot.sh creates 'tester')")


def _volume_files(
    pod: dict[str, Any], container: dict[str, Any], directory: Path, volume_data: dict[str, dict[str, str]]
) -> tuple[list[Path], list[tuple[str, str]], list[str]]:
    """ConfigMap/Secret files of one container: (files to transfer, (mount path, name) links, binds)."""
    volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    files: list[Path] = []
    links: list[tuple[str, str]] = []
    binds: list[str] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            continue
        if "configMap" in volume or "secret" in volume or "projected" in volume:
            kind = "secrets" if "secret" in volume else "configMaps"
            target = directory / kind / volume["name"]
            target.mkdir(parents=True, exist_ok=True)
            for key, content in volume_data.get(volume["name"], {}).items():
                path = target / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
                path.chmod(0o600 if kind == "secrets" else 0o644)
                files.append(path)
                links.append((mount["mountPath"], path.name))
                binds.append(f"./{path.name}:{mount['mountPath'].rstrip('/')}/{key}")
        elif "hostPath" in volume:
            # The plugin ships a hostPath with transfer_input_files and binds the copy; here the
            # path is used in place (the chroot sees /tmp), so a shared workdir stays shared.
            binds.append(f"{volume['hostPath'].get('path', '')}:{mount['mountPath']}")
    return files, links, binds


def write_job(
    root: Path,
    pod: dict[str, Any],
    env: dict[str, list[tuple[str, str]]],
    volume_data: dict[str, dict[str, str]],
    container_path: str,
    owner: Owner | None = None,
) -> Path:
    """Create the job directory with its submit description; returns the .jdl path.

    Raises jobfiles.ProviderError where the plugin fails (a fractional cpu request)."""
    meta = pod["metadata"]
    directory = jobfiles.job_dir(root, pod)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o1777)
    for sub in ("log", "out", "err"):
        (directory / sub).mkdir(exist_ok=True)
        (directory / sub).chmod(0o1777)
    try:
        cpus = condor.request_cpus(pod)
    except condor.TranslationError as exc:
        raise jobfiles.ProviderError(f"Internal Server Error: {exc}") from exc
    memory = condor.request_memory_mb(pod)
    input_files: list[Path] = []
    links: list[tuple[str, str]] = []
    runs: list[condor.CondorRun] = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        name = container["name"]
        files, container_links, binds = _volume_files(pod, container, directory, volume_data)
        input_files += [f for f in files if f not in input_files]
        links += [link for link in container_links if link not in links]
        env_file = None
        if env.get(name):
            path = jobfiles.write_env_file(directory, name, env[name])
            input_files.append(path)
            env_file = path.name
        runs.append(
            condor.CondorRun(
                name, sbatch.container_argv(container), condor.singularity_image(pod, container), env_file, tuple(binds)
            )
        )
    stem = f"{meta['name']}-{meta['uid']}"
    executable = directory / f"{stem}.sh"
    executable.write_text(condor.render_executable(pod, runs, links, container_path))
    executable.chmod(0o777)
    submit = directory / f"{stem}.jdl"
    submit.write_text(
        condor.render_submit(pod, str(directory), str(executable), [str(f) for f in input_files], cpus, memory)
    )
    if owner is not None:  # HTCondor reads the inputs (secrets included) as the submitting user
        for path in [directory, *directory.rglob("*")]:
            os.chown(path, owner.uid, owner.gid, follow_symlinks=False)
    return submit


class HTCondorBackend:
    """condor_submit / condor_q / condor_history / condor_rm inside the chroot."""

    name = "htcondor"
    flavour = "htcondor"

    def __init__(self, root: Path, user: str = "tester") -> None:
        self.root = root
        self.owner = chroot_user(root, user)

    def _run(self, argv: list[str], as_owner: bool = False, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        prefix = ["chroot"]
        if as_owner:
            prefix.append(f"--userspec={self.owner.uid}:{self.owner.gid}")
        env = {"PATH": CHROOT_PATH, "HOME": self.owner.home if as_owner else "/root", "LANG": "C.UTF-8"}
        return subprocess.run(
            [*prefix, str(self.root), *argv], capture_output=True, text=True, timeout=timeout, env=env, check=False
        )

    def write_job(
        self,
        root: Path,
        pod: dict[str, Any],
        env: dict[str, list[tuple[str, str]]],
        volume_data: dict[str, dict[str, str]],
        container_path: str,
    ) -> tuple[Path, int | None]:
        return write_job(root, pod, env, volume_data, container_path, self.owner), None

    def submit(self, job_dir: Path, script: Path, time_limit: int | None) -> str:
        try:
            result = self._run(["condor_submit", str(script)], as_owner=True)
        except subprocess.TimeoutExpired as exc:
            raise BatchUnavailable("condor_submit timed out") from exc
        cluster = condor.submitted_cluster(result.stdout)
        if result.returncode != 0 or cluster is None:
            raise SubmitError(
                f"condor_submit failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()}"
            )
        return cluster

    def _ads(self, tool: str, job_ids: list[str]) -> list[dict[str, Any]]:
        argv = [tool, *job_ids, "-json", "-attributes", ",".join(condor.JOB_AD_ATTRIBUTES)]
        if tool == "condor_q":
            argv.insert(1, "-allusers")
        try:
            result = self._run(argv, timeout=30)
        except subprocess.TimeoutExpired as exc:
            raise BatchUnavailable(f"{tool} timed out") from exc
        if result.returncode != 0:
            raise BatchUnavailable(f"{tool}: {(result.stderr or result.stdout).strip()}")
        text = result.stdout.strip()
        if not text:
            return []
        try:
            ads = json.loads(text)
        except ValueError as exc:
            raise BatchUnavailable(f"{tool} printed no JSON: {text[:200]}") from exc
        return ads if isinstance(ads, list) else []

    def query(self, job_ids: list[str]) -> dict[str, condor.CondorJob]:
        """condor_q for every job in one call, then condor_history for those it lacks."""
        wanted = set(job_ids)
        jobs = {job.cluster: job for job in map(condor.CondorJob.from_ad, self._ads("condor_q", job_ids))}
        missing = sorted(wanted - jobs.keys(), key=int)
        if missing:
            jobs.update(
                {job.cluster: job for job in map(condor.CondorJob.from_ad, self._ads("condor_history", missing))}
            )
        return {key: job for key, job in jobs.items() if key in wanted}

    def cancel(self, job_id: str) -> None:
        result = self._run(["condor_rm", job_id], timeout=30)
        if result.returncode != 0:
            # A job that already left the queue cannot be removed: the plugin ignores that too.
            log.debug("condor_rm %s: %s", job_id, (result.stderr or result.stdout).strip())

    def adopt(self, job_id: str, job_dir: Path) -> None:
        """Nothing to do: the schedd keeps its queue across restarts."""

    def ping(self) -> tuple[bool, str, dict[str, str] | None]:
        """The HTCondor plugin's ping carries no resources: the capacity stays configured."""
        try:
            result = self._run(["condor_status", "-schedd", "-af", "Name"], timeout=15)
        except subprocess.TimeoutExpired:
            return False, "condor_status timed out", None
        name = result.stdout.strip()
        if result.returncode == 0 and name:
            return True, f"HTCondor schedd {name.splitlines()[0]} answers", None
        return (
            False,
            (result.stderr or result.stdout).strip() or f"condor_status exited with {result.returncode}",
            None,
        )
