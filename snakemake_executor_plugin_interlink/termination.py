"""SIGTERM with a bound: Snakemake's own handler waits for running jobs however long
they run (and for ever when it cannot see them end). Ours notes when the signal came
and calls Snakemake's; the status rounds cancel what still runs once the grace is
over."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Any


class TerminationGrace:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since: float | None = None  # monotonic time SIGTERM came
        self._snakemakes: Any = None  # the handler ours wraps, while installed

    def install(self) -> None:
        """Wrap the current SIGTERM handler, once, from the main thread (Snakemake
        sets its own once its scheduler exists: call this from the first
        submission)."""
        if (
            self._snakemakes is not None
            or threading.current_thread() is not threading.main_thread()
        ):
            return
        snakemakes = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: Any) -> None:
            if self.since is None:
                self.since = time.monotonic()
            if callable(snakemakes):
                snakemakes(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)
        self._snakemakes = snakemakes

    def restore(self) -> None:
        if self._snakemakes is None:
            return
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGTERM, self._snakemakes)
        self._snakemakes = None

    @property
    def received(self) -> bool:
        return self.since is not None

    def over(self) -> bool:
        return self.since is not None and time.monotonic() - self.since >= self.seconds
