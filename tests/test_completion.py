"""Jobs report their own end through the shared filesystem: the script writes the exit
status only after the command ended, and a status round picks it up without a request
and without waiting for the virtual kubelet to update the pod."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from snakemake_executor_plugin_interlink.board import StatusBoard
from snakemake_executor_plugin_interlink.completion import (
    ExitMarkers,
    LogProbe,
    probe_interval,
)
from snakemake_executor_plugin_interlink.kube import ClusterAccess, KubeClient
from snakemake_executor_plugin_interlink.logs import KeptOutput
from snakemake_executor_plugin_interlink.pod import (
    RunContext,
    end_line_pattern,
    job_script,
)
from snakemake_executor_plugin_interlink.settings import CheckedSettings
from snakemake_executor_plugin_interlink.status import (
    JobEnd,
    PodStatus,
    State,
    parse_job_end,
    status_from_exit,
)
from snakemake_executor_plugin_interlink.tracker import PodTracker
from tests.test_request_counts import FakeAPI, client


def shared_fs_run(workdir: Path, markers: ExitMarkers) -> RunContext:
    return RunContext(
        run_id="r",
        namespace="ns",
        workdir=str(workdir),
        image="i",
        exit_dir=str(markers.directory),
        output_dir=str(markers.outputs),
        reporter=str(markers.reporter),
    )


def run_script(
    tmp_path: Path, command: str, stdout: int | None = None
) -> tuple[int, ExitMarkers]:
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    markers = ExitMarkers(workdir)
    markers.prepare()
    run = shared_fs_run(workdir, markers)
    script = job_script(command, run, run.workdir, "snakejob-r-1-1")
    done = subprocess.run(
        ["/bin/sh", "-c", script], cwd="/", stdout=stdout, check=False
    )
    return done.returncode, markers


@pytest.mark.parametrize("code", [0, 3])
def test_the_script_writes_the_commands_exit_status_and_keeps_it(tmp_path, code):
    before = time.time()
    returncode, markers = run_script(tmp_path, f"sleep 1; sh -c 'exit {code}'")
    assert returncode == code
    ((name, end),) = markers.ended().items()
    assert name == "snakejob-r-1-1" and end.exit_code == code
    # the job's own times: when its command started and ended
    assert before - 1 <= end.started.timestamp() < end.finished.timestamp()
    assert end.finished.timestamp() <= time.time()


def test_the_script_reports_what_its_command_used(tmp_path):
    """CPU time of every process of the command, and the peak memory of its largest:
    from the job itself, so that it works on any batch system."""
    burn = (
        f"{sys.executable} -c 'x = bytearray(120 * 2**20); "
        "import time; t = time.process_time()\n"
        "while time.process_time() - t < 0.5: pass'"
    )
    returncode, markers = run_script(tmp_path, f"{burn} && {burn}")
    assert returncode == 0
    end = markers.ended()["snakejob-r-1-1"]
    assert end.max_rss_kib is not None and 120 * 1024 < end.max_rss_kib < 240 * 1024
    assert end.cpu_seconds is not None and end.cpu_seconds >= 1.0  # both processes


def test_a_command_killed_by_a_signal_reports_128_plus_the_signal(tmp_path):
    returncode, markers = run_script(tmp_path, "kill -9 $$")
    assert returncode == 137
    assert markers.ended()["snakejob-r-1-1"].exit_code == 137


@pytest.mark.parametrize(
    ("text", "cpu", "rss"),
    [
        ("0 1 2 3.5 2048", 3.5, 2048),
        ("0 1 2", None, None),  # what jobs of an older executor wrote
        ("0 1 2 x y", None, None),
    ],
)
def test_an_end_with_or_without_usage_is_read(text, cpu, rss):
    end = parse_job_end(text)
    assert end is not None and (end.exit_code, end.cpu_seconds, end.max_rss_kib) == (
        0,
        cpu,
        rss,
    )


def test_the_status_is_written_only_after_the_command_ended(tmp_path):
    marker = ".snakemake/interlink_exit/snakejob-r-1-1"
    returncode, markers = run_script(tmp_path, f"sleep 0.2; test ! -e {marker}")
    assert returncode == 0  # the marker did not exist while the command ran
    assert markers.ended()["snakejob-r-1-1"].exit_code == 0


@pytest.mark.parametrize("code", [0, 5])
def test_the_script_keeps_its_commands_output_as_the_pods_log_shows_it(tmp_path, code):
    """What the executor stores as the job's log without asking interLink: stdout and
    stderr in the order they came, also passed on to the pod's own log."""
    command = f"echo one; echo two >&2; sleep 0.2; echo three; exit {code}"
    pod_log = tmp_path / "pod.log"
    with pod_log.open("wb") as f:
        returncode, markers = run_script(tmp_path, command, stdout=f.fileno())
    assert returncode == code
    assert markers.ended()["snakejob-r-1-1"].exit_code == code
    assert pod_log.read_text() == "one\ntwo\nthree\n"
    kept = KeptOutput("one\ntwo\nthree\n", whole=True)
    assert markers.take_output("snakejob-r-1-1", 2**20) == kept
    assert list(markers.outputs.iterdir()) == []  # taken once


