"""The run report after a real run: one row per job that matches the run, and a
timeline that a real browser draws with its bars."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from .conftest import Testbed, copy_example, report_rows

WAIT_GREY = (0xC9, 0xCE, 0xD6)
RUN_GREEN = (0x3A, 0x8F, 0x5C)


def test_report_rows_match_the_run(testbed: Testbed, tmp_path: Path):
    workdir = copy_example("hello", tmp_path)
    done = testbed.snakemake(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = (workdir / ".snakemake" / "interlink_reports").iterdir()
    rows = report_rows(workdir)
    assert sorted((r["rule"], r["wildcards"]) for r in rows) == [
        ("greet", "sample=alpha"),
        ("greet", "sample=beta"),
        ("greet", "sample=gamma"),
        ("summary", ""),
    ]
    for row in rows:
        assert row["state"] == "succeeded" and row["exit_code"] == "0"
        assert row["remote_job_id"].isdigit(), (
            "the JobID annotation of the virtual node"
        )
        assert row["pod"].startswith("snakejob-") and row["attempt"] == "1"
        assert row["submitted"] <= row["started"] <= row["finished"]
        assert float(row["queue_wait_s"]) >= 0 and float(row["run_time_s"]) >= 0
        # what the job used, as it reported itself: at least a Python's worth
        assert 10 < float(row["memory_used_mb"]) < float(row["memory_requested_mb"])
        assert float(row["cpu_used_s"]) > 0 and float(row["cpus_requested"]) >= 1
    greets = [r for r in rows if r["rule"] == "greet"]
    summary = next(r for r in rows if r["rule"] == "summary")
    assert all(summary["submitted"] >= g["finished"][:19] for g in greets), (
        "fan-in order"
    )
    assert (folder / "timeline.html").read_text().count('class="bar wait"') == 4


def test_a_rule_asking_far_more_than_it_uses_is_named_at_the_end(
    testbed: Testbed, workdir: Path
):
    """What the Slurm executor plugin's efficiency report gives, from the job itself:
    the run report has each job's request and use, and the run's end names the rule
    that asked for more than twice what it used."""
    (workdir / "Snakefile").write_text(
        """
rule all:
    input: "big.txt", "fit.txt"
rule big:
    output: "big.txt"
    threads: 2
    resources: mem_mb=6000
    shell: "sleep 4; touch {output}"
rule fit:
    output: "fit.txt"
    resources: mem_mb=600
    shell: "touch {output}"
"""
    )
    done = testbed.snakemake(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stderr.splitlines() if "asked for more than twice" in x]
    assert "rule big (memory 6000 MB asked, at most" in line
    assert "2 cpus asked" in line and "rule fit" not in line
    (folder,) = (workdir / ".snakemake" / "interlink_reports").iterdir()
    rows = {r["rule"]: r for r in report_rows(workdir)}
    big = rows["big"]
    assert (big["cpus_requested"], big["memory_requested_mb"]) == ("2.0", "6000.0")
    assert 10 < float(big["memory_used_mb"]) < 1000
    assert 0 < float(big["cpu_efficiency"]) < 0.5
    assert float(big["memory_efficiency"]) < 0.2
    assert "memory efficiency" in (folder / "timeline.html").read_text()


def png_pixels(data: bytes) -> set[tuple[int, int, int]]:
    """The RGB colours of an 8-bit RGB/RGBA PNG (what Chromium's screenshots are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = (
            struct.unpack(">I", data[pos : pos + 4]),
            data[pos + 4 : pos + 8],
        )
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, _, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    colours, prev = set(), bytearray(stride)
    for row_start in range(0, len(raw), stride + 1):
        kind, line = (
            raw[row_start],
            bytearray(raw[row_start + 1 : row_start + 1 + stride]),
        )
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (
                    line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)
                ) & 255
        colours.update(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        prev = line
    return colours


def test_timeline_shows_bars_in_headless_chromium(tmp_path: Path):
    from snakemake_executor_plugin_interlink.report import timeline_html

    from ..test_report import row

    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail(
            "chromium is not installed (scripts/test.sh installs Debian's chromium)"
        )
    page = tmp_path / "timeline.html"
    page.write_text(
        timeline_html([row("greet", "p1", 12, 30), row("greet", "p2", 2, 25)], "t")
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    colours = png_pixels(shot.read_bytes())
    assert WAIT_GREY in colours, "the waiting part of the bars is drawn"
    assert RUN_GREEN in colours, "the running part of the bars is drawn"
