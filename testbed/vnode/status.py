"""Pod status the way interLink writes it (pure: no I/O, the clock is passed in).

Two layers, as in interLink itself:
- `plugin_container_statuses` is what the Slurm plugin's /status answers for one job:
  per container waiting / running / terminated(exitCode), built from the squeue state and
  the run-<name>.status files (timeouts and OOM get the plugin's own reason and message);
- `vk_merge` is how the virtual kubelet folds that answer into the pod status: it
  overwrites every terminated reason with "Completed" or "Error: <code>", and sets phase,
  pod reason and conditions (Running -> [Ready=True] only; Succeeded appends Ready=False).
Plus the statuses the VK writes by itself: the initial Pending (containers waiting `Remote
pod submitted` come with the next update), ProviderFailed, and the ConfigMap/Secret wait
("Initializing", then "CFGMaps/Secrets not found"). When these are written is statusloop.py's.
"""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

REMOTE_SUBMITTED = {
    "reason": "Remote pod submitted",
    "message": "The pod has been submitted to the remote plugin for creation",
}
TIMEOUT_REASON = "SlurmJobTimeout"
TIMEOUT_MESSAGE = "SLURM job reached its time limit and was terminated"
OOM_REASON = "OOMKilled"
OOM_MESSAGE = "SLURM job was killed due to out-of-memory condition"
CFG_NOT_FOUND = "CFGMaps/Secrets not found"
CFG_TIMEOUT_ERROR = "unable to retrieve ConfigMaps or Secrets after 5m. Check logs"
TERMINAL_PHASES = ("Succeeded", "Failed")

# The plugin matches this on squeue's compact state; the first alternative that matches at
# the leftmost position wins, so e.g. "NF" (node fail) reads as "F", "CA" matches nothing,
# and "CF" (configuring: nodes being set up, the job has not started) reads as "F": the
# plugin answers terminated with squeue's exit code (0), so the pod Succeeds before it ran.
_STATE = re.compile(r"CD|CG|F|OOM|PD|PR|R|ST|S|TO")
_WAITING, _RUNNING = ("PD", "S"), ("R", "CG")


def plugin_state(compact: str) -> str:
    """The plugin's reading of a squeue compact state ("" = none of its known codes)."""
    match = _STATE.search(compact or "")
    return match.group(0) if match else ""


_EXIT_CODE = re.compile(r"([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])\s")


def squeue_exit_code(field: str) -> int | None:
    """The plugin's reading of squeue's exit_code column: the first 0-255 number followed by
    blank. Slurm 22.05 prints the raw wait status there, so exit 3 (768) reads as 68; the
    plugin only falls back to it when a container's .status file is missing."""
    match = _EXIT_CODE.search(field + " ")
    return int(match.group(1)) if match else None


def job_kind(compact: str) -> str:
    """waiting, running or terminated, as the plugin sees a squeue state."""
    state = plugin_state(compact)
    if state in _WAITING:
        return "waiting"
    if state in _RUNNING:
        return "running"
    return "terminated"


@dataclass
class JobView:
    """What the plugin knows about a job when the VK asks for its status."""

    state: str | None  # squeue compact state; None when squeue does not know the job
    exit_code: int | None = None  # squeue's exit_code as the plugin reads it (squeue_exit_code)
    status_files: dict[str, str | None] = field(default_factory=dict)  # container -> file text
    started_at: str | None = None  # first time the plugin saw it running
    finished_at: str | None = None  # first time the plugin saw it finished


def _container(name: str, state: dict[str, Any], ready: bool) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "lastState": {},
        "ready": ready,
        "restartCount": 0,
        "image": "",
        "imageID": "",
    }


def _exit_code(view: JobView, name: str) -> int | None:
    """The status file's code, else squeue's; None where the plugin errors (and skips)."""
    text = view.status_files.get(name)
    if text is None:
        return view.exit_code
    try:
        return int(text.strip())
    except ValueError:
        return None


