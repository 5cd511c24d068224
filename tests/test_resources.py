"""Rule resources -> limits, requests, Slurm flags: every mapping and every refusal."""

import shlex

import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_interlink.resources import (
    SLURM_FLAGS,
    group_job_resources,
    parse_minutes,
    pod_resources,
    unbounded_group_warning,
)
from snakemake_executor_plugin_interlink.settings import CheckedSettings, RequestPolicy


def build(resources=None, threads=1, **settings):
    return pod_resources("align", threads, resources or {}, CheckedSettings(**settings))


def flags(resources, **settings):
    return build(resources, **settings).annotations.get(SLURM_FLAGS)


@pytest.mark.parametrize(
    ("threads", "resources", "limits"),
    [
        (1, {}, {"cpu": "1", "memory": "1024Mi"}),
        (4, {"mem_mb": 8000}, {"cpu": "4", "memory": "8000Mi"}),
        (4, {"cpus_per_task": 2, "mem_mb": 300}, {"cpu": "2", "memory": "300Mi"}),
        # the job's own Snakemake needs memory too: never below 256 MiB
        (1, {"mem_mb": 5}, {"cpu": "1", "memory": "256Mi"}),
        (2, {"mem_mb_per_cpu": 10}, {"cpu": "2", "memory": "256Mi"}),
        (2, {"mem_mb_per_cpu": 1500}, {"cpu": "2", "memory": "3000Mi"}),
        (2, {"mem_mb_per_cpu": 1500, "mem_mb": 99}, {"cpu": "2", "memory": "3000Mi"}),
        (1, {"mem_mb": 1000.4}, {"cpu": "1", "memory": "1001Mi"}),
        (1, {"mem_mb": "2048"}, {"cpu": "1", "memory": "2048Mi"}),
        # no GPU limit unless the node advertises one (--interlink-gpu-resource):
        # interLink's Helm default advertises none, and the pod would never schedule
        (1, {"gpu": 2}, {"cpu": "1", "memory": "1024Mi"}),
        (1, {"gres": "gpu:a100:3"}, {"cpu": "1", "memory": "1024Mi"}),
        (1, {"gres": "fpga:1"}, {"cpu": "1", "memory": "1024Mi"}),
        # a rule that uses no core still runs on one, as with the Slurm plugin
        (0, {}, {"cpu": "1", "memory": "1024Mi"}),
        (4, {"cpus_per_task": 0}, {"cpu": "1", "memory": "1024Mi"}),
    ],
)
def test_limits_are_always_set(threads, resources, limits):
    assert build(resources, threads).limits == limits


def test_gpu_resource_name_is_a_setting():
    res = build({"gpu": 1}, gpu_resource="amd.com/gpu")
    assert res.limits["amd.com/gpu"] == "1"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (RequestPolicy(fraction=0.1), {"cpu": "400m", "memory": "800Mi"}),
        (RequestPolicy(fraction=1.0), {"cpu": "4000m", "memory": "8000Mi"}),
        (RequestPolicy(fraction=0.0001), {"cpu": "1m", "memory": "1Mi"}),
        (
            RequestPolicy(fixed={"cpu": "100m", "memory": "64Mi"}),
            {"cpu": "100m", "memory": "64Mi"},
        ),
        # a fixed request above the limit would be rejected: capped at the limit
        (
            RequestPolicy(fixed={"cpu": "16", "memory": "1Ti"}),
            {"cpu": "4", "memory": "8000Mi"},
        ),
        (
            RequestPolicy(fixed={"cpu": "4.5", "memory": "8001Mi"}),
            {"cpu": "4", "memory": "8000Mi"},
        ),
        # at the limit, or below it in another unit: kept as written
        (
            RequestPolicy(fixed={"cpu": "4000m", "memory": "8000Mi"}),
            {"cpu": "4000m", "memory": "8000Mi"},
        ),
        (
            RequestPolicy(fixed={"cpu": ".5", "memory": "8e9"}),
            {"cpu": ".5", "memory": "8e9"},
        ),
        (
            RequestPolicy(fixed={"memory": "8389e6"}),  # 8000Mi is 8388608000 bytes
            {"memory": "8000Mi"},
        ),
    ],
)
def test_requests_follow_the_policy(policy, expected):
    assert build({"mem_mb": 8000}, threads=4, requests=policy).requests == expected


def test_htcondor_requests_whole_cpus_equal_to_limits():
    res = build({"mem_mb": 3000}, threads=3, flavour="htcondor")
    assert res.requests == {"cpu": "3", "memory": "3000Mi"}
    assert SLURM_FLAGS not in res.annotations


