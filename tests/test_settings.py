import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_interlink.settings import (
    ExecutorSettings,
    RequestPolicy,
    Toleration,
    parse_request_policy,
    parse_toleration,
)


def test_defaults_are_valid():
    checked = ExecutorSettings().checked
    assert checked.node_label == ("virtual-node.interlink/type", "virtual-kubelet")
    assert checked.requests == RequestPolicy(fixed={"cpu": "0", "memory": "0"})
    assert checked.flavour == "slurm"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu", Toleration(key="gpu", operator="Exists")),
        (
            "gpu:NoSchedule",
            Toleration(key="gpu", operator="Exists", effect="NoSchedule"),
        ),
        (
            "site=cnaf:NoExecute",
            Toleration(key="site", operator="Equal", value="cnaf", effect="NoExecute"),
        ),
        ("example.org/x=", Toleration(key="example.org/x", operator="Equal", value="")),
    ],
)
def test_toleration_notation(text, expected):
    assert parse_toleration(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("none", RequestPolicy(fixed={"cpu": "0", "memory": "0"})),
        ("10%", RequestPolicy(fraction=0.1)),
        ("100%", RequestPolicy(fraction=1.0)),
        ("limits", RequestPolicy(fraction=1.0)),
        (
            "cpu=100m,memory=64Mi",
            RequestPolicy(fixed={"cpu": "100m", "memory": "64Mi"}),
        ),
        ("cpu=1", RequestPolicy(fixed={"cpu": "1"})),
    ],
)
def test_request_policy(text, expected):
    assert parse_request_policy(text) == expected


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("requests", "0%", "--interlink-requests"),
        ("requests", "150%", "--interlink-requests"),
        ("requests", "cpu=lots", "--interlink-requests"),
        ("requests", "disk=1Gi", "--interlink-requests"),
        ("tolerations", ["gpu:Sometimes"], "--interlink-tolerations"),
        ("node_label", "novalue", "--interlink-node-label"),
        ("node_label", "type=has space", "--interlink-node-label"),
        ("labels", ["team=a b"], "--interlink-labels"),
        ("labels", ["bad key=x"], "--interlink-labels"),
        ("annotations", ["noequals"], "--interlink-annotations"),
        ("namespace", "Upper_Case", "--interlink-namespace"),
        ("node", "vk slurm", "--interlink-node"),
        ("flavour", "pbs", "--interlink-flavour"),
        ("status_interval", 0, "--interlink-status-interval"),
        ("max_concurrent_submissions", 0, "--interlink-max-concurrent-submissions"),
        ("pending_timeout", -1, "--interlink-pending-timeout"),
        ("log_limit_mb", 0, "--interlink-log-limit-mb"),
        ("binds", ["relative/path"], "--interlink-binds"),
        ("image_pull_secrets", ["Not A Name"], "--interlink-image-pull-secrets"),
    ],
)
def test_bad_settings_name_the_option(field, value, named):
    with pytest.raises(WorkflowError) as info:
        ExecutorSettings(**{field: value})
    assert named in str(info.value)


def test_annotation_values_may_hold_equals_and_spaces():
    s = ExecutorSettings(annotations=["slurm-job.vk.io/pre-exec=export A=1 B=2"])
    assert s.checked.annotations == {"slurm-job.vk.io/pre-exec": "export A=1 B=2"}


@pytest.mark.parametrize(
    "value",
    [
        ["a=1", "b=x y"],
        "['a=1', 'b=x y']",  # what a profile's YAML list arrives as
        "a=1 'b=x y'",  # an environment variable
    ],
)
def test_list_settings_from_cli_profile_and_env(value):
    checked = ExecutorSettings(annotations=value).checked
    assert checked.annotations == {"a": "1", "b": "x y"}
