"""Removing what a run holds: on cancel (Ctrl-C, SIGTERM after its grace) every pod
of the run by label, after the virtual node has finished submitting what it was
submitting; at the end of a run what was left. Bounded in time whatever the API
does; what could not be removed is named, with the command that removes it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .kube import KubeClient, KubeError
from .status import submission_in_flight

CANCEL_WAIT_SECONDS = 30.0  # for the virtual node to cancel batch jobs
SUBMISSION_WAIT_SECONDS = 20.0  # for creates in flight at the site
POLL_SECONDS = 0.5


class RunCleanup:
    def __init__(self, kube: KubeClient, namespace: str, logger: Any) -> None:
        self._kube = kube
        self._namespace = namespace
        self._logger = logger

    def cancel(self, selector: str) -> None:
        """Delete every pod the selector names with one deletecollection, and wait
        (bounded) until the virtual node has removed them."""
        try:
            self._wait_for_submissions(selector)
            self._kube.delete_pods(self._namespace, selector)
            self._wait_until_no_pods(selector)
        except KubeError as e:
            self._logger.error(
                f"interlink: could not delete the run's pods: {e}. Remove them with: "
                f"{self._delete_command(selector)}"
            )

    def delete_remaining(
        self, selector: str, kept: Iterable[str], what: str = "the run's pods"
    ) -> bool:
        """One deletecollection, one LIST to verify, whatever the number of pods;
        kept pods (failed jobs, for debugging; adopted ones) stay. False, with a
        warning naming the command that finishes the job, when pods remain."""
        try:
            left = self._kube.delete_pods_verified(self._namespace, selector, kept)
        except KubeError as e:
            problem = f"could not delete {what}: {e}"
        else:
            if not left:
                return True
            problem = f"{len(left)} of {what} were not deleted"
        self._logger.warning(
            f"interlink: {problem}. Remove them with: {self._delete_command(selector)}"
        )
        return False

    def _delete_command(self, selector: str) -> str:
        return f"kubectl -n {self._namespace} delete pods -l '{selector}'"

    def _wait_for_submissions(self, selector: str) -> None:
        """A pod deleted before the virtual node has its JobID leaves its batch job
        running at the site: give the node a bounded time to finish submitting."""
        deadline = time.monotonic() + SUBMISSION_WAIT_SECONDS
        while True:
            pods, _ = self._kube.list_pods(self._namespace, selector)
            creating = sorted(
                p["metadata"]["name"] for p in pods if submission_in_flight(p)
            )
            if not creating:
                return
            if time.monotonic() > deadline:
                self._logger.warning(
                    f"interlink: {len(creating)} pod(s) were still being submitted by "
                    f"the virtual node ({', '.join(creating[:5])}); their batch jobs "
                    "may run on at the site without a pod."
                )
                return
            time.sleep(POLL_SECONDS)

    def _wait_until_no_pods(self, selector: str) -> None:
        """The virtual node cancels each batch job, then removes the pod."""
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while True:
            pods, _ = self._kube.list_pods(self._namespace, selector)
            if not pods:
                return
            if time.monotonic() > deadline:
                self._logger.warning(
                    f"interlink: {len(pods)} pod(s) of the run are still being deleted "
                    "by the virtual node (is it Ready?). Check with: kubectl -n "
                    f"{self._namespace} get pods -l '{selector}'"
                )
                return
            time.sleep(POLL_SECONDS)
