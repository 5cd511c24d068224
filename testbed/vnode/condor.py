"""Pod -> HTCondor job and job ad -> pod status, as interLink's HTCondor plugin does it.

Source: interlink-hq/interlink-htcondor-plugin `handles.py` at HEAD 6f5ee3e (2025-07-10);
"l." below are its line numbers. Pure: no I/O, the clock is passed in.

/create (SubmitHandler, l. 501-659):
- Containers: `spec.containers` only (init containers are never read). Every container's
  env and mounts are prepared (l. 545-624), but the job runs only the LAST one: the loop
  variable `singularity_command` is what reaches produce_htcondor_singularity_script
  (l. 625-627), with the last container's `input_files`. RequestCpus/RequestMemory still
  sum over all containers.
- If the first container's image contains "host" anywhere the plugin switches to a
  "host script" mode (l. 544, 629-633): not reproduced, the testbed refuses such pods.
- RequestCpus = sum of `int(requests.cpu)` (l. 356): "500m", "1500m" (which is how
  Kubernetes stores "1.5") make the plugin raise; 0 becomes 1 (l. 360). Limits are never
  read. RequestMemory (MB) = sum of parse_string_with_suffix(requests.memory) (l. 321-343):
  leading digits directly followed by k, M, G, Ki, Mi or Gi; anything else counts 1; a
  total of 0 becomes 1. `+MaxWallTimeMins = 60` always (l. 397); no GPU.
- The executable (l. 365-382) is `#!/bin/bash`, an empty line, the site's CommandPrefix
  and ONE command line: the words `singularity exec <singularity-options annotation>
  <env words> [--bind <binds>] <image> <command...> <args...>` joined with single spaces,
  where every word that follows a word CONTAINING "-c" is wrapped in double quotes
  (l. 371-374: `/bin/sh -c SCRIPT` gives "SCRIPT", but so does a word after
  `--containall`, or after an image or path that contains "-c"), after which
  `\\s*""\\s*` becomes one space and runs of spaces one space (l. 378-379), in the
  script too. Nothing is shell-quoted: bash, not sh -c, reads $, `, \\, " and spaces of
  the script, and `""` plus the whitespace around it (newlines included) collapse.
- Env words (prepare_envs, l. 112-127): `--env NAME=value ` per variable, unquoted (a
  value starting with "[" is wrapped in double quotes); the values reach the executable,
  which is chmod 0777 (l. 406).
- Mounts (prepare_mounts l. 129-188, mountConfigMaps, mountSecrets, mount_empty_dir):
  ConfigMap and Secret files are written below the job directory (Secret values as the
  base64 text interLink's JSON carries) and shipped with transfer_input_files; a
  hostPath is shipped too (HTCondor copies the directory into the sandbox); each is
  bound from the sandbox copy as `./<file name>:<mountPath>` (l. 585-599). An emptyDir
  mount, or a ConfigMap/Secret without data, makes the plugin raise. Projected,
  downwardAPI and PVC volumes are ignored.
- condor_submit's output is parsed as `stdout.split(" ")[-1].split(".")[0]` (l. 463)
  whatever its exit status; /create then answers HTTP **201** with the JobID (l. 655).

Status from the job ad (StatusHandler l. 707-845, condor_q then condor_history): Idle ->
waiting `ContainerCreating`; Running -> running; Completed -> terminated with `ExitCode`
(absent when a signal killed the job: 0); Removed -> terminated `Cancelled` without an
exit code (0: the pod Succeeds); Held -> waiting `JobHeld` with the HoldReason (the pod
stays Pending); anything else -> waiting `Unknown`. /getLogs (l. 848-860) answers 200
with the body `"NOT IMPLEMENTED"` (json.dumps of that string) for every pod.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from .status import vk_create_error

SINGULARITY_OPTIONS_ANNOTATION = "htcondor-job.vk.io/singularity-options"
IMAGE_ROOT_ANNOTATION = "htcondor-job.knoc.io/image-root"
MAX_WALL_TIME_MINS = 60
PLUGIN_COMMIT = "6f5ee3e"
LOGS_BODY = b'"NOT IMPLEMENTED"'  # LogsHandler: json.dumps("NOT IMPLEMENTED"), HTTP 200
CREATE_STATUS_HEAD = 201  # SubmitHandler: success_response(resp, 201)
# HTCondor's JobStatus codes
IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
JOB_AD_ATTRIBUTES = (
    "ClusterId",
    "JobStatus",
    "ExitCode",
    "ExitBySignal",
    "HoldReason",
    "JobStartDate",
    "CompletionDate",
)


class PluginCrash(Exception):
    """The plugin raises inside /create. It runs Flask with debug=True (l. 870), so the
    answer is HTTP 500 with the Werkzeug debugger's HTML page, which interLink's API
    escapes once more for the VK (`'` arrives as `&amp;#39;`)."""

    plugin_status = 500

    def __init__(self, exception: str, function: str, line: int, code: str) -> None:
        super().__init__(exception)
        self.exception, self.function, self.line, self.code = exception, function, line, code

    @property
    def body(self) -> str:
        """An abridged Werkzeug debugger page (title, message, plain traceback)."""
        exc = _markup_escape(self.exception)
        kind = self.exception.split(":", 1)[0]
        trace = _markup_escape(
            "Traceback (most recent call last):\n"
            f'  File "/utils/handles.py", line {self.line}, in {self.function}\n'
            f"    {self.code}\n{self.exception}"
        )
        return (
            "<!doctype html>\n<html lang=en>\n  <head>\n"
            f"    <title>{exc}\n // Werkzeug Debugger</title>\n  </head>\n"
            f'  <body style="background-color: #fff">\n    <div class="debugger">\n<h1>{kind}</h1>\n'
            f'<div class="detail">\n  <p class="errormsg">{exc}\n</p>\n</div>\n'
            f'<textarea cols="50" rows="10" name="code" readonly>{trace}</textarea>\n'
            "    </div>\n  </body>\n</html>\n"
        )


class NotReproduced(Exception):
    """A plugin path the testbed does not reproduce (it refuses the pod instead)."""


def _markup_escape(text: str) -> str:
    """markupsafe.escape, as the Werkzeug debugger uses it."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("'", "&#39;"), ('"', "&#34;")):
        text = text.replace(char, entity)
    return text


