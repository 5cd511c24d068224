"""Shared fixtures. End-to-end fixtures live in tests/e2e/conftest.py and are opt-in
(marker e2e), so unit tests need no cluster."""

import pytest

from snakemake_executor_plugin_interlink.pod import RunContext
from snakemake_executor_plugin_interlink.settings import CheckedSettings

RUN_ID = "0123abcd-0000-4000-8000-00000000beef"


@pytest.fixture
def settings() -> CheckedSettings:
    return CheckedSettings()


@pytest.fixture
def run() -> RunContext:
    return RunContext(
        run_id=RUN_ID,
        namespace="snakemake",
        workdir="/data/project one",
        image="snakemake/snakemake:v9.27.1",
        secret_name="snakejob-0123abcd-env",
        env_names=("AWS_SECRET", "TOKEN"),
    )
