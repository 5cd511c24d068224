import ast
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Union, get_args, get_origin

import pytest
from pydantic import ValidationError
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_interlink.settings import (
    DEFAULT_NODE_LABEL,
    CheckedSettings,
    ExecutorSettings,
    RequestPolicy,
    Toleration,
    parse_request_policy,
    parse_toleration,
)

REPO = Path(__file__).resolve().parents[1]


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
        # the API server's other forms: a leading dot, exponents, peta and exa
        ("cpu=.5,memory=1e9", RequestPolicy(fixed={"cpu": ".5", "memory": "1e9"})),
        ("memory=1Pi", RequestPolicy(fixed={"memory": "1Pi"})),
        ("cpu=500u", RequestPolicy(fixed={"cpu": "500u"})),
    ],
)
def test_request_policy(text, expected):
    assert parse_request_policy(text) == expected


# parse_quantity takes these (Python's Decimal does); the API server does not
@pytest.mark.parametrize(
    "quantity", ["NaN", "Infinity", "-1", "1_000", "5 Mi", "100mi", "1ki", "0x10", ""]
)
def test_requests_refuse_what_the_api_server_refuses(quantity):
    with pytest.raises(WorkflowError) as info:
        ExecutorSettings(requests=f"memory={quantity}")
    assert str(info.value) == (
        f"Invalid --interlink-requests: {quantity!r} is not a Kubernetes quantity "
        "(e.g. 500m, 2, 4Gi)"
    )


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


# What Snakemake's argparse reads from each generated dataclass field: plain types,
# list[str] with nargs for lists, and for X | None a typing.Optional (checked below).
CLI_TYPES = {
    "namespace": str | None, "context": str | None, "kubeconfig": Path | None,
    "node": str | None, "node_label": str, "tolerations": list[str],
    "node_selector": list[str], "labels": list[str], "annotations": list[str],
    "image": str | None, "image_pull_secrets": list[str],
    "service_account": str | None, "flavour": str, "requests": str,
    "gpu_resource": str, "binds": list[str], "scratch_dir": str,
    "deploy_storage_plugins": bool,
    "pod_network": bool, "node_outage_tolerance": int, "log_probe_rate": float, "log_probe_period": float,
    "termination_grace": int, "status_interval": float, "relist_interval": int, "refusal_tolerance": int,
    "unschedulable_timeout": int, "pending_timeout": int,
    "max_concurrent_submissions": int, "remove_orphans": bool,
    "keep_failed_pods": bool, "log_dir": Path, "log_limit_mb": int,
    "insecure_log_backend": bool, "no_report": bool,
}  # fmt: skip


def test_the_cli_dataclass_has_one_field_per_checked_setting_in_its_order():
    assert [f.name for f in fields(ExecutorSettings)] == list(
        CheckedSettings.model_fields
    )
    assert {f.name: f.type for f in fields(ExecutorSettings)} == CLI_TYPES
    # X | None equals Optional[X], but Snakemake's argparse only knows typing.Union
    unions = [f for f in fields(ExecutorSettings) if type(None) in get_args(f.type)]
    assert unions
    assert all(get_origin(f.type) is Union for f in unions)


def test_cli_defaults_parse_to_the_checked_defaults():
    assert ExecutorSettings().checked == CheckedSettings()
    defaults = {f.name: f.default for f in fields(ExecutorSettings)}
    assert defaults["node_label"] == DEFAULT_NODE_LABEL
    assert defaults["requests"] == "none"
    assert defaults["log_dir"] == Path(".snakemake/interlink_logs")


def test_list_settings_take_words_and_flavour_offers_its_choices():
    metadata = {f.name: f.metadata for f in fields(ExecutorSettings)}
    defaults = ExecutorSettings()
    for name, cli_type in CLI_TYPES.items():
        assert metadata[name]["env_var"] is True
        assert metadata[name]["help"]
        if cli_type == list[str]:
            assert (metadata[name]["nargs"], metadata[name]["type"]) == ("+", str)
            assert getattr(defaults, name) == []
    assert metadata["flavour"]["choices"] == ["slurm", "htcondor"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("node_label", ("example.org/site", "cnaf")),
        ("annotations", {"slurm-job.vk.io/pre-exec": "module load x"}),
        ("tolerations", (Toleration(key="gpu", operator="Exists"),)),
        ("requests", RequestPolicy(fraction=0.5)),
        ("binds", ("/cvmfs",)),
    ],
)
def test_the_checked_form_passes_through(field, value):
    assert getattr(CheckedSettings(**{field: value}), field) == value


def test_dict_keys_are_checked_as_command_line_keys_are():
    with pytest.raises(ValidationError, match="not a valid label key"):
        CheckedSettings(labels={"bad key": "x"})


def test_the_only_kubernetes_name_a_pure_module_takes_is_parse_quantity():
    """import-linter sees `kubernetes` as one node, and pyproject lets settings import
    it for parse_quantity: this keeps the exception that narrow."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    (contract,) = pyproject["tool"]["importlinter"]["contracts"]
    taken = set()
    for module in contract["source_modules"]:
        source = REPO / (module.replace(".", "/") + ".py")
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                taken |= {(module, a.name, "") for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                taken |= {(module, node.module, a.name) for a in node.names}
    from_kubernetes = {t for t in taken if t[1].split(".")[0] == "kubernetes"}
    assert from_kubernetes == {
        (
            "snakemake_executor_plugin_interlink.settings",
            "kubernetes.utils.quantity",
            "parse_quantity",
        )
    }