@dataclass(frozen=True)
class CondorJob:
    """The part of a job ad the plugin reads."""

    cluster: str
    status: int
    exit_code: int | None = None
    hold_reason: str = ""
    start_date: int | None = None
    completion_date: int | None = None

    @classmethod
    def from_ad(cls, ad: dict[str, Any]) -> CondorJob:
        def number(key: str) -> int | None:
            value = ad.get(key)
            return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(
            cluster=str(ad.get("ClusterId", "")),
            status=number("JobStatus") or 0,
            exit_code=number("ExitCode"),
            hold_reason=str(ad.get("HoldReason") or ""),
            start_date=number("JobStartDate"),
            completion_date=number("CompletionDate"),
        )


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get("containers") or [])


def _annotations(pod: dict[str, Any]) -> dict[str, str]:
    return (pod.get("metadata") or {}).get("annotations") or {}


def _requests(container: dict[str, Any]) -> dict[str, Any]:
    return (container.get("resources") or {}).get("requests") or {}


def request_cpus(pod: dict[str, Any]) -> int:
    """RequestCpus: the sum of int(requests.cpu) (l. 350-361); raises PluginCrash where the plugin does."""
    total = 0
    for container in _containers(pod):
        value = _requests(container).get("cpu")
        if value is None:
            continue
        try:
            total += int(value)
        except ValueError as exc:
            raise PluginCrash(
                f"ValueError: {exc}",
                "produce_htcondor_singularity_script",
                356,
                'requested_cpus += int(c["resources"]["requests"]["cpu"])',
            ) from exc
    return total or 1


_MEMORY = re.compile(r"(\d+)([a-zA-Z]+)")
_MB_PER_UNIT = {"k": 1 / 10**3, "M": 1, "G": 10**3, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024}


def memory_mb(text: str) -> int:
    """One requests.memory value as the plugin reads it (MB; 1 when it does not understand it)."""
    match = _MEMORY.match(str(text))
    if not match or match.group(2) not in _MB_PER_UNIT:
        return 1
    return int(float(match.group(1)) * _MB_PER_UNIT[match.group(2)])


