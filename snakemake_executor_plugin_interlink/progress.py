"""One progress line when the picture changes, and each reason for waiting once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from .status import PodStatus, State

_LABELS = {
    State.WAITING: "pending",
    State.RUNNING: "running",
    State.SUCCEEDED: "done",
    State.FAILED: "failed",
}


class Progress:
    """Submission threads add pods while the status thread counts them: one lock.
    The counts are kept as states change, so a line costs nothing per job."""

    def __init__(self, logger: Any):
        self._logger = logger
        self._states: dict[str, State] = {}
        self._counts: Counter[State] = Counter()
        self._said: set[str] = set()
        self._last_line = ""
        self._lock = threading.Lock()

    def submitted(self, pod: str) -> None:
        with self._lock:
            self._set(pod, State.WAITING)

    def update(self, pod: str, status: PodStatus) -> None:
        worth_saying = status.state == State.WAITING and status.reason.startswith(
            ("unschedulable", "status unknown", "ErrImagePull", "ImagePullBackOff")
        )
        with self._lock:
            self._set(pod, status.state)
            first_time = worth_saying and status.reason not in self._said
            if first_time:
                self._said.add(status.reason)
        if first_time:
            self._logger.info(f"interlink: {pod} waits: {status.reason}")

    def _set(self, pod: str, state: State) -> None:
        """Under the lock."""
        old = self._states.get(pod)
        if old != state:
            if old is not None:
                self._counts[old] -= 1
            self._counts[state] += 1
            self._states[pod] = state

    def line(self) -> str:
        with self._lock:
            counts = self._counts.copy()
        return "interlink: " + ", ".join(
            f"{counts.get(state, 0)} {label}" for state, label in _LABELS.items()
        )

    def print_if_changed(self) -> None:
        line = self.line()
        if line != self._last_line:
            self._last_line = line
            if self._states:
                self._logger.info(line)
