"""Fakes to drive the agent without a cluster or a batch system: a fake clock, an API server
that records what the agent writes, and a batch system whose jobs the test sets."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from vnode import condor
from vnode.agent import Agent, AgentConfig
from vnode.batch import BatchUnavailable, JobInfo, SubmitError
from vnode.condor import CondorJob
from vnode.kube import ApiError


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeKube:
    """Records status patches (time, pod name, body), events and deletes; GET answers from
    `objects` (path -> object), else 404."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.patches: list[tuple[float, str, dict[str, Any]]] = []
        self.events: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.objects: dict[str, dict[str, Any]] = {}

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((self.clock.now, path.split("/")[-2], body))
        return {}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        if path in self.objects:
            return self.objects[path]
        raise ApiError(404, f"{path} not found", "NotFound")

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/events"):
            self.events.append(body)
        return {}

    def delete(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        self.deleted.append(path.rsplit("/", 1)[-1])
        return {}


class FakeBackend:
    """Jobs whose state the test sets; every query costs 20 ms of the fake clock."""

    name = "slurm"

    def __init__(self, clock: Clock, flavour: str = "slurm") -> None:
        self.clock = clock
        self.flavour = flavour
        self.jobs: dict[str, Any] = {}
        self.dirs: dict[str, Path] = {}
        self.queries: list[list[str]] = []
        self.cancelled: list[str] = []
        self.submit_error: str | None = None  # what sbatch says on stderr
        self.down = False  # squeue / scancel fail
        self.resources: dict[str, str] | None = None  # what the ping reports free
        self.refusal: str | None = None  # the VK refuses every create answer with this (HTCondor plugin HEAD)

    def write_job(self, root: Path, pod: dict[str, Any], *rest: Any) -> tuple[Path, int | None]:
        directory = root / f"{pod['metadata']['namespace']}-{pod['metadata']['uid']}"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / "job.slurm", None

    def submit(self, job_dir: Path, script: Path, time_limit: int | None) -> str:
        if self.submit_error is not None:
            raise SubmitError(self.submit_error)
        job_id = str(100 + len(self.dirs))
        self.dirs[job_id] = job_dir
        self.jobs[job_id] = JobInfo("PD", "0") if self.flavour == "slurm" else CondorJob(job_id, condor.IDLE)
        return job_id

    def create_refusal(self, pod: dict[str, Any], job_id: str) -> str | None:
        return self.refusal

    def finish(self, job_id: str, code: int = 0) -> None:
        if self.flavour == "slurm":
            (self.dirs[job_id] / "run-main.status").write_text(f"{code}\n")
            self.jobs[job_id] = JobInfo("CD" if code == 0 else "F", str(code << 8))
        else:
            self.jobs[job_id] = CondorJob(job_id, condor.COMPLETED, exit_code=code)

    def query(self, job_ids: list[str]) -> dict[str, Any]:
        if self.down:
            raise BatchUnavailable("squeue: error: Unable to contact slurm controller")
        self.queries.append(list(job_ids))
        self.clock.now += 0.02
        return {j: self.jobs[j] for j in job_ids if j in self.jobs}

    def cancel(self, job_id: str) -> None:
        if self.down:
            raise BatchUnavailable("scancel: error: Unable to contact slurm controller")
        self.cancelled.append(job_id)

    def adopt(self, job_id: str, job_dir: Path) -> None:
        self.dirs.setdefault(job_id, job_dir)

    def ping(self) -> tuple[bool, str, dict[str, str] | None]:
        if self.down:
            return False, "sinfo stderr: Unable to contact slurm controller", None
        return True, "", self.resources


def make_pod(i: int, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"pod-{i}", "namespace": "ns", "uid": f"uid-{i}", "annotations": annotations or {}},
        "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["true"]}], **spec},
        "status": {"phase": "Pending"},
    }


def make_agent(
    tmp_path: Path,
    timing: str = "real",
    flavour: str = "slurm",
    seed: int = 0,
    backend: FakeBackend | None = None,
    **config: Any,
) -> tuple[Agent, FakeKube, FakeBackend, Clock]:
    clock = backend.clock if backend is not None else Clock()
    kube, backend = FakeKube(clock), backend or FakeBackend(clock, flavour)
    settings: dict[str, Any] = {"status_timing": timing, "poll": 1.0, "create_delay": 0.0, **config}
    # the plugin's /create runs at once when its delay is over
    agent = Agent(
        AgentConfig(node="vk-test", state_dir=tmp_path, **settings),
        kube,  # type: ignore[arg-type]
        backend,
        clock=clock,
        rng=random.Random(seed),
        spawn=lambda job: job(),
    )
    return agent, kube, backend, clock


def agent_with_pods(
    tmp_path: Path, n: int, timing: str = "real", flavour: str = "slurm", seed: int = 0, **config: Any
) -> tuple[Agent, FakeKube, FakeBackend, Clock]:
    agent, kube, backend, clock = make_agent(tmp_path, timing, flavour, seed, **config)
    for i in range(n):
        agent._handle("ADDED", make_pod(i))
    agent.pump()
    return agent, kube, backend, clock


def drive(agent: Agent, clock: Clock, until: float, step: float = 0.1) -> None:
    while clock.now < until:
        agent.pump()
        while agent.status_due <= clock.now:
            agent.status_step()
        clock.now += step
    agent.pump()


def first_time(kube: FakeKube, phase: str) -> dict[str, float]:
    times: dict[str, float] = {}
    for t, name, body in kube.patches:
        if (body.get("status") or {}).get("phase") == phase:
            times.setdefault(name, t)
    return times


def statuses_of(kube: FakeKube, name: str) -> list[dict[str, Any]]:
    """The pod's status after each of its patches (merge patches applied in order to
    make_pod's status)."""
    status: dict[str, Any] = {"phase": "Pending"}
    history = []
    for _, pod, body in kube.patches:
        if pod != name or "status" not in body:
            continue
        for key, value in body["status"].items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        history.append(dict(status))
    return history
