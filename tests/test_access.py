"""The start-up check's pure parts: which permissions are missing, and what a refusal
tells the user to do."""

import pytest

from snakemake_executor_plugin_interlink.access import (
    REQUIRED_PERMISSIONS,
    SECRET_PERMISSIONS,
    api_problem,
    missing_permissions,
)
from snakemake_executor_plugin_interlink.kube import (
    Forbidden,
    KubeError,
    TransientError,
    Unauthorized,
)


@pytest.mark.parametrize(
    ("denied", "missing"),
    [
        (set(), []),
        ({("deletecollection", "pods", "")}, ["deletecollection pods"]),
        ({("get", "pods", "log")}, ["get pods/log"]),
        (
            {("watch", "pods", ""), ("create", "secrets", "")},
            ["watch pods", "create secrets"],
        ),
    ],
)
def test_missing_permissions_are_named_in_the_order_asked(denied, missing):
    wanted = REQUIRED_PERMISSIONS + SECRET_PERMISSIONS
    allowed = [p not in denied for p in wanted]
    assert missing_permissions(wanted, allowed) == missing


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (Forbidden("forbidden", 403), "Grant the Role in docs/setup.md."),
        (Unauthorized("unauthorized", 401), "log in again or check the token."),
        (TransientError("timed out"), ""),
        (KubeError("invalid", 422), ""),
    ],
)
def test_an_api_problem_names_what_where_with_what_and_what_to_do(error, hint):
    text = api_problem("create pod p", "ns", "kubeconfig (context c)", error)
    assert text.startswith(
        f"Cannot create pod p in namespace 'ns' with kubeconfig (context c): {error}."
    )
    assert text.endswith(hint)
