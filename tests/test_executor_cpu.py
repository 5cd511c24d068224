"""benchmarks/executor_cpu.py: the executor's CPU per job that the benchmarks report is
only as right as its charging. A call charges its own thread's CPU to its label, and a
nested call's CPU to the nested label only."""

import asyncio
import importlib.util
import threading
import time
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "executor_cpu",
    Path(__file__).resolve().parents[1] / "benchmarks" / "executor_cpu.py",
)
assert SPEC and SPEC.loader
executor_cpu = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(executor_cpu)

BURN = 0.05  # CPU seconds per burn


def burn(seconds: float = BURN) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.fixture(autouse=True)
def fresh_accounts(monkeypatch):
    monkeypatch.setattr(executor_cpu, "_threads", [])
    monkeypatch.setattr(executor_cpu, "_local", threading.local())


def charged(label):
    return executor_cpu.totals()["by_entry_point"].get(label, 0.0)


def test_a_nested_call_is_charged_to_its_own_label_only():
    callback = executor_cpu._charged("snakemake: report", burn)

    def entry() -> None:
        burn()
        callback()
        burn()

    executor_cpu._charged("executor: entry", entry)()
    assert charged("executor: entry") == pytest.approx(2 * BURN, rel=0.3)
    assert charged("snakemake: report") == pytest.approx(BURN, rel=0.3)
    assert executor_cpu.totals()["seconds"]["executor"] < 2.5 * BURN


def test_other_threads_are_charged_with_their_own_clock():
    """A thread that burns while the caller sleeps: the sleep costs the caller
    nothing, the thread's burn is charged to the thread's entry point."""
    worker = executor_cpu._charged("executor: worker", burn)
    waiting = executor_cpu._charged("executor: waits", lambda: time.sleep(BURN))
    thread = threading.Thread(target=worker)
    thread.start()
    waiting()
    thread.join()
    assert charged("executor: worker") == pytest.approx(BURN, rel=0.3)
    assert charged("executor: waits") < BURN / 5


def test_an_async_generator_is_charged_per_step_and_yields_the_same():
    async def steps(n: int):
        for i in range(n):
            burn()
            yield i

    async def consume() -> list[int]:
        out = []
        async for i in executor_cpu._charged("executor: round", steps)(3):
            burn()  # the consumer's work between steps: not the generator's
            out.append(i)
        return out

    assert asyncio.run(consume()) == [0, 1, 2]
    assert charged("executor: round") == pytest.approx(3 * BURN, rel=0.3)


def test_totals_sum_by_what_the_label_is_charged_to(tmp_path):
    executor_cpu._charged("executor: a", burn)()
    executor_cpu._charged("executor: b", burn)()
    executor_cpu._charged("snakemake: c", burn)()
    out = tmp_path / "cpu.json"
    executor_cpu.write(out)
    seconds = executor_cpu.totals()["seconds"]
    assert seconds["executor"] == pytest.approx(2 * BURN, rel=0.3)
    assert seconds["snakemake"] == pytest.approx(BURN, rel=0.3)
    assert '"executor: a"' in out.read_text()
