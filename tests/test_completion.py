"""Jobs report their own end through the shared filesystem: the script writes the exit
status only after the command ended, and a status round picks it up without a request
and without waiting for the virtual kubelet to update the pod."""

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snakemake_executor_plugin_interlink.board import StatusBoard
from snakemake_executor_plugin_interlink.completion import ExitMarkers
from snakemake_executor_plugin_interlink.pod import RunContext, job_script
from snakemake_executor_plugin_interlink.settings import CheckedSettings
from snakemake_executor_plugin_interlink.status import (
    PodStatus,
    State,
    status_from_exit,
)
from snakemake_executor_plugin_interlink.tracker import PodTracker
from tests.test_request_counts import FakeAPI, client


def run_script(tmp_path: Path, command: str) -> tuple[int, ExitMarkers]:
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    markers = ExitMarkers(workdir)
    markers.prepare()
    run = RunContext(
        run_id="r",
        namespace="ns",
        workdir=str(workdir),
        image="i",
        exit_dir=str(markers.directory),
    )
    script = job_script(command, run, run.workdir, "snakejob-r-1-1")
    done = subprocess.run(["/bin/sh", "-c", script], cwd="/", check=False)
    return done.returncode, markers


@pytest.mark.parametrize("code", [0, 3])
def test_the_script_writes_the_commands_exit_status_and_keeps_it(tmp_path, code):
    returncode, markers = run_script(tmp_path, f"sh -c 'exit {code}'")
    assert returncode == code
    assert markers.ended() == {"snakejob-r-1-1": code}


def test_the_status_is_written_only_after_the_command_ended(tmp_path):
    marker = ".snakemake/interlink_exit/snakejob-r-1-1"
    returncode, markers = run_script(tmp_path, f"sleep 0.2; test ! -e {marker}")
    assert returncode == 0  # the marker did not exist while the command ran
    assert markers.ended() == {"snakejob-r-1-1": 0}


def test_without_an_exit_dir_the_script_is_only_the_command():
    run = RunContext(run_id="r", namespace="ns", workdir="/w", image="i")
    assert "status=" not in job_script("true", run, "/w", "p")


def test_partial_and_foreign_files_are_not_ends(tmp_path):
    markers = ExitMarkers(tmp_path)
    markers.prepare()
    (markers.directory / "a.tmp").write_text("0")
    (markers.directory / "b").write_text("")
    (markers.directory / "c").write_text("oops")
    (markers.directory / "d").write_text("7\n")
    assert markers.ended() == {"d": 7}
    markers.collect("d")
    markers.collect("never-there")
    assert markers.ended() == {}


def test_the_directory_takes_the_working_directorys_permissions(tmp_path):
    tmp_path.chmod(0o775)
    ExitMarkers(tmp_path).prepare()
    assert (tmp_path / ".snakemake" / "interlink_exit").stat().st_mode & 0o777 == 0o775


def test_a_pod_that_already_tells_its_end_decides():
    oom = PodStatus(State.FAILED, "out of memory", exit_code=0)
    assert status_from_exit(oom, 0) is oom
    running = PodStatus(State.RUNNING, node="vk", remote_job_id="12")
    ok = status_from_exit(running, 0)
    assert (ok.state, ok.node, ok.remote_job_id) == (State.SUCCEEDED, "vk", "12")
    failed = status_from_exit(running, 3)
    assert (failed.state, failed.exit_code, failed.reason) == (
        State.FAILED,
        3,
        "exit code 3",
    )
    assert status_from_exit(None, 0).state == State.SUCCEEDED


def test_a_round_ends_marked_jobs_of_running_pods_without_requests(tmp_path):
    api = FakeAPI(4)  # four Running pods: pod-0 .. pod-3
    kube = client(api)
    tracker = PodTracker(kube, "ns", "run=1")
    markers = ExitMarkers(tmp_path)
    markers.prepare()
    board = StatusBoard(tracker, kube, "ns", CheckedSettings(), markers)
    tracker.start()
    try:
        assert tracker.synced.wait(10)
        jobs = [p["metadata"]["name"] for p in api.pods]
        active, finished = board.decide(jobs, lambda name: name)
        assert (active, finished) == (jobs, [])
        requests = kube.stats.requests
        (markers.directory / "pod-1").write_text("0\n")
        (markers.directory / "pod-2").write_text("3\n")
        (markers.directory / "snakejob-other-run-1-1").write_text("0\n")
        active, finished = board.decide(jobs, lambda name: name)
        assert active == ["pod-0", "pod-3"]
        outcome = {name: (s.state, s.exit_code) for name, s in finished}
        assert outcome == {"pod-1": (State.SUCCEEDED, 0), "pod-2": (State.FAILED, 3)}
        for name, _ in finished:
            board.forget(name)
        assert set(markers.ended()) == {"snakejob-other-run-1-1"}
        # another run's marker ends nothing here
        assert board.decide(active, lambda name: name) == (active, [])
        assert kube.stats.requests == requests
    finally:
        tracker.stop()
        api.closed.set()


def test_status_times_are_kept():
    started, ended = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    status = status_from_exit(PodStatus(State.RUNNING, started=started), 0, ended)
    assert (status.started, status.finished) == (started, ended)
