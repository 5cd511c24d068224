"""An in-memory Kubernetes API with a virtual node, behind httpx.MockTransport, for unit
tests that run the whole executor in-process with real Snakemake: faults that the
testbed cannot produce on demand (a failing disk, a create whose every answer is lost)
are injected here, and every request is recorded.

It implements what the executor uses, no more: access reviews, dry-run and real pod
creates, LIST and WATCH (events after a resourceVersion), GET, DELETE and
deletecollection of pods, logs, and Secret create/delete. The "node" runs a job by
writing the outputs the test names for its rule and wildcards, then marks the pod
Succeeded (or Failed with the exit code the test chooses).
"""

from __future__ import annotations

import functools
import json
import queue
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from snakemake_executor_plugin_interlink.pod import (
    RULE_ANNOTATION,
    WILDCARDS_ANNOTATION,
)

Outputs = Callable[[str, dict[str, str]], list[str]]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, message: str) -> httpx.Response:
    body = {"kind": "Status", "code": code, "message": message}
    return httpx.Response(code, json=body)


@dataclass
class Call:
    method: str
    verb: str  # create, list, watch, get, delete, deletecollection, log, review ...
    name: str = ""
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)  # of a create


def selects(params: dict[str, str], pod: dict[str, Any]) -> bool:
    """Whether a request's labelSelector and fieldSelector (the forms the executor
    sends: `k=v`, `k!=v`, `k in (a,b)`, `k`; `metadata.name!=n`) choose the pod."""
    labels = pod["metadata"].get("labels") or {}
    for clause in re.split(r",(?![^(]*\))", params.get("labelSelector", "")):
        clause = clause.strip()
        if not clause:
            continue
        if found := re.fullmatch(r"(\S+) in \((.*)\)", clause):
            ok = labels.get(found[1]) in found[2].split(",")
        elif "!=" in clause:
            key, value = clause.split("!=", 1)
            ok = labels.get(key) != value
        elif "=" in clause:
            key, value = clause.replace("==", "=").split("=", 1)
            ok = labels.get(key) == value
        else:
            ok = clause in labels
        if not ok:
            return False
    for clause in filter(None, params.get("fieldSelector", "").split(",")):
        if not clause.startswith("metadata.name!="):
            raise AssertionError(f"the fake API does not select by {clause}")
        if pod["metadata"]["name"] == clause.removeprefix("metadata.name!="):
            return False
    return True


