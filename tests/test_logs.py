"""A log that cannot be fetched says why, in words, and how to fetch it by hand."""

import pytest

from snakemake_executor_plugin_interlink.kube import KubeError, TransientError
from snakemake_executor_plugin_interlink.logs import unfetched_log_text


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (
            TransientError(
                "Get https://127.0.0.1:10250/containerLogs/ns/p/snakejob: remote "
                "error: tls: internal error",
                500,
            ),
            "TLS",
        ),
        (
            TransientError("x509: certificate signed by unknown authority", 500),
            "--interlink-insecure-log-backend",
        ),
        (
            TransientError(
                "error getting container logs?): HTTP InterLink session #1: "
                "Unexpected error occured while getting logs. Status code: 400.",
                500,
            ),
            "refused the log request",
        ),
        (
            TransientError("Internal error occurred: NOT IMPLEMENTED", 500),
            "does not implement logs",
        ),
        (KubeError("cannot read job.out", 500), "failed to read the log"),
    ],
)
def test_the_cause_is_named(error: KubeError, cause: str) -> None:
    text = unfetched_log_text("ns", "p", error)
    assert cause in text.splitlines()[0]
    assert str(error) in text
    assert "kubectl -n ns logs p" in text