def plugin_container_statuses(names: list[str], view: JobView) -> list[dict[str, Any]] | None:
    """The plugin's per-container answer; None when it answers with an error (VK keeps status)."""
    if view.state is None:
        # squeue fails for an unknown job: the plugin reads the status files, and errors if any is missing
        codes = [_exit_code(JobView(None, None, view.status_files), n) for n in names]
        if any(code is None for code in codes):
            return None
        return [
            _container(n, {"terminated": {"exitCode": c, "startedAt": None, "finishedAt": None}}, False)
            for n, c in zip(names, codes, strict=True)
        ]
    state = plugin_state(view.state)
    if state in _WAITING:
        return [_container(n, {"waiting": {}}, False) for n in names]
    if state in _RUNNING:
        return [_container(n, {"running": {"startedAt": view.started_at}}, True) for n in names]
    statuses = []
    for name in names:
        code = _exit_code(view, name)
        if code is None:
            continue  # the plugin logs the error and leaves this container out
        terminated: dict[str, Any] = {"exitCode": code, "startedAt": view.started_at, "finishedAt": view.finished_at}
        if state == "TO":
            terminated.update(reason=TIMEOUT_REASON, message=TIMEOUT_MESSAGE)
        elif state == "OOM":
            terminated.update(reason=OOM_REASON, message=OOM_MESSAGE)
        statuses.append(_container(name, {"terminated": terminated}, False))
    return statuses


def plugin_unknown_pod_statuses(names: list[str]) -> list[dict[str, Any]]:
    """The Slurm plugin's answer for a pod it has no JobID for (its create has not finished):
    every container with an EMPTY state (Status.go, the `else` of `checkIfJidExists`). The VK
    puts them in place of its own, so the pod shows containers neither waiting nor running
    nor terminated, which the virtual-kubelet library counts as running (`running()`)."""
    return [_container(name, {}, False) for name in names]


def vk_merge(current: dict[str, Any], remote: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod status after the VK applies the plugin's answer to the current status."""
    status = copy.deepcopy(current)
    statuses: list[dict[str, Any]] = status.setdefault("containerStatuses", [])
    terminated = 0
    failed_reason = ""
    running = False
    for remote_status in remote:
        entry = copy.deepcopy(remote_status)
        for i, existing in enumerate(statuses):
            if existing.get("name") == entry["name"]:
                statuses[i] = entry
                break
        else:
            statuses.append(entry)
        state = entry.get("state") or {}
        if state.get("terminated") is not None:
            terminated += 1
            code = state["terminated"].get("exitCode", 0)
            state["terminated"]["reason"] = "Completed"
            if code != 0:
                failed_reason = f"Error: {code}"
                state["terminated"]["reason"] = failed_reason
        elif state.get("running") is not None:
            running = True
            entry["ready"] = True
    if terminated == len(remote):
        if failed_reason:
            status["phase"] = "Failed"
            status["reason"] = failed_reason
            for entry in statuses:
                if (entry.get("state") or {}).get("terminated") is not None:
                    entry["state"]["terminated"]["reason"] = failed_reason
        else:
            status.setdefault("conditions", []).append({"type": "Ready", "status": "False"})
            status["phase"] = "Succeeded"
            status["reason"] = "Completed"
    elif running:
        status["phase"] = "Running"
        status["conditions"] = [{"type": "Ready", "status": "True"}]
        status["reason"] = "Running"
    return status


def _conditions(initialized: str, ready: str, scheduled: str) -> list[dict[str, str]]:
    return [
        {"type": "Initialized", "status": initialized},
        {"type": "Ready", "status": ready},
        {"type": "PodScheduled", "status": scheduled},
    ]


def _specs(pod: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get(key) or [])


def initial_status(pod: dict[str, Any], now: str, ip: str) -> dict[str, Any]:
    """What the VK writes as soon as it accepts a pod, before the plugin is called: Pending,
    and no containerStatuses (CreatePod's setPodInitialStatus notifies before it appends them)."""
    initialized = "False" if _specs(pod, "initContainers") else "True"
    return {
        "phase": "Pending",
        "hostIP": ip,
        "podIP": ip,
        "startTime": now,
        "conditions": _conditions(initialized, "False", "True"),
    }


def created_status(current: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any]:
    """The VK's copy of the pod after CreatePod: every container waiting `Remote pod submitted`.

    They reach the API server with the VK's next update of the pod (the JobID annotation
    after a successful create, the "Initializing" phase while a volume is missing)."""
    status = copy.deepcopy(current)
    if not status.get("containerStatuses"):
        status["containerStatuses"] = [
            {**_container(c["name"], {"waiting": dict(REMOTE_SUBMITTED)}, False), "image": c.get("image", "")}
            for c in _specs(pod, "containers")
        ]
    return status


def provider_failed_status(pod: dict[str, Any], message: str, now: str, ip: str) -> dict[str, Any]:
    """The VK's status when the remote create fails: every container exits 1 with the error."""

    def failed(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                **_container(
                    c["name"],
                    {
                        "terminated": {
                            "exitCode": 1,
                            "reason": "ProviderFailed",
                            "message": message,
                            "startedAt": None,
                            "finishedAt": None,
                        }
                    },
                    False,
                ),
                "image": c.get("image", ""),
            }
            for c in containers
        ]

    status: dict[str, Any] = {
        "phase": "Failed",
        "hostIP": ip,
        "podIP": ip,
        "startTime": now,
        "conditions": _conditions("False", "False", "False"),
        "reason": "ProviderFailed",
        "message": message,
        "containerStatuses": failed(_specs(pod, "containers")),
    }
    if _specs(pod, "initContainers"):
        status["initContainerStatuses"] = failed(_specs(pod, "initContainers"))
    return status