def request_memory_mb(pod: dict[str, Any]) -> int:
    """RequestMemory: the sum over containers of memory_mb(requests.memory); 0 becomes 1."""
    total = sum(memory_mb(_requests(c)["memory"]) for c in _containers(pod) if "memory" in _requests(c))
    return total or 1


def check_reproducible(pod: dict[str, Any]) -> None:
    """Raises NotReproduced for the plugin's "host" mode (l. 544: the FIRST container's image)."""
    containers = _containers(pod)
    if containers and "host" in str(containers[0].get("image") or ""):
        raise NotReproduced(
            f'image {containers[0].get("image")!r} contains "host": the HTCondor plugin would switch to its '
            "host-script mode (produce_htcondor_host_script), which the testbed does not reproduce"
        )


def singularity_image(pod: dict[str, Any], container: dict[str, Any]) -> str:
    """The image word (l. 564-578): an absolute path gets the image-root annotation in
    front, or becomes "" without it (so the command's first word is taken as the image);
    /cvmfs and docker:// stay as they are; anything else gets docker:// in front."""
    image = str(container.get("image") or "")
    if image.startswith("/") and not image.startswith("/cvmfs"):
        root = _annotations(pod).get(IMAGE_ROOT_ANNOTATION)
        return root + image if root else ""
    if image.startswith("/cvmfs") or image.startswith("docker://"):
        return image
    return "docker://" + image


def env_words(pairs: list[tuple[str, str]]) -> str:
    """prepare_envs (l. 112-127): ONE word, `--env NAME=value ` per variable, unquoted. A
    resolved empty value is omitted from interLink's JSON and gives `--env NAME= `, as "" does."""
    text = ""
    for name, value in pairs:
        if value.startswith("["):
            text += f'--env {name}="{value}" '
        else:
            text += f"--env {name}={value} "
    return text


@dataclass(frozen=True)
class VolumeFile:
    """A ConfigMap/Secret file the plugin writes (path relative to the job directory)."""

    path: str
    content: str
    mode: int


def _crash_missing_data(function: str, line: int, code: str) -> PluginCrash:
    return PluginCrash("KeyError: 'data'", function, line, code)


def plugin_mounts(
    pod: dict[str, Any], container: dict[str, Any], job_dir: str, volume_data: dict[str, dict[str, str]]
) -> tuple[list[str], list[VolumeFile]]:
    """prepare_mounts (l. 129-188) for one container: its mount data, "source:destination"
    items in order (duplicates included), and the files written; raises PluginCrash.

    `volume_data`: the decoded data of each ConfigMap/Secret volume, by volume name."""
    mounts = container.get("volumeMounts") or []
    volumes = (pod.get("spec") or {}).get("volumes") or []
    kinds = {v["name"]: v for v in volumes}
    # what interLink's API sends in "container" (api/func.go retrieveData): one ConfigMap
    # or Secret per such mount of this container
    config_maps = [volume_data.get(m["name"], {}) for m in mounts if "configMap" in kinds.get(m["name"], {})]
    secrets = [
        (kinds[m["name"]]["secret"].get("secretName", ""), volume_data.get(m["name"], {}))
        for m in mounts
        if "secret" in kinds.get(m["name"], {})
    ]
    data: list[str] = []
    files: list[VolumeFile] = []

    def config_map_paths() -> list[str]:  # mountConfigMaps, l. 191-247: every ConfigMap in every configMap volume
        paths = []
        for spec in mounts:
            for vol in volumes:
                if vol["name"] != spec["name"] or "configMap" not in vol:
                    continue
                for cfg in config_maps:
                    if not cfg:
                        raise _crash_missing_data("mountConfigMaps", 222, 'for key in cfgMap["data"].keys():')
                    directory = f"{job_dir}/configMaps/{vol['name']}"
                    paths += [f"{directory}/{key}:{spec['mountPath']}/{key}" for key in cfg]
                    mode = int(vol["configMap"].get("defaultMode", 0o644))
                    files.extend(VolumeFile(f"configMaps/{vol['name']}/{k}", v, mode) for k, v in cfg.items())
        return paths

    def secret_paths() -> list[str]:  # mountSecrets, l. 250-290: only the volume's own Secret
        paths = []
        for spec in mounts:
            for vol in volumes:
                if vol["name"] != spec["name"] or "secret" not in vol:
                    continue
                for name, secret in secrets:
                    if name != vol["secret"].get("secretName", ""):
                        continue
                    if not secret:
                        raise _crash_missing_data("mountSecrets", 275, 'for key in secret["data"]:')
                    directory = f"{job_dir}/secrets/{vol['name']}"
                    paths += [f"{directory}/{key}:{spec['mountPath']}/{key}" for key in secret]
                    mode = int(vol["secret"].get("defaultMode", 0o644))
                    files.extend(
                        VolumeFile(f"secrets/{vol['name']}/{k}", base64.b64encode(v.encode()).decode(), mode)
                        for k, v in secret.items()
                    )
        return paths

    for mount in mounts:
        for vol in volumes:
            if vol["name"] != mount["name"]:
                continue
            if "configMap" in vol:
                data += config_map_paths()
            elif "secret" in vol:
                data += secret_paths()
            elif "emptyDir" in vol:
                raise PluginCrash(
                    "AttributeError: 'dict' object has no attribute 'name'",
                    "mount_empty_dir",
                    302,
                    'if vol.name == mount_spec["name"]:',
                )
            elif "hostPath" in vol:
                data.append(f"{vol['hostPath']['path']}:{mount['mountPath']}")
    return data, files