def test_htcondor_warns_about_slurm_only_resources_and_walltime():
    res = build({"slurm_partition": "gpu", "runtime": 120}, flavour="htcondor")
    text = " ".join(res.warnings)
    assert "slurm_partition" in text and "60 min" in text


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({}, None),
        ({"runtime": 90}, "--time=90"),
        ({"runtime": "1h30m"}, "--time=90"),
        ({"runtime": 0.5}, "--time=1"),
        ({"slurm_partition": "gpu"}, "--partition=gpu"),
        ({"slurm_account": "proj-1"}, "--account=proj-1"),
        ({"qos": "long"}, "--qos=long"),
        ({"constraint": "haswell&ib"}, "--constraint='haswell&ib'"),
        ({"tasks": 4}, "--ntasks=4"),
        ({"nodes": 2}, "--nodes=2"),
        ({"gres": "gpu:a100:2"}, "--gres=gpu:a100:2"),
        ({"gpu": 2}, "--gres=gpu:2"),
        ({"gpu": 1, "gpu_model": "h100"}, "--gres=gpu:h100:1"),
        # the Slurm plugin: a model alone is one GPU; tasks of a GPU job are per GPU
        ({"gpu_model": "h100"}, "--gres=gpu:h100:1"),
        ({"gpu": 2, "tasks": 2}, "--ntasks-per-gpu=2 --gres=gpu:2"),
        ({"gres": "gpu:1", "tasks_per_gpu": 3}, "--ntasks-per-gpu=3 --gres=gpu:1"),
        ({"slurm_extra": "--exclusive --mail-type=END"}, "--exclusive --mail-type=END"),
        (
            {"runtime": 10, "slurm_partition": "p", "slurm_extra": "--exclusive"},
            "--time=10 --partition=p --exclusive",
        ),
    ],
)
def test_slurm_flags_match_the_slurm_plugin(resources, expected):
    assert flags(resources) == expected


def test_site_flags_come_first_so_rule_flags_win():
    """interLink: later duplicates of a flag win."""
    got = flags(
        {"slurm_partition": "rule"}, annotations={SLURM_FLAGS: "--partition=site"}
    )
    assert got == "--partition=site --partition=rule"


def test_rule_annotations_are_merged_and_their_flags_appended():
    res = build(
        {
            "runtime": 5,
            "interlink_annotations": '{"slurm-job.vk.io/pre-exec": "module load x", '
            '"slurm-job.vk.io/flags": "--exclusive"}',
        }
    )
    assert res.annotations["slurm-job.vk.io/pre-exec"] == "module load x"
    assert res.annotations[SLURM_FLAGS] == "--time=5 --exclusive"


def test_flag_values_are_shell_words():
    got = flags({"constraint": "a b'c"})
    assert shlex.split(got) == ["--constraint=a b'c"]


def test_per_rule_image_node_and_flavour():
    res = build(
        {
            "interlink_image": "ghcr.io/x/y:1",
            "interlink_node": "vk-condor",
            "interlink_flavour": "htcondor",
        }
    )
    assert (res.image, res.node, res.flavour) == (
        "ghcr.io/x/y:1",
        "vk-condor",
        "htcondor",
    )


@pytest.mark.parametrize(
    ("resources", "threads", "words"),
    [
        ({"mem_mb": -5}, 1, ["align", "mem_mb=-5"]),
        ({"mem_mb": 0}, 1, ["mem_mb=0"]),
        ({"mem_mb": "lots"}, 1, ["mem_mb='lots'", "not a number"]),
        ({"mem_mb": True}, 1, ["mem_mb=True"]),
        ({"cpus_per_task": 1.5}, 1, ["cpus_per_task=1.5", "whole number"]),
        ({"runtime": "soon"}, 1, ["runtime='soon'", "not a duration"]),
        ({"runtime": -1}, 1, ["runtime=-1"]),
        ({"gpu": -1}, 1, ["gpu=-1"]),
        ({"gres": "gpu"}, 1, ["gres='gpu'"]),
        ({"slurm_partition": "a b"}, 1, ["slurm_partition='a b'"]),
        ({"tasks": 0}, 1, ["tasks=0"]),
        ({"interlink_flavour": "pbs"}, 1, ["interlink_flavour='pbs'"]),
        ({}, -1, ["threads=-1"]),
    ],
)
def test_invalid_resources_name_rule_and_resource(resources, threads, words):
    with pytest.raises(WorkflowError) as info:
        build(resources, threads)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("resources", "words"),
    [
        ({"gpu": 1, "gres": "gpu:2"}, ["contradicts"]),
        ({"slurm_extra": "--mem=4G"}, ["--mem", "mem_mb"]),
        ({"slurm_extra": "-c 4"}, ["-c", "cpus_per_task"]),
        ({"slurm_extra": "--job-name=x"}, ["--job-name", "executor sets it"]),
        ({"slurm_extra": "--comment 'unclosed"}, ["quotes"]),
        ({"interlink_annotations": "not json"}, ["JSON object"]),
        ({"interlink_annotations": '{"a": 1}'}, ["strings"]),
        ({"interlink_annotations": '{"bad key": "x"}'}, ["not a valid annotation key"]),
    ],
)
def test_refusals_say_what_to_do(resources, words):
    with pytest.raises(WorkflowError) as info:
        build(resources)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("resources", "count", "gres"),
    [
        ({"gpu": 2}, "2", "--gres=gpu:2"),
        ({"gpu": 1, "gpu_model": "a100"}, "1", "--gres=gpu:a100:1"),
        ({"gpu_model": "a100"}, "1", "--gres=gpu:a100:1"),
        ({"gres": "gpu:a100:3"}, "3", "--gres=gpu:a100:3"),
    ],
)
def test_gpus_reach_slurm_as_gres_and_the_node_only_when_asked(resources, count, gres):
    plain = build(resources)
    assert gres in plain.annotations[SLURM_FLAGS].split()
    assert not any("gpu" in name for name in plain.limits)
    advertised = build(resources, gpu_resource="nvidia.com/gpu")
    assert advertised.limits["nvidia.com/gpu"] == count
    assert gres in advertised.annotations[SLURM_FLAGS].split()