def _targets(pod: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """The jobs a pod runs: a single job's from its annotations; a group job's from
    its Snakemake's --target-jobs (rule:name=value,...)."""
    annotations = pod["metadata"]["annotations"]
    if RULE_ANNOTATION in annotations:
        return [
            (
                annotations[RULE_ANNOTATION],
                json.loads(annotations[WILDCARDS_ANNOTATION]),
            )
        ]
    script = pod["spec"]["containers"][0]["command"][-1]
    command = shlex.split(script)[-1]  # what the end reporter runs
    words = shlex.split(command)
    start = words.index("--target-jobs") + 1
    targets = []
    for word in words[start:]:
        if word.startswith("--"):
            break
        rule, _, spec = word.partition(":")
        targets.append((rule, dict(p.split("=", 1) for p in spec.split(",") if p)))
    return targets


class _Watch(httpx.SyncByteStream):
    """Events after a version, as JSON lines, until the timeout or the cluster's
    end."""

    def __init__(self, cluster: FakeCluster, after: int, timeout: float):
        self.cluster, self.after, self.deadline = (
            cluster,
            after,
            time.monotonic() + timeout,
        )

    def __iter__(self) -> Iterator[bytes]:
        while time.monotonic() < self.deadline and not self.cluster.closed.is_set():
            events = self.cluster.events_after(self.after, wait=0.05)
            for version, kind, pod in events:
                self.after = version
                yield (json.dumps({"type": kind, "object": pod}) + "\n").encode()


class FakeCluster:
    def __init__(self, workdir: Path, outputs: Outputs, run_seconds: float = 0.05):
        self.workdir = workdir
        self.outputs = outputs
        self.run_seconds = run_seconds
        self.pods: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.version = 1
        self.log: list[tuple[int, str, dict[str, Any]]] = []  # (version, kind, pod)
        self.changed = threading.Condition()
        self.closed = threading.Event()
        self.exit_codes: dict[str, int] = {}  # by rule; default 0
        # faults: each takes the request's Call and returns a response to send instead
        self.faults: list[Callable[[Call], httpx.Response | None]] = []
        self._jobs: queue.Queue[str] = queue.Queue()
        self._node = threading.Thread(target=self._run_node, daemon=True)
        self._node.start()

    # -- the transport ----------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def close(self) -> None:
        self.closed.set()
        self._jobs.put("")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        call = self._classify(request)
        self.calls.append(call)
        for fault in self.faults:
            answer = fault(call)
            if answer is not None:
                return answer
        return self._answer(request, call)

    def verbs(self) -> list[str]:
        return [c.verb for c in self.calls]

    @staticmethod
    def _classify(request: httpx.Request) -> Call:
        params = dict(request.url.params)
        parts = request.url.path.strip("/").split("/")
        if "selfsubjectaccessreviews" in parts:
            return Call(request.method, "review", params=params)
        kind = parts[4] if len(parts) > 4 else ""
        name = parts[5] if len(parts) > 5 else ""
        if kind == "secrets":
            verb = {"POST": "create-secret", "DELETE": "delete-secret"}
            return Call(request.method, verb[request.method], name, params)
        if request.method == "POST":
            verb = "dry-run" if params.get("dryRun") else "create"
            if verb == "create":
                body = json.loads(request.content)
                return Call(
                    request.method, verb, body["metadata"]["name"], params, body
                )
        elif request.method == "DELETE":
            verb = "delete" if name else "deletecollection"
        elif name and len(parts) > 6 and parts[6] == "log":
            verb = "log"
        elif name:
            verb = "get"
        else:
            verb = "watch" if params.get("watch") else "list"
        return Call(request.method, verb, name, params)

    def _answer(self, request: httpx.Request, call: Call) -> httpx.Response:
        if call.verb == "review":
            return httpx.Response(201, json={"status": {"allowed": True}})
        if call.verb in ("dry-run", "create-secret"):
            return httpx.Response(201, json=json.loads(request.content))
        if call.verb == "delete-secret":
            return httpx.Response(200, json={"kind": "Status"})
        if call.verb == "create":
            return self.create(call.body)
        if call.verb == "list":
            with self.changed:
                items = [p for p in self.pods.values() if selects(call.params, p)]
                return httpx.Response(
                    200,
                    json={
                        "metadata": {"resourceVersion": str(self.version)},
                        "items": items,
                    },
                )
        if call.verb == "watch":
            after = int(call.params.get("resourceVersion") or 0)
            timeout = float(call.params.get("timeoutSeconds") or 5)
            return httpx.Response(200, stream=_Watch(self, after, min(timeout, 5)))
        if call.verb == "get":
            pod = self.pods.get(call.name)
            return httpx.Response(200, json=pod) if pod else _status(404, "not found")
        if call.verb == "log":
            if call.name not in self.pods:
                return _status(404, "not found")
            return httpx.Response(
                200,
                text=f"log of {call.name}\n",
                headers={"content-type": "text/plain"},
            )
        if call.verb == "delete":
            return self._delete([call.name])
        if call.verb == "deletecollection":
            with self.changed:
                chosen = [n for n, p in self.pods.items() if selects(call.params, p)]
            return self._delete(chosen)
        raise AssertionError(f"the fake API does not answer {call}")

    # -- pods --------------------------------------------------------------------

    def _emit(self, kind: str, pod: dict[str, Any]) -> None:
        """Under self.changed: a new version of the pod, recorded as an event."""
        self.version += 1
        pod["metadata"]["resourceVersion"] = str(self.version)
        self.log.append((self.version, kind, json.loads(json.dumps(pod))))
        self.changed.notify_all()

    def events_after(
        self, version: int, wait: float
    ) -> list[tuple[int, str, dict[str, Any]]]:
        with self.changed:
            if self.version <= version:
                self.changed.wait(wait)
            return [e for e in self.log if e[0] > version]

    def create(self, manifest: dict[str, Any]) -> httpx.Response:
        """Create the pod as the API server would (faults call it to create a pod
        whose answer they then lose)."""
        manifest = json.loads(json.dumps(manifest))
        name = manifest["metadata"]["name"]
        with self.changed:
            if name in self.pods:
                return _status(409, f'pods "{name}" already exists')
            manifest["metadata"]["creationTimestamp"] = _now()
            manifest["metadata"]["uid"] = f"uid-{name}"
            manifest["status"] = {"phase": "Pending"}
            self.pods[name] = manifest
            self._emit("ADDED", manifest)
            created = json.loads(json.dumps(manifest))
        self._jobs.put(name)
        return httpx.Response(201, json=created)

    def _delete(self, names: list[str]) -> httpx.Response:
        with self.changed:
            found = [n for n in names if n in self.pods]
            if not found and len(names) == 1:
                return _status(404, "not found")
            for name in found:
                pod = self.pods.pop(name)
                pod["metadata"]["deletionTimestamp"] = _now()
                self._emit("DELETED", pod)
        return httpx.Response(200, json={"kind": "Status", "status": "Success"})

    def run_job(self, pod: dict[str, Any]) -> int:
        """The job of a running pod (a copy): its exit code. Here: the test's exit
        code for its rule (a group: the highest of its rules') and, when 0, the
        outputs the test names."""
        targets = _targets(pod)
        code = max(self.exit_codes.get(rule, 0) for rule, _ in targets)
        if code == 0:
            for rule, wildcards in targets:
                for output in self.outputs(rule, wildcards):
                    path = self.workdir / output
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
        return code

    def install(self, monkeypatch: Any) -> None:
        """Make the executor talk to this cluster (a pytest MonkeyPatch)."""
        from snakemake_executor_plugin_interlink import executor as executor_module
        from snakemake_executor_plugin_interlink.kube import ClusterAccess, KubeClient

        access = ClusterAccess(server="https://k8s.test", namespace="ns", source="fake")
        monkeypatch.setattr(executor_module, "load_access", lambda *a: access)
        monkeypatch.setattr(
            executor_module,
            "KubeClient",
            functools.partial(
                KubeClient, transport=self.transport(), retry_seconds=1.0
            ),
        )

    def _run_node(self) -> None:
        """Bind, run and finish each created pod, one after the other."""
        while not self.closed.is_set():
            name = self._jobs.get()
            if not name:
                return
            time.sleep(self.run_seconds)
            with self.changed:
                pod = self.pods.get(name)
                if pod is None:
                    continue
                pod["spec"]["nodeName"] = "vk"
                pod["status"] = {"phase": "Running", "startTime": _now()}
                self._emit("MODIFIED", pod)
                running = json.loads(json.dumps(pod))
            code = self.run_job(running)
            with self.changed:
                pod = self.pods.get(name)
                if pod is None:
                    continue
                terminated = {"exitCode": code, "finishedAt": _now()}
                terminated["reason"] = "Completed" if code == 0 else "Error"
                pod["status"] = {
                    "phase": "Succeeded" if code == 0 else "Failed",
                    "containerStatuses": [
                        {"name": "snakemake", "state": {"terminated": terminated}}
                    ],
                }
                self._emit("MODIFIED", pod)
