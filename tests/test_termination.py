"""SIGTERM's grace: ours notes the time and calls Snakemake's handler; the grace ends
after the configured seconds; restoring puts Snakemake's back."""

import os
import signal
import time

from snakemake_executor_plugin_interlink.termination import TerminationGrace


def test_sigterm_is_noted_passed_on_and_bounded():
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: calls.append(s))
    try:
        grace = TerminationGrace(0.2)
        grace.install()
        grace.install()  # once: a second call must not wrap ours
        assert not grace.received and not grace.over()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert calls == [signal.SIGTERM, signal.SIGTERM]  # Snakemake's, each time
        since = grace.since
        assert grace.received and not grace.over()
        time.sleep(0.25)
        assert grace.over() and grace.since == since  # the first signal counts
        grace.restore()
        os.kill(os.getpid(), signal.SIGTERM)
        assert len(calls) == 3 and grace.since == since
    finally:
        signal.signal(signal.SIGTERM, previous)
