"""The run's Secret manifest and its refusals (pure)."""

import base64

import pytest

from snakemake_executor_plugin_interlink.secret import (
    SECRET_LIMIT_BYTES,
    SecretError,
    secret_manifest,
)


def test_values_are_base64_and_labels_are_the_runs():
    manifest = secret_manifest("run-x", {"run": "x"}, {"TOKEN": "a'b\"c\n✓"})
    assert manifest["metadata"] == {"name": "run-x", "labels": {"run": "x"}}
    assert base64.b64decode(manifest["data"]["TOKEN"]).decode() == "a'b\"c\n✓"
    assert manifest["type"] == "Opaque"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BAD NAME": "x", "OK": "y"}, "['BAD NAME'] cannot be Secret keys"),
        ({"A/B": "x"}, "['A/B'] cannot be Secret keys"),
        ({"BIG": "x" * SECRET_LIMIT_BYTES}, "(BIG) takes"),
        (
            {
                "A": "x" * (SECRET_LIMIT_BYTES // 2),
                "B": "x" * (SECRET_LIMIT_BYTES // 2),
            },
            "more than a Kubernetes Secret holds",
        ),
    ],
)
def test_what_a_secret_cannot_hold_is_refused_by_name(env, message):
    with pytest.raises(SecretError) as refused:
        secret_manifest("run-x", {}, env)
    assert message in str(refused.value)
    assert "x" * 100 not in str(refused.value)  # never the values


def test_a_value_never_appears_in_a_refusal():
    with pytest.raises(SecretError) as refused:
        secret_manifest("run-x", {}, {"BAD NAME": "s3cr3t"})
    assert "s3cr3t" not in str(refused.value)
