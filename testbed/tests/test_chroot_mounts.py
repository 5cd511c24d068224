"""The trixie chroot's mounts (testbed/lib.sh's mount_chroot), which `up.sh` makes again
on every call, `ctl.sh start` included. Needs root and mounts: opt in as for the
testbed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib.sh"


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A directory outside /tmp: the chroot sees /tmp through one bind, other job
    image directories one bind each."""
    path = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="chroot-mounts-"))
    yield path
    subprocess.run(["bash", "-c", f". {LIB}; umount_chroot {path / 'root'}"])
    shutil.rmtree(path)


@pytest.mark.testbed
def test_mounting_again_leaves_a_bound_running_binary_alone(outside_tmp: Path):
    """With Debian's Python (a fresh machine's) the job image includes the running
    /usr/bin/python3.X, bound as a file; a second mount_chroot once touched it through
    the bind and failed with 'Text file busy', so every `ctl.sh start` failed."""
    root = outside_tmp / "root"
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        (root / d).mkdir(parents=True)
    busy = outside_tmp / "bin" / "busy"
    busy.parent.mkdir()
    shutil.copy2("/bin/sleep", busy)
    running = subprocess.Popen([busy, "120"])
    mount_twice = (
        f"set -euo pipefail; . {LIB}; job_image_dirs() {{ echo {busy}; }}; mount_chroot {root}; mount_chroot {root}"
    )
    try:
        result = subprocess.run(["bash", "-c", mount_twice], capture_output=True, text=True, timeout=60)
    finally:
        running.kill()
        running.wait()
    assert result.returncode == 0, result.stderr
    assert (root / busy.relative_to("/")).read_bytes() == busy.read_bytes()
