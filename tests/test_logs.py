"""A log that cannot be fetched says why, in words, and how to fetch it by hand."""

import httpx
import pytest

from snakemake_executor_plugin_interlink.kube import (
    ClusterAccess,
    KubeClient,
    KubeError,
    TransientError,
)
from snakemake_executor_plugin_interlink.logs import (
    KeptOutput,
    store_log,
    unfetched_log_text,
)


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
        (KubeError("cannot read job.out", 500), "failed to read the log"),
    ],
)
def test_the_cause_is_named(error: KubeError, cause: str) -> None:
    text = unfetched_log_text("ns", "p", error)
    assert cause in text.splitlines()[0]
    assert str(error) in text
    assert "kubectl -n ns logs p" in text


@pytest.mark.parametrize(
    ("body", "note"),
    [
        ('"NOT IMPLEMENTED"', True),  # interlink-htcondor-plugin, any build
        ("NOT IMPLEMENTED\n", True),
        ("the job printed NOT IMPLEMENTED\n", False),
        ("", False),
    ],
)
def test_a_plugin_that_serves_no_logs_is_named_in_the_stored_log(tmp_path, body, note):
    access = ClusterAccess(server="https://k8s.test", namespace="ns", source="test")
    kube = KubeClient(
        access, transport=httpx.MockTransport(lambda r: httpx.Response(200, text=body))
    )
    path = tmp_path / "job.log"
    text = store_log(kube, "ns", "p", path, 1000, False)
    assert path.read_text() == text
    assert ("does not serve logs" in text) == note
    assert (text == body) != note


@pytest.mark.parametrize(
    ("status", "body", "stored"),
    [
        (200, "interLink's log\n", "interLink's log\n"),  # it wins: the site's lines
        (200, '"NOT IMPLEMENTED"', "does not serve logs"),
        (404, "no such pod", "could not be fetched"),
    ],
)
@pytest.mark.parametrize("whole", [True, False])
def test_the_output_a_job_kept_stands_in_where_interlink_serves_no_log(
    tmp_path, status, body, stored, whole
):
    access = ClusterAccess(server="https://k8s.test", namespace="ns", source="test")
    answer = httpx.Response(status, text=body)
    kube = KubeClient(access, transport=httpx.MockTransport(lambda r: answer))
    kept = KeptOutput("the job's own output\n", whole)
    text = store_log(kube, "ns", "p", tmp_path / "job.log", 1000, False, kept)
    assert stored in text
    stands_in = status != 200 or "NOT" in body
    assert text.endswith(kept.text) == stands_in
    # a partial copy (a job the site killed) says it stops where the job stopped
    assert ("until it stopped" in text) == (stands_in and not whole)