def test_unknown_resources_are_ignored():
    assert build({"disk_mb": 1000, "tmpdir": "/tmp", "_cores": 1}).limits["cpu"] == "1"


@pytest.mark.parametrize(
    ("value", "minutes"),
    [
        (90, 90),
        ("90", 90),
        ("2h", 120),
        ("1h30m", 90),
        ("1d", 1440),
        ("45s", 0.75),
        ("01:30:00", 90),
        ("2-00:00:00", 2880),
        ("10:00", 10),
        (1.5, 1.5),
    ],
)
def test_durations(value, minutes):
    assert parse_minutes(value) == pytest.approx(minutes)


@pytest.mark.parametrize(
    ("resources", "flavour", "minutes"),
    [
        ({"runtime": 90}, "slurm", 90),
        ({"runtime": "1h30m"}, "slurm", 90),
        ({}, "slurm", None),  # the site's default: unknown here
        ({"runtime": 10}, "htcondor", 60),  # the plugin's fixed MaxWallTimeMins
    ],
)
def test_the_batch_time_limit_is_known_where_it_can_be(resources, flavour, minutes):
    assert build(resources, flavour=flavour).time_limit_minutes == minutes


def test_pods_request_nothing_by_default():
    # interLink 0.6.2 advertises Slurm's free cpus and memory: any request can leave a
    # pod unschedulable on a busy site; zero must be explicit (omitted = the limits)
    assert build({"mem_mb": 8000}, threads=4).requests == {"cpu": "0", "memory": "0"}


def test_a_memory_floor_is_said_once_per_rule():
    res = build({"mem_mb": 5})
    assert res.limits["memory"] == "256Mi"
    assert any("less than the job's own Snakemake needs" in w for w in res.warnings)
    assert not build({"mem_mb": 300}).warnings


@pytest.mark.parametrize(
    ("summed", "members", "expected"),
    [
        (  # what Snakemake's GroupJob computed stands: width, memory, time, strings
            {"_cores": 2, "mem_mb": 200, "runtime": 25, "slurm_partition": "short"},
            [{"mem_mb": 100, "runtime": 1}] * 50,
            {"_cores": 2, "mem_mb": 200, "runtime": 25, "slurm_partition": "short"},
        ),
        (  # per-job counts summed over a layer: the group is one task on one node
            {"_cores": 4, "cpus_per_task": 8, "tasks": 4, "nodes": 4, "gpu": 2},
            [{"cpus_per_task": 2, "tasks": 1, "nodes": 1, "gpu": 1}] * 4,
            {"_cores": 4, "gpu": 2},
        ),
        (  # mem_mb_per_cpu: the largest of the jobs', not their sum
            {"_cores": 4, "mem_mb_per_cpu": 3000, "mem_mb": 4000},
            [{"mem_mb_per_cpu": 1000}, {"mem_mb_per_cpu": 2000}, {"mem_mb": 1000}],
            {"_cores": 4, "mem_mb_per_cpu": 2000, "mem_mb": 4000},
        ),
        (  # a value that is no number reaches validation, which names it
            {"mem_mb_per_cpu": 0},
            [{"mem_mb_per_cpu": 1000}, {"mem_mb_per_cpu": "lots"}],
            {"mem_mb_per_cpu": "lots"},
        ),
    ],
)
def test_group_job_resources(summed, members, expected):
    assert group_job_resources(summed, members) == expected


def test_a_groups_pod_gets_its_width_in_cpus_and_per_cpu_memory_once():
    resources = group_job_resources(
        {"mem_mb_per_cpu": 2000 * 4, "mem_mb": 4000}, [{"mem_mb_per_cpu": 2000}] * 4
    )
    assert build(resources, threads=4).limits == {"cpu": "4", "memory": "8000Mi"}


@pytest.mark.parametrize(
    ("cpus", "cores", "warned"),
    [(50, None, True), (1, None, False), (2, 2, False), (50, 50, False)],
)
def test_a_group_without_cores_is_warned_of_its_width(cpus, cores, warned):
    warning = unbounded_group_warning("batch", cpus, cores)
    assert (warning is not None) == warned
    if warning:
        assert warning.startswith("group batch: its pod asks for 50 cpus")
