"""Logs as the plugin's /getLogs returns them: job.out + container output, cut its way."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnode.logs_server import LogError, read_logs, render_logs

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
        (2, 3, b"out 2\nout 3\n\n"),  # tailLines wins over limitBytes
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


def test_job_not_started_is_500(tmp_path: Path) -> None:
    with pytest.raises(LogError) as info:
        read_logs(tmp_path, "ns/p", "main", 0, 0)
    assert info.value.status == 500


def test_reads_run_then_init_output(tmp_path: Path) -> None:
    (tmp_path / "job.out").write_bytes(b"J\n")
    (tmp_path / "init-setup.out").write_bytes(b"I\n")
    (tmp_path / "run-main.out").write_bytes(b"M\n")
    assert read_logs(tmp_path, "ns/p", "main", 0, 0) == b"J\nM\n"
    assert read_logs(tmp_path, "ns/p", "setup", 0, 0) == b"J\nI\n"
