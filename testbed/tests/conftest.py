"""Tests of the testbed's virtual node.

Pure tests need nothing. Tests marked `testbed` talk to the running testbed and are
opt-in: start it with testbed/up.sh, then pass --testbed (or set TESTBED_E2E=1); once
opted in, a missing testbed is a failure, not a skip.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTBED_DIR = Path(__file__).resolve().parents[1]
if str(TESTBED_DIR) not in sys.path:
    sys.path.insert(0, str(TESTBED_DIR))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--testbed",
        action="store_true",
        default=False,
        help="run the tests that need the running testbed (testbed/up.sh)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "testbed: needs the running testbed (testbed/up.sh); opt in with --testbed")
    config.addinivalue_line("markers", "sandbox: needs vk-slurm's sandbox (the default of testbed/up.sh)")


def _opted_in(config: pytest.Config) -> bool:
    return bool(config.getoption("--testbed", default=False)) or os.environ.get("TESTBED_E2E") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _opted_in(config):
        return
    skip = pytest.mark.skip(reason="needs the running testbed: run testbed/up.sh, then pytest --testbed")
    for item in items:
        if item.get_closest_marker("testbed") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def testbed_env() -> dict[str, str]:
    """The exports of $STATE/env written by up.sh."""
    state = Path(os.environ.get("INTERLINK_TESTBED_STATE", "/tmp/interlink-testbed"))
    env_file = state / "env"
    if not env_file.exists():
        pytest.fail(f"the testbed is not up: {env_file} does not exist (run testbed/up.sh)")
    env = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value
    return env
