"""Job -> pod manifest: interLink's contract, names and labels for hostile inputs."""

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_interlink.logs import group_log_path, log_path
from snakemake_executor_plugin_interlink.pod import (
    GroupSpec,
    JobSpec,
    RunContext,
    env_changed_by_htcondor_line,
    job_script,
    job_title,
    label_value,
    pod_for_job,
    pod_name,
    without_dash_c,
)
from snakemake_executor_plugin_interlink.settings import CheckedSettings, Toleration

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

HOSTILE = [
    "align",
    "ünïcödé_rule",
    "with spaces and / slashes",
    "quotes'\"`$(rm -rf /)",
    "x" * 200,
    "-leading-and-trailing-",
    "日本語",
    "",
]


def spec(**kw):
    base = dict(
        jobid=7,
        rule="align",
        attempt=1,
        threads=2,
        resources={"mem_mb": 2000, "runtime": 30},
        command="python -m snakemake",
    )
    return JobSpec(**{**base, **kw})


def test_pod_honours_the_interlink_contract(settings, run):
    manifest, _ = pod_for_job(spec(), settings, run)
    pod = manifest["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == {"virtual-node.interlink/type": "virtual-kubelet"}
    assert {"key": "virtual-node.interlink/no-schedule", "operator": "Exists"} in pod[
        "tolerations"
    ]
    (container,) = pod["containers"]
    assert "ports" not in container
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "2000Mi"}
    assert manifest["metadata"]["annotations"]["slurm-job.vk.io/flags"] == "--time=30"


def test_pods_opt_out_of_the_mesh_network_unless_asked(settings, run):
    manifest, _ = pod_for_job(spec(), settings, run)
    assert manifest["metadata"]["annotations"]["interlink.eu/mesh-network"] == (
        "disabled"
    )
    manifest, _ = pod_for_job(spec(), CheckedSettings(pod_network=True), run)
    assert "interlink.eu/mesh-network" not in manifest["metadata"]["annotations"]


@pytest.mark.parametrize(("seconds", "expected"), [(86400, 86400), (60, 60), (0, None)])
def test_pods_ride_out_a_node_outage(run, seconds, expected):
    settings = CheckedSettings(node_outage_tolerance=seconds)
    manifest, _ = pod_for_job(spec(), settings, run)
    outage = {
        t["key"]: t.get("tolerationSeconds")
        for t in manifest["spec"]["tolerations"]
        if t.get("effect") == "NoExecute"
    }
    assert outage == {
        "node.kubernetes.io/not-ready": expected,
        "node.kubernetes.io/unreachable": expected,
    }


def test_environment_only_through_the_run_secret(settings, run):
    manifest, _ = pod_for_job(spec(), settings, run)
    env = manifest["spec"]["containers"][0]["env"]
    assert env == [
        {"name": n, "valueFrom": {"secretKeyRef": {"name": run.secret_name, "key": n}}}
        for n in ("AWS_SECRET", "TOKEN")
    ]
    assert all("value" not in e for e in env)


def test_shared_fs_binds_the_workdir_at_the_same_path_and_cds(settings, run):
    manifest, _ = pod_for_job(spec(), settings, run)
    pod = manifest["spec"]
    assert pod["volumes"] == [
        {"name": "scratch", "hostPath": {"path": "/tmp", "type": "DirectoryOrCreate"}},
        {"name": "workdir", "hostPath": {"path": run.workdir, "type": "Directory"}},
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "scratch", "mountPath": "/tmp"},
        {"name": "workdir", "mountPath": run.workdir},
    ]
    script = pod["containers"][0]["command"][2]
    assert script.splitlines()[0] == "cd '/data/project one' || exit 1"
    assert script.splitlines()[1].startswith("python -c 'import os, resource")
    assert script.endswith(" /bin/sh -c 'python -m snakemake'")