def mount_field(data: list[str]) -> str:
    """mounts[-1] in SubmitHandler: the items joined by commas, with a trailing comma (the
    empty item prepare_mounts appends), or "" when there are none."""
    return ",".join([*data, ""]) if data else ""


def input_files(data: list[str]) -> list[str]:
    """transfer_input_files (l. 581-584): every source except /cvmfs ones, and the empty last item."""
    return [item.split(":")[0] for item in mount_field(data).split(",") if "/cvmfs" not in item]


def bind_words(data: list[str]) -> list[str]:
    """`--bind` and the sandbox copies (l. 585-599), or one empty word without mounts."""
    items = mount_field(data).split(",")[:-1]
    if not items:
        return [""]
    text = ""
    for item in items:
        prefix = "/" if "/cvmfs" in item else "./"
        text += prefix + item.split(":")[0].split("/")[-1] + ":" + item.split(":")[1] + ","
    return ["--bind", text]


def singularity_words(pod: dict[str, Any], container: dict[str, Any], envs: str, data: list[str]) -> list[str]:
    """The word list of one container (l. 549-622), before quoting and joining."""
    options = _annotations(pod).get(SINGULARITY_OPTIONS_ANNOTATION, "")
    image = singularity_image(pod, container)
    command, args = list(container.get("command") or []), list(container.get("args") or [])
    if command or args:
        return ["singularity", "exec", options, envs, *bind_words(data), image, *command, *args]
    return ["singularity", "exec", envs, *bind_words(data), image]  # no options word here (l. 622)


def dash_c_quoted(words: list[str]) -> list[str]:
    """l. 371-374, in place and in order: a word after a word containing "-c" (possibly
    already quoted) gets double quotes around it."""
    quoted = list(words)
    for i in range(1, len(quoted)):
        if "-c" in quoted[i - 1]:
            quoted[i] = '"' + quoted[i] + '"'
    return quoted


_EMPTY_QUOTES = re.compile(r'\s*""\s*')
_SPACES = re.compile(r" {2,}")


def cleaned(text: str) -> str:
    """l. 378-380."""
    return _SPACES.sub(" ", _EMPTY_QUOTES.sub(" ", text)).strip()


def command_line(words: list[str]) -> str:
    return cleaned(" ".join(dash_c_quoted(words)))


def render_executable(words: list[str], command_prefix: str = "") -> str:
    """The executable, byte for byte (l. 365-382; no newline at the end)."""
    return "#!/bin/bash\n" + "\n" + "\n".join([cleaned("\n" + command_prefix), command_line(words)])