def test_only_the_last_bytes_of_a_long_output_are_taken(tmp_path):
    run_script(tmp_path, "seq 1 100000")
    assert markers_text(tmp_path, 12) == "99999\n100000\n"[-12:]


def markers_text(tmp_path: Path, limit: int) -> str | None:
    kept = ExitMarkers(tmp_path / "work dir").take_output("snakejob-r-1-1", limit)
    return None if kept is None else kept.text


def test_a_process_left_in_the_background_does_not_hold_the_jobs_end(tmp_path):
    """It keeps the output pipe open; the job still ends (within the 3 s the script
    waits for the rest of the output) and its output until then is kept."""
    started = time.monotonic()
    returncode, markers = run_script(tmp_path, "sleep 60 & echo started")
    assert returncode == 0 and time.monotonic() - started < 30
    assert markers.take_output("snakejob-r-1-1", 2**20) == KeptOutput("started\n", True)


def test_a_job_killed_before_its_script_ended_kept_its_output_until_then(tmp_path):
    """The site kills the job's processes (time limit, memory): the partial copy
    holds what the command wrote until then, written as it came (an HTCondor site
    serves no log, so it is all the user gets), and goes once taken."""
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    markers = ExitMarkers(workdir)
    markers.prepare()
    run = shared_fs_run(workdir, markers)
    script = job_script("echo before the kill; sleep 60", run, run.workdir, "p")
    job = subprocess.Popen(
        ["/bin/sh", "-c", script],
        cwd="/",
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    part = markers.outputs / "p.part"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            part.exists() and part.read_text() == "before the kill\n"
        ):
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    assert markers.ended() == {}  # no end: the pod's status tells the kill
    assert markers.take_output("p", 2**20) == KeptOutput("before the kill\n", False)
    assert list(markers.outputs.iterdir()) == []


def test_output_that_cannot_be_kept_never_fails_the_job(tmp_path):
    markers = ExitMarkers(tmp_path)
    markers.prepare()
    markers.outputs.rmdir()  # the script cannot open its copy
    run = shared_fs_run(tmp_path, markers)
    script = job_script("echo hi; exit 6", run, run.workdir, "p")
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (6, "hi\n")
    assert markers.ended()["p"].exit_code == 6
    assert markers.take_output("p", 2**20) is None


@pytest.mark.parametrize("code", [0, 4])
def test_without_an_exit_dir_the_script_prints_its_pods_end_line(tmp_path, code):
    run = RunContext(
        run_id="r", namespace="ns", workdir=str(tmp_path), image="i", shared_fs=False
    )
    script = job_script(f"sh -c 'exit {code}'", run, run.workdir, "snakejob-r-1-1")
    done = subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == code
    (found,) = end_line_pattern("snakejob-r-1-1").findall(done.stdout)
    end = parse_job_end(found)
    assert end is not None and end.exit_code == code and end.started <= end.finished
    assert end_line_pattern("snakejob-r-1-11").findall(done.stdout) == []


def probe_against(logs: dict[str, str], submitted=lambda name: True):
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        name = request.url.path.split("/")[-2]
        seen.append((name, dict(request.url.params)))
        if name not in logs:
            return httpx.Response(500, text="NOT IMPLEMENTED")
        return httpx.Response(200, text=logs[name])

    access = ClusterAccess(server="https://k8s.test", namespace="ns", source="test")
    kube = KubeClient(access, transport=httpx.MockTransport(answer))
    return LogProbe(kube, "ns", "snakejob", 1.0, 15.0, submitted), seen


