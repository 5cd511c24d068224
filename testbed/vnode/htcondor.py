"""The HTCondor side of the virtual node: job files on disk and the condor_* commands.

HTCondor runs in a Debian trixie chroot (testbed/setup-chroot.sh); /tmp is bound into it,
so the job directories under the testbed's state dir have the same path on both sides.
Jobs are submitted as an unprivileged user of the chroot (HTCondor refuses root's jobs);
queries, condor_rm and pings run as root, a queue super user. The backend installs the
`singularity` stand-in (singularity.py) as /usr/local/bin/singularity in the chroot, where
the plugin's executable finds it.

Job directory (<state>/jobs/<namespace>-<pod uid>/, mode 1777): <pod>-<uid>.jdl (submit
description), <pod>-<uid>.sh (the plugin's executable, 0777, env values included),
configMaps/<volume>/<key> and secrets/<volume>/<key> (files shipped with
transfer_input_files, Secret values base64-encoded as the plugin writes them), log/ out/
err/ (HTCondor's user log, Output and Error, transferred back when the job ends), JobID.jid.

Plugin builds (`plugin_build`): "head" is interlink-htcondor-plugin 6f5ee3e as it is: its
/create answers 201, which interLink's VK reads as a failure, so every pod becomes
ProviderFailed while its job was submitted and runs on until the pod is deleted (the VK
then calls /delete, which condor_rm's it); "working" is the same code with /create
answering 200, so pods follow their jobs. Everything else is the same in both.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import condor, jobfiles, singularity
from .batch import BatchUnavailable
from .sbatch import CONTAINER_PATH

log = logging.getLogger(__name__)

CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PLUGIN_BUILDS = ("working", "head")
SINGULARITY_PATH = "usr/local/bin/singularity"  # in the chroot


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


def write_job(
    root: Path,
    pod: dict[str, Any],
    env: dict[str, list[tuple[str, str]]],
    volume_data: dict[str, dict[str, str]],
    owner: Owner | None = None,
    command_prefix: str = "",
) -> Path:
    """Create the job directory with the plugin's files; returns the .jdl path.

    Raises jobfiles.ProviderError where the plugin raises (the create fails with HTTP 500
    and Flask's debugger page) or where the testbed does not follow it."""
    meta = pod["metadata"]
    try:
        condor.check_reproducible(pod)
    except condor.NotReproduced as exc:
        raise jobfiles.ProviderError(f"testbed: {exc}") from exc
    directory = jobfiles.job_dir(root, pod)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o1777)
    for sub in ("log", "out", "err"):
        (directory / sub).mkdir(exist_ok=True)
        (directory / sub).chmod(0o1777)
    containers = (pod.get("spec") or {}).get("containers") or []
    words: list[str] = []
    files: list[str] = [""]
    try:
        for container in containers:  # every container is prepared; the last one's words win
            envs = condor.env_words(env.get(container["name"], []))
            data, volume_files = condor.plugin_mounts(pod, container, str(directory), volume_data)
            for item in volume_files:
                path = directory / item.path
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(item.content)
                path.chmod(item.mode & 0o7777)
            words = condor.singularity_words(pod, container, envs, data)
            files = condor.input_files(data)
        cpus = condor.request_cpus(pod)
    except condor.PluginCrash as exc:
        raise jobfiles.ProviderError(exc.body, plugin_status=exc.plugin_status) from exc
    memory = condor.request_memory_mb(pod)
    stem = f"{meta['name']}-{meta['uid']}"
    executable = directory / f"{stem}.sh"
    executable.write_text(condor.render_executable(words, command_prefix))
    submit = directory / f"{stem}.jdl"
    submit.write_text(condor.render_submit(pod, str(directory), str(executable), files, cpus, memory))
    executable.chmod(0o777)
    if owner is not None:  # HTCondor reads the inputs (secrets included) as the submitting user
        for path in [directory, *directory.rglob("*")]:
            os.chown(path, owner.uid, owner.gid, follow_symlinks=False)
    return submit


class HTCondorBackend:
    """condor_submit / condor_q / condor_history / condor_rm inside the chroot, answering
    as the plugin build `plugin_build` ("working" or "head", see the module's docstring)."""

    name = "htcondor"
    flavour = "htcondor"

    def __init__(
        self,
        root: Path,
        user: str = "tester",
        plugin_build: str = "working",
        container_path: str = CONTAINER_PATH,
        command_prefix: str = "",
    ) -> None:
        if plugin_build not in PLUGIN_BUILDS:
            raise ValueError(f"plugin build {plugin_build!r}: expected one of {', '.join(PLUGIN_BUILDS)}")
        self.root = root
        self.owner = chroot_user(root, user)
        self.plugin_build = plugin_build
        self.command_prefix = command_prefix
        singularity.install(root / SINGULARITY_PATH, container_path)

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
        """`container_path` is baked into the installed singularity stand-in instead."""
        return write_job(root, pod, env, volume_data, self.owner, self.command_prefix), None

    def submit(self, job_dir: Path, script: Path, time_limit: int | None) -> str:
        """condor_submit; the job id is read from its output the plugin's way, even when it
        failed (the plugin never looks at the exit status): a failed submission gives a
        job id that names no job, and the pod then waits forever for a status."""
        try:
            result = self._run(["condor_submit", str(script)], as_owner=True)
        except subprocess.TimeoutExpired as exc:
            raise BatchUnavailable("condor_submit timed out") from exc
        job_id = condor.plugin_job_id(result.stdout)
        if result.returncode != 0 or not job_id.isdigit():
            log.warning(
                "condor_submit %s failed (exit %d: %s); the plugin answers job id %r all the same",
                script,
                result.returncode,
                (result.stderr or result.stdout).strip(),
                job_id,
            )
        return job_id

    def create_refusal(self, pod: dict[str, Any], job_id: str) -> str | None:
        """The VK's error for the plugin's answer to a create that submitted `job_id`
        (None: accepted). At HEAD the answer is 201, which the VK refuses."""
        if self.plugin_build == "head":
            return condor.head_create_error(pod, job_id)
        return None

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
        """condor_q for every job in one call, then condor_history for those it lacks. A
        job id that is not a number (a failed submission) is in neither: the plugin answers
        404 and the VK keeps the pod's status."""
        wanted = {job_id for job_id in job_ids if job_id.isdigit()}
        if not wanted:
            return {}
        ads = self._ads("condor_q", sorted(wanted, key=int))
        jobs = {job.cluster: job for job in map(condor.CondorJob.from_ad, ads)}
        missing = sorted(wanted - jobs.keys(), key=int)
        if missing:
            jobs.update(
                {job.cluster: job for job in map(condor.CondorJob.from_ad, self._ads("condor_history", missing))}
            )
        return {key: job for key, job in jobs.items() if key in wanted}

    def cancel(self, job_id: str) -> None:
        """The plugin's /delete: condor_rm of the job id in its .jid file (int() of it; a
        job id that is not a number makes it fail before condor_rm)."""
        if not job_id.strip().isdigit():
            log.info("job id %r is not a number: the plugin's delete fails before condor_rm", job_id)
            return
        result = self._run(["condor_rm", job_id.strip()], timeout=30)
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