def render_submit(pod: dict[str, Any], job_dir: str, executable: str, files: list[str], cpus: int, memory: int) -> str:
    """The submit description: the plugin's text (l. 384-402), with the executable's
    absolute path and InitialDir = the job directory (the plugin's relative paths are
    relative to its working directory), under a comment naming the pod."""
    meta = pod.get("metadata") or {}
    header = (
        f"# pod {meta.get('namespace', '')}/{meta.get('name', '')} uid {meta.get('uid', '')}: "
        f"interlink-htcondor-plugin {PLUGIN_COMMIT} produce_htcondor_singularity_script\n"
    )
    return header + (
        f"\nExecutable = {executable}\nInitialDir = {job_dir}\n\n"
        "Log        = log/mm_mul.$(Cluster).$(Process).log\n"
        "Output     = out/mm_mul.out.$(Cluster).$(Process)\n"
        "Error      = err/mm_mul.err.$(Cluster).$(Process)\n\n"
        f"transfer_input_files = {','.join(files)}\n"
        "should_transfer_files = YES\n"
        f"RequestCpus = {cpus}\n"
        f"RequestMemory = {memory}\n\n"
        "when_to_transfer_output = ON_EXIT_OR_EVICT\n"
        f"+MaxWallTimeMins = {MAX_WALL_TIME_MINS}\n\n"
        '+WMAgent_AgentName = "whatever"\n\n'
        "Queue 1\n"
    )


def plugin_job_id(stdout: str) -> str:
    """htcondor_batch_submit (l. 456-465): the last space-separated word of condor_submit's
    standard output, up to its first dot, whatever condor_submit's exit status; "" or
    nonsense when the submission failed."""
    return stdout.split(" ")[-1].split(".")[0]


def create_body(pod: dict[str, Any], job_id: str) -> str:
    """SubmitHandler's answer (l. 645-655) as Flask's jsonify writes it in debug mode
    (indent 2, sorted keys, a final newline)."""
    meta = pod["metadata"]
    answer = {
        "PodUID": meta["uid"],
        "PodJID": str(job_id),
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace", "default"), "uid": meta["uid"]},
    }
    return json.dumps(answer, indent=2, sort_keys=True) + "\n"


def head_create_error(pod: dict[str, Any], job_id: str, session: int | None = None) -> str:
    """The VK's ProviderFailed message for the plugin's 201 (execute.go createRequest:
    `resp.StatusCode != http.StatusOK`), though the job was submitted."""
    return vk_create_error(create_body(pod, job_id), CREATE_STATUS_HEAD, session)


def _timestamp(epoch: int | None, now: str) -> str:
    if not epoch:
        return now
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_statuses(names: list[str], job: CondorJob | None, now: str) -> list[dict[str, Any]] | None:
    """The plugin's /status answer for one pod (every container gets the job's state);
    None when the job is in neither condor_q nor condor_history (the VK keeps the status)."""
    if job is None:
        return None
    ready = False
    state: dict[str, Any]
    if job.status == IDLE:
        state = {"waiting": {"reason": "ContainerCreating"}}
    elif job.status == RUNNING:
        state = {"running": {"startedAt": _timestamp(job.start_date, now)}}
        ready = True
    elif job.status == COMPLETED:
        state = {
            "terminated": {
                "startedAt": _timestamp(job.start_date, now),
                "finishedAt": _timestamp(job.completion_date, now),
                "exitCode": job.exit_code or 0,
                "reason": "Completed",
            }
        }
    elif job.status == REMOVED:
        state = {
            "terminated": {
                "startedAt": _timestamp(job.start_date, now),
                "finishedAt": _timestamp(job.completion_date, now),
                "exitCode": 0,  # the plugin sends none; Go reads the missing field as 0
                "reason": "Cancelled",
            }
        }
    elif job.status == HELD:
        state = {"waiting": {"reason": "JobHeld", "message": job.hold_reason or "Job held by HTCondor"}}
    else:
        state = {"waiting": {"reason": "Unknown"}}
    return [
        {
            "name": name,
            "state": {key: dict(value) for key, value in state.items()},
            "lastState": {},
            "ready": ready,
            "restartCount": 0,
            "image": "",
            "imageID": "",
        }
        for name in names
    ]