def test_a_probe_reads_only_the_end_of_a_log_and_only_its_own_end_line():
    probe, seen = probe_against(
        {
            "a": "work\n[interlink] end of pod a: 0 1700000000 1700000060\n",
            "b": "[interlink] end of pod a: 0 1700000000 1700000060\nstill working\n",
            "c": "[interlink] end of pod c: 2 1700000000 1700000060\n",
        }
    )
    for name in "abc":
        probe.track(name)
    for _ in range(3):
        probe.probe(probe.next_pod())
    assert {name: end.exit_code for name, end in probe.ended().items()} == {
        "a": 0,
        "c": 2,
    }
    assert all(
        params == {"container": "snakejob", "limitBytes": "512"} for _, params in seen
    )
    probe.collect("a")
    assert list(probe.ended()) == ["c"]


def test_the_rotation_skips_ended_collected_and_unsubmitted_pods():
    submitted = {"a", "c"}
    probe, _ = probe_against({}, lambda name: name in submitted)
    for name in "abcd":
        probe.track(name)
    assert [probe.next_pod() for _ in range(4)] == ["a", "c", "a", "c"]
    probe.collect("a")
    submitted.add("d")
    assert [probe.next_pod() for _ in range(3)] == ["d", "c", "d"]
    probe.collect("c")
    probe.collect("d")
    assert probe.next_pod() is None


def test_probes_run_at_the_rate_in_their_own_thread():
    probe, seen = probe_against({"a": "[interlink] end of pod a: 0 1 2\n"})
    probe._rate, probe._period = 100.0, 0.01
    probe.track("a")
    probe.start()
    try:
        deadline = time.monotonic() + 5
        while not probe.ended() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        probe.stop()
    assert probe.ended() == {
        "a": JobEnd(0, *(datetime.fromtimestamp(t, UTC) for t in (1, 2)))
    }
    assert len(seen) == 1, "an ended job is not probed again"


@pytest.mark.parametrize(
    ("pods", "period", "rate", "interval"),
    [
        (20, 15.0, 10.0, 0.75),  # each job every 15 s: 1.3 requests/s
        (200, 15.0, 10.0, 0.1),  # 13 a second wanted: the rate caps it
        (1, 15.0, 10.0, 15.0),
        (0, 15.0, 10.0, 15.0),  # nothing to read: a slow idle loop
        (200, 15.0, 2.0, 0.5),
    ],
)
def test_each_job_is_probed_about_once_a_period_within_the_rate(
    pods, period, rate, interval
):
    assert probe_interval(pods, period, rate) == pytest.approx(interval)


def test_the_pace_follows_the_jobs_whose_end_is_not_seen():
    probe, _ = probe_against({"a": "[interlink] end of pod a: 0 1 2\n"})
    for name in "abc":
        probe.track(name)
    assert probe.interval() == pytest.approx(5.0)  # 3 jobs, 15 s
    probe.probe("a")
    assert probe.interval() == pytest.approx(7.5)  # a's end is seen: 2 left


def test_partial_and_foreign_files_are_not_ends(tmp_path):
    markers = ExitMarkers(tmp_path)
    markers.prepare()
    (markers.directory / "a.tmp").write_text("0")
    (markers.directory / "b").write_text("")
    (markers.directory / "c").write_text("oops")
    (markers.directory / "d").write_text("7\n")  # no times: still an end
    assert markers.ended() == {"d": JobEnd(7)}
    markers.collect("d")
    markers.collect("never-there")
    assert markers.ended() == {}


def test_the_directories_take_the_working_directorys_permissions(tmp_path):
    tmp_path.chmod(0o775)
    markers = ExitMarkers(tmp_path)
    markers.prepare()
    for name in ("interlink_exit", "interlink_output", "interlink"):
        assert (tmp_path / ".snakemake" / name).stat().st_mode & 0o777 == 0o775
    # the script jobs run, which may be another user at the site
    assert markers.reporter.stat().st_mode & 0o777 == 0o644
    assert markers.reporter.parent == tmp_path / ".snakemake" / "interlink"
    assert [p.name for p in markers.reporter.parent.iterdir()] == [
        markers.reporter.name
    ]