def test_object_storage_mode_uses_a_scratch_dir_and_no_workdir_bind(settings, run):
    obj = RunContext(
        **{
            **run.__dict__,
            "shared_fs": False,
            "storage_plugin_packages": ("snakemake-storage-plugin-s3",),
        }
    )
    manifest, _ = pod_for_job(spec(), CheckedSettings(binds=("/cvmfs",)), obj)
    pod = manifest["spec"]
    assert [v["hostPath"]["path"] for v in pod["volumes"]] == ["/tmp", "/cvmfs"]
    script = pod["containers"][0]["command"][2]
    assert "mktemp -d /tmp/snakejob.XXXXXX" in script and run.workdir not in script
    assert (
        "pip install --quiet --target .snakemake/pip-deployments snakemake-storage-plugin-s3"
        in script
    )


def test_node_by_name_and_extra_placement(run):
    settings = CheckedSettings(
        node="vk-slurm",
        node_selector={"site": "cnaf"},
        tolerations=(Toleration(key="gpu", operator="Exists", effect="NoSchedule"),),
        labels={"team": "bio"},
        image_pull_secrets=("regcred",),
        service_account="runner",
        image="ghcr.io/site/img:1",
    )
    manifest, _ = pod_for_job(spec(), settings, run)
    pod = manifest["spec"]
    assert pod["nodeSelector"] == {"site": "cnaf", "kubernetes.io/hostname": "vk-slurm"}
    assert {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["serviceAccountName"] == "runner"
    assert pod["containers"][0]["image"] == "ghcr.io/site/img:1"
    assert manifest["metadata"]["labels"]["team"] == "bio"


def test_per_rule_node_and_image_win(settings, run):
    manifest, _ = pod_for_job(
        spec(resources={"interlink_node": "vk-condor", "interlink_image": "img:2"}),
        settings,
        run,
    )
    assert manifest["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "vk-condor"}
    assert manifest["spec"]["containers"][0]["image"] == "img:2"


def test_image_defaults_to_snakemakes_container_image(settings, run):
    manifest, _ = pod_for_job(spec(), settings, run)
    assert manifest["spec"]["containers"][0]["image"] == run.image


@pytest.mark.parametrize("rule", HOSTILE)
def test_labels_valid_for_any_rule_name(settings, run, rule):
    wildcards = {"sample": rule, "n": "1"}
    manifest, _ = pod_for_job(
        spec(rule=rule or "r", wildcards=wildcards), settings, run
    )
    meta = manifest["metadata"]
    assert DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= 63
    for value in meta["labels"].values():
        assert LABEL_VALUE.match(value) and len(value) <= 63, value
    assert meta["annotations"]["interlink.snakemake.io/rule"] == (rule or "r")
    assert (
        json.loads(meta["annotations"]["interlink.snakemake.io/wildcards"]) == wildcards
    )


@pytest.mark.parametrize("text", HOSTILE)
def test_host_and_user_labels_are_valid_for_any_name(settings, run, text):
    """For people reading kubectl get pods (JupyterHub: host jupyter-<user>, user
    jovyan); the pod and the run's Secret carry the same."""
    named = RunContext(**{**run.__dict__, "host": text, "user": text + "@EXAMPLE"})
    manifest, _ = pod_for_job(spec(), settings, named)
    labels = manifest["metadata"]["labels"]
    assert {k: labels[k] for k in named.labels} == named.labels
    for key in ("interlink.snakemake.io/host", "interlink.snakemake.io/user"):
        if text:
            assert LABEL_VALUE.match(labels[key]) and len(labels[key]) <= 63
        else:
            assert key not in labels or LABEL_VALUE.match(labels[key])


def test_pods_carry_the_job_key_and_each_output(settings, run):
    manifest, _ = pod_for_job(
        spec(outputs=("b.txt", "a.txt"), key="0123abcd"), settings, run
    )
    annotations = manifest["metadata"]["annotations"]
    assert annotations["interlink.snakemake.io/job-key"] == "0123abcd"
    hashes = annotations["interlink.snakemake.io/output-hashes"].split()
    assert len(hashes) == 2 and hashes == sorted(hashes)


@pytest.mark.parametrize("text", HOSTILE)
def test_label_value(text):
    value = label_value(text)
    assert LABEL_VALUE.match(value) and len(value) <= 63


def test_label_values_of_different_texts_differ():
    assert label_value("a b") != label_value("a_b")
    assert label_value("x" * 64) != label_value("x" * 65)


def test_pod_names_are_short_and_unique_per_attempt():
    assert pod_name("0123abcd-ffff", 12345678, 1) == "snakejob-0123abcd-12345678-1"
    assert pod_name("0123abcd-ffff", 1, 1) != pod_name("0123abcd-ffff", 1, 2)


# Snakemake's GroupJob.jobid: the UUID of the group's last job, as a string
GROUP_JOBID = "6b3f0c1e-9a2d-5e4f-8b7a-0c1d2e3f4a5b"


def test_single_jobs_name_their_pod_label_and_log(settings, run, tmp_path):
    manifest, _ = pod_for_job(spec(jobid=7, attempt=10), settings, run)
    meta = manifest["metadata"]
    assert meta["name"] == "snakejob-0123abcd-7-10"
    assert meta["labels"]["interlink.snakemake.io/jobid"] == "7"
    assert meta["labels"]["interlink.snakemake.io/rule"] == "align"
    assert "interlink.snakemake.io/group" not in meta["labels"]
    path = log_path(tmp_path, "pair", {"w": "a"}, 7)
    assert path == tmp_path / "pair" / "w=a" / "7.log"
    # a retry has the same job id: its log must not replace the first attempt's
    assert log_path(tmp_path, "pair", {"w": "a"}, 7, attempt=1) == path
    assert log_path(tmp_path, "pair", {"w": "a"}, 7, 2).name == "7.attempt2.log"


def group(name="batch", rules=("gather", "work"), members=50):
    return GroupSpec(name=name, rules=rules, members=members)


@pytest.mark.parametrize(
    ("name", "rules", "readable"),
    [
        ("batch", ("work",), "batch"),
        ("Big_Batch.v2", ("work",), "big-batch-v2"),
        ("x" * 100, ("work",), "x" * 20),
        ("日本語", ("work",), ""),  # nothing readable is left: the unique part stays
        ("-edge-", ("work",), "edge"),
        ("a" * 19 + "-b", ("work",), "a" * 19),  # no dash before the unique part
        # Snakemake's own groups (pipes, services) are named by a UUID: their rules
        (
            "17d453f7-19ef-468d-892d-5252e97516c6",
            ("consume", "produce"),
            "consume-produce",
        ),
    ],
)
def test_group_pods_are_named_after_the_group_and_stay_valid(
    settings, run, name, rules, readable
):
    manifest, _ = pod_for_job(
        spec(jobid=GROUP_JOBID, attempt=10, group=group(name, rules)), settings, run
    )
    pod = manifest["metadata"]["name"]
    assert DNS_LABEL.match(pod) and len(pod) <= 63
    assert pod.startswith("snakejob-0123abcd-" + (f"{readable}-" if readable else ""))
    assert re.fullmatch(r"[0-9a-f]{12}-10", pod.removeprefix("snakejob-0123abcd-")[
        len(readable) + bool(readable):
    ])  # fmt: skip


def test_group_pods_of_one_group_differ_by_job_and_attempt():
    names = {
        pod_name("0123abcd-ffff", jobid, attempt, "batch")
        for jobid in (GROUP_JOBID, GROUP_JOBID.replace("6b", "7b"))
        for attempt in (1, 2)
    }
    assert len(names) == 4


def test_group_pods_say_they_are_a_group_and_name_no_rule(settings, run):
    manifest, _ = pod_for_job(
        spec(jobid=GROUP_JOBID, rule="group batch (rules gather, work)", group=group()),
        settings,
        run,
    )
    meta = manifest["metadata"]
    labels, annotations = meta["labels"], meta["annotations"]
    assert labels["interlink.snakemake.io/kind"] == "group"
    assert labels["interlink.snakemake.io/group"] == "batch"
    assert labels["interlink.snakemake.io/jobid"] == GROUP_JOBID
    assert "interlink.snakemake.io/rule" not in labels
    assert "interlink.snakemake.io/rule" not in annotations
    assert annotations["interlink.snakemake.io/group"] == "batch"
    assert annotations["interlink.snakemake.io/rules"] == "gather work"
    assert annotations["interlink.snakemake.io/members"] == "50"
    for value in labels.values():
        assert LABEL_VALUE.match(value)


def test_group_labels_are_valid_for_any_group_name(settings, run):
    for name in HOSTILE:
        manifest, _ = pod_for_job(
            spec(jobid=GROUP_JOBID, group=group(name or "g")), settings, run
        )
        assert LABEL_VALUE.match(
            manifest["metadata"]["labels"]["interlink.snakemake.io/group"]
        )


def test_a_group_job_is_named_by_its_group_and_rules_in_messages():
    assert job_title("align", None) == "align"
    assert job_title("x", group()) == "group batch (rules gather, work)"


def test_one_log_per_group_named_after_it(tmp_path):
    path = group_log_path(tmp_path, "batch", ("gather", "work"), GROUP_JOBID)
    assert path.parent == tmp_path / "group_batch"
    assert re.fullmatch(r"gather\+work-[0-9a-f]{12}\.log", path.name)
    other = group_log_path(tmp_path, "batch", ("gather", "work"), "another-uuid")
    assert other != path
    retry = group_log_path(tmp_path, "batch", ("gather", "work"), GROUP_JOBID, 3)
    assert retry == path.with_name(path.name.removesuffix(".log") + ".attempt3.log")
    hostile = group_log_path(tmp_path, "../x y", ("r",) * 100, GROUP_JOBID)
    assert hostile.parent.parent == tmp_path and len(hostile.name) < 120


def test_scripts_quote_the_workdir(run):
    script = job_script("true", run, "/tmp/it's here")
    assert script.splitlines()[0] == "cd '/tmp/it'\"'\"'s here' || exit 1"


def htcondor_plugin_executable(command: list[str]) -> str:
    """The job executable as interLink's HTCondor plugin writes it (handles.py, HEAD
    6f5ee3e): the word after one containing "-c" wrapped in double quotes, the words
    joined by spaces, empty quote pairs and runs of spaces squeezed."""
    words = list(command)
    for i in range(1, len(words)):
        if "-c" in words[i - 1]:
            words[i] = '"' + words[i] + '"'
    line = re.sub(r" {2,}", " ", re.sub(r'\s*""\s*', " ", " ".join(words)))
    return "#!/bin/bash\n\n" + line.strip()


@pytest.mark.parametrize("code", [0, 3])
def test_the_job_script_survives_the_htcondor_plugins_quoting(tmp_path, code):
    workdir = tmp_path / "work"
    workdir.mkdir()
    exit_dir = workdir / ".snakemake" / "interlink_exit"
    exit_dir.mkdir(parents=True)
    run = RunContext(
        run_id="r",
        namespace="ns",
        workdir=str(workdir),
        image="i",
        exit_dir=str(exit_dir),
    )
    command = (
        "printf '%s|%s\\n' \"$HOME\" `echo tick` > out.txt; "
        f"echo 'two  spaces' >> out.txt; sh -c 'exit {code}'"
    )
    settings = CheckedSettings(flavour="htcondor")
    manifest, _ = pod_for_job(spec(command=command), settings, run)
    argv = manifest["spec"]["containers"][0]["command"]
    executable = tmp_path / "job.sh"
    executable.write_text(htcondor_plugin_executable(argv))
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"  # `python` as in the image
    done = subprocess.run(
        ["bash", str(executable)],
        env={"HOME": "/home/job", "PATH": path},
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == code, done.stderr
    assert (workdir / "out.txt").read_text() == "/home/job|tick\ntwo  spaces\n"
    marker = (exit_dir / manifest["metadata"]["name"]).read_text()
    assert marker.split()[0] == str(code) and len(marker.split()) == 5


def test_a_plain_script_would_not_survive_it(tmp_path):
    """Why the encoding is needed: the same quoting breaks `$?` and quotes."""
    script = 'sh -c "exit 3"\nstatus=$?\necho $status > marker'
    executable = tmp_path / "job.sh"
    executable.write_text(htcondor_plugin_executable(["/bin/sh", "-c", script]))
    subprocess.run(["bash", str(executable)], cwd=tmp_path, check=False)
    marker = tmp_path / "marker"
    assert not marker.exists() or marker.read_text() != "3\n"


def test_htcondor_pods_bind_the_shared_directories_themselves(run):
    # the HTCondor plugin would copy hostPath volumes into the sandbox (outputs lost)
    plain = RunContext(run_id="r", namespace="ns", workdir="/data/project", image="i")
    settings = CheckedSettings(
        flavour="htcondor",
        binds=("/cvmfs",),
        annotations={"htcondor-job.vk.io/singularity-options": "--nv"},
    )
    manifest, _ = pod_for_job(spec(), settings, plain)
    assert "volumes" not in manifest["spec"]
    assert "volumeMounts" not in manifest["spec"]["containers"][0]
    options = manifest["metadata"]["annotations"][
        "htcondor-job.vk.io/singularity-options"
    ]
    assert options == "--nv --bind /data/project,/cvmfs"


def bash_words(line: str) -> list[str]:
    """The words the site's bash makes of `line`, as printf prints them."""
    done = subprocess.run(
        ["bash", "-c", f"printf '<%s>\\n' {line}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    "options",
    [
        "--cleanenv",
        "--containall --bind /home/ada/my-cohort,/cvmfs",
        "-c",
        "---c -cc",
        '--bind "/data/a-c b"',
        "--bind '/data/a-c b'",
        "\\-c",
        '"\\-c" "-\\c"',
        '--bind "/a-c"/b,"/x-c" \'/y-c\'z',
        "--nv",
    ],
)
def test_singularity_options_lose_every_dash_c_but_not_their_meaning(options):
    written = without_dash_c(options)
    assert "-c" not in written
    # the plugin also squeezes `""` and the spaces around it into one space
    cleaned = re.sub(r'\s*""\s*', " ", written)
    assert bash_words(cleaned) == bash_words(options)


def test_options_with_dash_c_leave_the_env_flags_separate_words(tmp_path):
    """The word after the options is the job's --env list: after a workdir or an
    option holding "-c", the plugin quoted it into one unknown flag (exit 255)."""
    obj = RunContext(
        run_id="r", namespace="ns", workdir="/home/ada/my-cohort", image="i"
    )
    settings = CheckedSettings(
        flavour="htcondor",
        annotations={"htcondor-job.vk.io/singularity-options": "--cleanenv"},
    )
    manifest, _ = pod_for_job(spec(), settings, obj)
    options = manifest["metadata"]["annotations"][
        "htcondor-job.vk.io/singularity-options"
    ]
    envs = "--env A=1 --env B=2 "
    for given, separate in ((options, True), ("--cleanenv", False)):
        executable = tmp_path / "job.sh"
        executable.write_text(
            htcondor_plugin_executable(["printf '<%s>\\n'", given, envs, "image"])
        )
        done = subprocess.run(
            ["bash", str(executable)], capture_output=True, text=True, check=True
        )
        flags = ["<--env>", "<A=1>", "<--env>", "<B=2>"]
        assert (done.stdout.splitlines()[-5:-1] == flags) is separate, done.stdout
    assert bash_words(options) == [
        "<--cleanenv>",
        "<--bind>",
        "</home/ada/my-cohort>",
    ]


HTCONDOR_ENV_VALUES = [
    "abc",
    "",
    "http://127.0.0.1:9000",
    "A/b+c=",
    "p@ss%w0rd-_.:",
    "with space",
    "$HOME",
    "a;b",
    "it's",
    'q"q',
    "a\\b",
    "a,b=c",
    "[1,2]",
    "*",
    "~x",
    "x&y",
    "`id`",
    "trailing-newline\n",
]


def test_the_env_values_htcondor_would_change_are_the_ones_named(tmp_path):
    """Through the plugin's bash line (real bash): a value not named arrives as it is,
    and has no comma, which singularity's --env would split."""
    named = set(env_changed_by_htcondor_line({v: v for v in HTCONDOR_ENV_VALUES}))
    for value in HTCONDOR_ENV_VALUES:
        envs = f'--env X="{value}" ' if value.startswith("[") else f"--env X={value} "
        executable = tmp_path / "job.sh"
        executable.write_text(
            htcondor_plugin_executable(["printf '<%s>\\n'", "", envs, "image"])
        )
        done = subprocess.run(
            ["bash", str(executable)], capture_output=True, text=True, cwd=tmp_path
        )
        arrives = done.stdout.splitlines() == ["<--env>", f"<X={value}>", "<image>"]
        if value not in named:
            assert arrives and "," not in value, (value, done.stdout)
    assert named == set(HTCONDOR_ENV_VALUES[5:])


def test_an_htcondor_rule_refuses_an_environment_it_would_change(run):
    obj = RunContext(
        **{**run.__dict__, "workdir": "/data/p", "env_changed_on_htcondor": ("TOKEN",)}
    )
    with pytest.raises(WorkflowError, match=r"Rule align: .*TOKEN"):
        pod_for_job(spec(), CheckedSettings(flavour="htcondor"), obj)
    pod_for_job(spec(), CheckedSettings(flavour="slurm"), obj)  # Slurm: an env file


def test_htcondor_refuses_a_shared_path_ending_in_a_newline(run):
    """A newline would end the plugin's bash line; `$` in a pattern matches before a
    final newline, so the check takes the whole path."""
    plain = RunContext(run_id="r", namespace="ns", workdir="/data/project", image="i")
    settings = CheckedSettings(flavour="htcondor", binds=("/cvmfs\n",))
    with pytest.raises(WorkflowError, match="on an HTCondor site"):
        pod_for_job(spec(), settings, plain)


def test_htcondor_refuses_shared_paths_its_bash_line_would_break(run):
    # run.workdir is "/data/project one": the plugin's bash line would split it
    with pytest.raises(WorkflowError, match="Rule align: on an HTCondor site"):
        pod_for_job(spec(), CheckedSettings(flavour="htcondor"), run)


@pytest.mark.parametrize(
    ("scratch_dir", "flavour", "volume", "parent"),
    [
        # interLink's --containall gives the job a 64 MiB /tmp shared with HOME: the
        # worker node's directory is bound instead (the testbed's sandbox showed jobs
        # failing with "No space left on device" beyond it)
        ("/tmp", "slurm", {"path": "/tmp", "type": "DirectoryOrCreate"}, "/tmp"),
        (
            "/scratch/my lab",
            "slurm",
            {"path": "/scratch/my lab", "type": "DirectoryOrCreate"},
            "'/scratch/my lab'",
        ),
        ("", "slurm", None, '"${TMPDIR:-/tmp}"'),
        ("/tmp", "htcondor", None, '"${TMPDIR:-/tmp}"'),  # HTCondor's own sandbox
    ],
)
def test_object_storage_scratch_dir_is_bound_from_the_worker_node(
    run, scratch_dir, flavour, volume, parent
):
    obj = RunContext(**{**run.__dict__, "shared_fs": False})
    settings = CheckedSettings(scratch_dir=scratch_dir, flavour=flavour)
    manifest, _ = pod_for_job(spec(), settings, obj)
    pod = manifest["spec"]
    volumes = [v["hostPath"] for v in pod.get("volumes", []) if v["name"] == "scratch"]
    assert volumes == ([volume] if volume else [])
    if volume:
        assert {"name": "scratch", "mountPath": scratch_dir} in pod["containers"][0][
            "volumeMounts"
        ]
    script = pod["containers"][0]["command"][2]
    if flavour == "htcondor":
        script = base64.b64decode(script.split()[-1]).decode()
    assert f"scratch=$(mktemp -d {parent}/snakejob.XXXXXX) || exit 1" in script


def test_shared_fs_mode_binds_the_scratch_dir_for_rules_tmpdir(run):
    """Snakemake's default tmpdir is /tmp: in the container's own 64 MiB session a
    rule's temporary files failed with "No space left on device" (testbed sandbox)."""
    manifest, _ = pod_for_job(spec(), CheckedSettings(), run)
    assert [v["name"] for v in manifest["spec"]["volumes"]] == ["scratch", "workdir"]
    script = manifest["spec"]["containers"][0]["command"][2]
    assert "mktemp" not in script
    manifest, _ = pod_for_job(spec(), CheckedSettings(scratch_dir=""), run)
    assert [v["name"] for v in manifest["spec"]["volumes"]] == ["workdir"]


def test_scratch_dir_must_be_absolute():
    with pytest.raises(ValueError, match="not an absolute path"):
        CheckedSettings(scratch_dir="scratch")