def provider_error_status(current: dict[str, Any], message: str, restart_policy: str | None) -> dict[str, Any]:
    """The virtual-kubelet library's status when the provider's CreatePod itself returns an
    error (superfly/virtual-kubelet node/pod.go `handleProviderError`): the pod's status as the
    API server has it, with phase Failed (restartPolicy Never; otherwise Pending), reason
    ProviderFailed and the error as message; no container statuses are added. (A failed
    remote create is `provider_failed_status`, interLink's own.)"""
    status = copy.deepcopy(current)
    status["phase"] = "Failed" if restart_policy == "Never" else "Pending"
    status["reason"] = "ProviderFailed"
    status["message"] = message
    return status


def with_phase(current: dict[str, Any], phase: str) -> dict[str, Any]:
    """The status with only the phase changed (the VK's "Initializing" while volumes wait)."""
    status = copy.deepcopy(current)
    status["phase"] = phase
    return status


def cfg_not_found_status(current: dict[str, Any]) -> dict[str, Any]:
    """After 5 minutes without a ConfigMap/Secret volume source (then ProviderFailed follows)."""
    status = copy.deepcopy(current)
    status["phase"] = "Failed"
    status["reason"] = CFG_NOT_FOUND
    for entry in status.get("containerStatuses") or []:
        entry["ready"] = False
    return status


# Fields the API server fills in itself; a status written by the VK never removes them.
SERVER_FIELDS = ("qosClass", "podIPs")


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning status `old` into `new` (lists are replaced whole)."""
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new and key not in SERVER_FIELDS})
    return patch


def _go_html_escape(text: str) -> str:
    """Go's html.EscapeString (the interLink API escapes error bodies with it)."""
    for char, entity in (("&", "&amp;"), ("'", "&#39;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;")):
        text = text.replace(char, entity)
    return text


def vk_create_error(plugin_error: str, plugin_status: int = 504, session: int | None = None) -> str:
    """The message the VK puts on a ProviderFailed pod when the plugin's /create answered
    `plugin_status` (anything but 200) with the body `plugin_error`.

    interLink's API (pkg/interlink/api/handler.go ReqWithError, f6321757) first writes the
    plugin's own status code to the VK (later WriteHeader calls are ignored by Go), then the
    body "HTTP InterLink session <session>:  call exit status: 500. Body: <plugin body>",
    HTML-escaped; the VK's createRequest (execute.go) refuses any status but 200 with
    "error creating pod (HTTP <code>): <body>", and RemoteExecution wraps that once more.
    `session` is the VK's random "CreatePod#<n>" number (0-99999). This reproduces the
    shape, long and with the text twice; Go's %#v quoting is approximated with JSON's.
    """
    number = random.randrange(100000) if session is None else session
    inner = (
        f"error creating pod (HTTP {plugin_status}): HTTP InterLink session CreatePod#{number}:  "
        "call exit status: 500. Body: " + _go_html_escape(plugin_error)
    )
    detail = "&errors.errorString{s:" + json.dumps(inner) + "}"
    return f"error doing createRequest() in RemoteExecution() return value  error detail {detail} error: {inner}"
