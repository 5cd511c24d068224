"""Logs as the plugin's /getLogs returns them: job.out + container output, cut its way."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnode.logs_server import LogError, read_condor_logs, read_logs, render_logs

JOB = b"job line 1\njob line 2\n"
CTN = b"out 1\nout 2\nout 3\n"  # 5 lines + the empty string after the last newline = 6 pieces


@pytest.mark.parametrize(
    ("tail", "limit", "expected"),
    [
        (0, 0, JOB + CTN),
        (1, 0, b"out 3\n\n"),  # one more line than asked (the trailing empty piece counts)
        (2, 0, b"out 2\nout 3\n\n"),
        (100, 0, b"job line 1\njob line 2\nout 1\nout 2\nout 3\n\n"),
        (0, 3, b"t 3\n"),  # one more byte than asked
        (0, 1000, JOB + CTN),
    ],
)
def test_render_logs(tail: int, limit: int, expected: bytes) -> None:
    assert render_logs(JOB, CTN, tail, limit) == expected


@pytest.mark.parametrize(("tail", "limit"), [(6, 0), (0, len(JOB + CTN))])
def test_exact_sizes_fail_like_the_plugin(tail: int, limit: int) -> None:
    with pytest.raises(LogError) as info:
        render_logs(JOB, CTN, tail, limit)
    assert info.value.status == 500


def test_unknown_pod_is_404(tmp_path: Path) -> None:
    with pytest.raises(LogError) as info:
        read_logs(None, "ns/p", "main", 0, 0)
    assert info.value.status == 404 and "ns/p" in str(info.value)


def test_both_limits_are_refused_as_interlink_does() -> None:
    # interLink answers the VK 400; the VK library turns that into a 500 for the client
    with pytest.raises(LogError) as info:
        render_logs(JOB, CTN, 2, 3)
    assert info.value.status == 500 and "Status code: 400" in str(info.value)


def test_both_limits_are_refused_on_htcondor_nodes_too(tmp_path: Path) -> None:
    with pytest.raises(LogError) as info:
        read_condor_logs(tmp_path, "ns/p", "main", 10, 10)
    assert "Status code: 400" in str(info.value)


@pytest.mark.parametrize("directory", [None, Path("/nonexistent")])
@pytest.mark.parametrize(("tail", "limit"), [(0, 0), (5, 0), (0, 1000000)])
def test_htcondor_logs_are_not_implemented_with_http_200(directory: Path | None, tail: int, limit: int) -> None:
    # handles.py LogsHandler (6f5ee3e l. 858-860): json.dumps("NOT IMPLEMENTED"), 200, for any pod
    assert read_condor_logs(directory, "ns/p", "main", tail, limit) == b'"NOT IMPLEMENTED"'


def test_job_not_started_is_an_empty_log(tmp_path: Path) -> None:
    assert read_logs(tmp_path, "ns/p", "main", 0, 0) == b""
    assert read_logs(tmp_path, "ns/p", "main", 0, 100) == b""


def test_reads_run_output_and_never_reaches_init_output(tmp_path: Path) -> None:
    # the plugin falls back to init-<name>.out only when reading run-<name>.out fails,
    # and a missing file does not fail (GetLogs.go ReadLogs): init logs read as empty
    (tmp_path / "job.out").write_bytes(b"J\n")
    (tmp_path / "init-setup.out").write_bytes(b"I\n")
    (tmp_path / "run-main.out").write_bytes(b"M\n")
    assert read_logs(tmp_path, "ns/p", "main", 0, 0) == b"J\nM\n"
    assert read_logs(tmp_path, "ns/p", "setup", 0, 0) == b"J\n"
