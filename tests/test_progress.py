"""Progress lines: one when the picture changes, each reason for waiting once, and safe
while submission threads add pods."""

import threading

from snakemake_executor_plugin_interlink.progress import Progress
from snakemake_executor_plugin_interlink.status import PodStatus, State


class Lines:
    def __init__(self):
        self.said: list[str] = []

    def info(self, message: str) -> None:
        self.said.append(message)


def test_a_line_only_when_the_counts_change():
    lines = Lines()
    progress = Progress(lines)
    progress.print_if_changed()  # nothing submitted yet: nothing to say
    progress.submitted("a")
    progress.submitted("b")
    progress.print_if_changed()
    progress.print_if_changed()
    progress.update("a", PodStatus(State.RUNNING))
    progress.update("b", PodStatus(State.FAILED, "exit code 1"))
    progress.print_if_changed()
    assert lines.said == [
        "interlink: 2 pending, 0 running, 0 done, 0 failed",
        "interlink: 0 pending, 1 running, 0 done, 1 failed",
    ]


def test_a_reason_for_waiting_is_said_once():
    lines = Lines()
    progress = Progress(lines)
    waiting = PodStatus(State.WAITING, "unschedulable: 0/1 nodes are available")
    for pod in ("a", "b", "a"):
        progress.update(pod, waiting)
    progress.update("c", PodStatus(State.WAITING, "queued on vk-slurm"))
    assert lines.said == ["interlink: a waits: unschedulable: 0/1 nodes are available"]


def test_counting_while_submission_threads_add_pods():
    # the 2000-job test once died of "dictionary changed size during iteration" here
    progress = Progress(Lines())
    stop = threading.Event()

    def submit(worker: int) -> None:
        i = 0
        while not stop.is_set():
            progress.submitted(f"pod-{worker}-{i}")
            i += 1

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(300):
            progress.print_if_changed()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert progress.line().startswith("interlink: ")