def test_with_a_shared_filesystem_pods_carry_no_reporter_code(tmp_path):
    """The reporter is a file in the working directory: every pod and each of its
    watch events stay as small as without it (a pod 900 bytes larger made a
    1000-job benchmark 25 % slower on the stand-in node)."""
    markers = ExitMarkers(tmp_path)
    markers.prepare()
    shared = job_script("true", shared_fs_run(tmp_path, markers), str(tmp_path), "p")
    assert str(markers.reporter) in shared and "getrusage" not in shared
    inline = job_script("true", RunContext("r", "ns", str(tmp_path), "i"), "/", "p")
    assert "getrusage" in inline and "select" not in inline  # no copy to keep
    assert len(shared) < len(inline) < 1000


def test_a_pod_that_already_tells_its_end_decides():
    oom = PodStatus(State.FAILED, "out of memory", exit_code=0)
    assert status_from_exit(oom, JobEnd(0)) == oom
    # the job's own times and use fill what the pod does not tell
    t1, t2 = (datetime.fromtimestamp(t, UTC) for t in (1, 2))
    told = status_from_exit(oom, JobEnd(0, t1, t2, 1.5, 2048))
    assert (told.state, told.reason, told.started, told.finished) == (
        State.FAILED,
        "out of memory",
        t1,
        t2,
    )
    assert (told.used_cpu_seconds, told.used_memory_mb) == (1.5, 2.0)
    running = PodStatus(State.RUNNING, node="vk", remote_job_id="12")
    ok = status_from_exit(running, JobEnd(0))
    assert (ok.state, ok.node, ok.remote_job_id) == (State.SUCCEEDED, "vk", "12")
    failed = status_from_exit(running, JobEnd(3))
    assert (failed.state, failed.exit_code, failed.reason) == (
        State.FAILED,
        3,
        "exit code 3",
    )
    assert status_from_exit(None, JobEnd(0)).state == State.SUCCEEDED


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
        for name in jobs:
            board.track(name, None)
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


def test_the_jobs_own_times_win_over_what_the_pod_showed():
    seen = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)  # interLink showed Running late
    ran = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 9, tzinfo=UTC)
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    status = status_from_exit(
        PodStatus(State.RUNNING, started=seen), JobEnd(0, *ran), now
    )
    assert (status.started, status.finished) == ran
    status = status_from_exit(PodStatus(State.RUNNING, started=seen), JobEnd(0), now)
    assert (status.started, status.finished) == (seen, now)


def test_an_end_is_news_until_a_round_has_taken_it(tmp_path):
    markers = ExitMarkers(tmp_path)
    markers.prepare()
    assert not markers.news()
    (markers.directory / "a.tmp").write_text("0")  # being written: not yet
    assert not markers.news()
    (markers.directory / "a").write_text("0\n")
    (markers.directory / "junk").write_text("oops")
    assert markers.news()
    assert set(markers.ended()) == {"a"}
    # taken; and a file that is no end (or another run's) does not wake every wait
    assert not markers.news()
    (markers.directory / "b").write_text("1\n")
    assert markers.news()


def test_a_probed_end_is_news_until_a_round_has_taken_it():
    probe, _ = probe_against({"a": "[interlink] end of pod a: 0 1 2\n"})
    probe.track("a")
    assert not probe.news()
    probe.probe("a")
    assert probe.news()
    assert set(probe.ended()) == {"a"}
    assert not probe.news()


def test_a_wait_ends_when_a_job_says_it_ended_without_any_pod_change(tmp_path):
    """interLink shows the end much later: the wait must not last until the interval
    (or until some other pod changes) before the round that reports it. The tracker
    here never runs, so no pod can change."""
    kube = client(FakeAPI(0))
    markers = ExitMarkers(tmp_path)
    markers.prepare()
    board = StatusBoard(
        PodTracker(kube, "ns", "run=1"), kube, "ns", CheckedSettings(), markers
    )
    assert board.wait_for_change(0.3) is False  # nothing happened
    write_end = threading.Timer(
        0.3, lambda: (markers.directory / "pod-0").write_text("0\n")
    )
    write_end.start()
    assert board.wait_for_change(60) is True  # the end, not the timeout
    assert set(markers.ended()) == {"pod-0"}
