"""A job's own word that its command ended, seen without waiting for interLink.

interLink's virtual kubelet refreshes about one pod's status per 10 s (its status loop
asks the plugin one pod at a time, and the Slurm plugin answers from a 10 s cache), so
with N running pods a finished job shows in its pod after about N x 10 s. In
shared-filesystem mode every job's script therefore ends by writing its command's exit
status to `<workdir>/.snakemake/interlink_exit/<pod>`, by rename so that a reader never
sees half a file, and the executor lists that one directory each status round: the
entries are the ends not yet collected, so a round costs O(changes), and no request.
Pod status stays the authority for everything before the command runs.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

EXIT_DIR = Path(".snakemake", "interlink_exit")


class ExitMarkers:
    """The directory that jobs write their exit statuses to."""

    def __init__(self, workdir: Path) -> None:
        self.directory = workdir / EXIT_DIR

    def prepare(self) -> None:
        """Create it with the working directory's permission bits: jobs that may write
        outputs there (possibly as another user at the site) may write here too."""
        self.directory.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(self.directory.parent.parent.stat().st_mode)
        os.chmod(self.directory, mode)

    def ended(self) -> dict[str, int]:
        """Pod name -> exit status of every job that wrote one and was not collected."""
        found: dict[str, int] = {}
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return found
        for entry in entries:
            if entry.name.endswith(".tmp"):
                continue
            try:
                found[entry.name] = int(Path(entry.path).read_text().strip())
            except (OSError, ValueError):
                continue  # not readable (yet): the pod's status still decides
        return found

    def collect(self, pod: str) -> None:
        """The job's end was reported: its marker has served."""
        with contextlib.suppress(OSError):
            (self.directory / pod).unlink(missing_ok=True)
