"""Pod -> HTCondor job and job ad -> pod status, as interLink's HTCondor plugin does it
(interlink-htcondor-plugin handles.py, HEAD 6f5ee3e)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vnode import condor
from vnode.__main__ import main as vnode_main
from vnode.__main__ import parse_args
from vnode.condor import CondorJob, PluginCrash
from vnode.htcondor import HTCondorBackend, write_job
from vnode.jobfiles import ProviderError
from vnode.status import vk_merge


def ctn(name: str = "main", requests: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    resources: dict[str, Any] = {"limits": {"cpu": "64", "memory": "64Gi"}}  # never read
    if requests is not None:
        resources["requests"] = requests
    return {"name": name, "image": "busybox", "resources": resources, **extra}


def make_pod(*containers: dict[str, Any], annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "annotations": annotations or {}},
        "spec": {"containers": list(containers), **spec},
    }


# ---------------------------------------------------------------------- requests (l. 350-363)


@pytest.mark.parametrize(
    ("pod", "cpus"),
    [
        (make_pod(ctn(requests={"cpu": "2"})), 2),
        (make_pod(ctn("a", {"cpu": "1"}), ctn("b", {"cpu": "3"})), 4),  # summed, not the maximum
        (make_pod(ctn()), 1),  # no request: 1
        (make_pod(ctn(requests={"cpu": "0"})), 1),  # 0 becomes 1
        (make_pod(ctn(requests={"memory": "1Gi"})), 1),
        (make_pod(ctn("a", {"cpu": "2"}), initContainers=[ctn("i", {"cpu": "8"})]), 2),  # init ignored
    ],
    ids=["whole", "sum", "none", "zero", "memory-only", "init-ignored"],
)
def test_request_cpus_sums_whole_cpu_requests(pod: dict[str, Any], cpus: int) -> None:
    assert condor.request_cpus(pod) == cpus


# Kubernetes stores "1.5" as "1500m" and "1000m" as "1": what reaches the plugin is canonical
@pytest.mark.parametrize("value", ["500m", "100m", "1500m", "2.5"])
def test_fractional_or_milli_cpu_requests_make_the_plugin_crash(value: str) -> None:
    with pytest.raises(PluginCrash) as info:
        condor.request_cpus(make_pod(ctn(requests={"cpu": value})))
    crash = info.value
    assert crash.plugin_status == 500
    assert crash.exception == f"ValueError: invalid literal for int() with base 10: '{value}'"
    # Flask runs with debug=True: the answer is the Werkzeug debugger's page, markup-escaped
    assert f"<title>ValueError: invalid literal for int() with base 10: &#39;{value}&#39;" in crash.body
    assert "line 356, in produce_htcondor_singularity_script" in crash.body


@pytest.mark.parametrize(
    ("memory", "mb"),
    [
        ("500Mi", 500),
        ("2Gi", 2048),
        ("1G", 1000),
        ("129M", 129),
        ("512Ki", 0),  # int(0.5)
        ("2048Ki", 2),
        ("5000k", 5),
        ("1536Mi", 1536),  # how Kubernetes stores "1.5Gi"
        ("1.5Gi", 1),  # no match: 1 MB
        ("536870912", 1),  # plain bytes: 1 MB
        ("1Ti", 1),  # unknown suffix: 1 MB
        ("1e9", 1),
    ],
)
def test_memory_values_as_the_plugin_parses_them(memory: str, mb: int) -> None:
    assert condor.memory_mb(memory) == mb


@pytest.mark.parametrize(
    ("pod", "mb"),
    [
        (make_pod(ctn(requests={"memory": "300Mi"})), 300),
        (make_pod(ctn("a", {"memory": "1Gi"}), ctn("b", {"memory": "500Mi"})), 1524),  # summed
        (make_pod(ctn()), 1),
        (make_pod(ctn(requests={"memory": "512Ki"})), 1),  # a total of 0 becomes 1
    ],
    ids=["one", "sum", "none", "zero"],
)
def test_request_memory_sums_the_containers(pod: dict[str, Any], mb: int) -> None:
    assert condor.request_memory_mb(pod) == mb


# ---------------------------------------------------------------------- the command line (l. 365-382)


@pytest.mark.parametrize(
    ("image", "annotations", "expected"),
    [
        ("busybox", {}, "docker://busybox"),
        ("docker://busybox", {}, "docker://busybox"),  # not doubled
        ("/cvmfs/unpacked.cern.ch/img", {}, "/cvmfs/unpacked.cern.ch/img"),
        ("/images/x.sif", {condor.IMAGE_ROOT_ANNOTATION: "/data"}, "/data/images/x.sif"),
        ("/images/x.sif", {}, ""),  # no image-root: no image word at all
    ],
)
def test_image_word(image: str, annotations: dict[str, str], expected: str) -> None:
    pod = make_pod(ctn(image=image), annotations=annotations)
    assert condor.singularity_image(pod, pod["spec"]["containers"][0]) == expected


def test_env_words_are_one_unquoted_word() -> None:
    words = condor.env_words([("A", "1"), ("MSG", "hello world"), ("EMPTY", ""), ("LIST", '["x", "y"]')])
    assert words == '--env A=1 --env MSG=hello world --env EMPTY= --env LIST="["x", "y"]" '
    assert condor.env_words([]) == ""


def test_a_word_after_a_word_containing_dash_c_is_double_quoted() -> None:
    words = ["singularity", "exec", "", "", "", "docker://busybox", "/bin/sh", "-c", "echo $HOME", "x"]
    # the script gets quotes; so does the next word, whose predecessor (now quoted) contains -c only if
    # the script does: here it does not
    assert condor.dash_c_quoted(words)[8:] == ['"echo $HOME"', "x"]
    assert condor.dash_c_quoted(["sh", "-c", "a -c b", "x"]) == ["sh", "-c", '"a -c b"', '"x"']
    # not only -c itself: --containall, an image or a path that contains "-c" quote the next word
    assert condor.dash_c_quoted(["--containall", "--env A=1 "]) == ["--containall", '"--env A=1 "']
    assert condor.dash_c_quoted(["docker://x/snakemake-conda:1", "/bin/sh"])[1] == '"/bin/sh"'


@pytest.mark.parametrize(
    ("script", "line_end"),
    [
        ("echo $HOME", '-c "echo $HOME"'),
        ("echo 'a    b'", "-c \"echo 'a b'\""),  # runs of spaces collapse, quoted or not
        ('x=""\necho ok', '-c "x= echo ok"'),  # "" and the whitespace around it, newline included
        ("cd /w || exit 1\nrun\nstatus=$?", '-c "cd /w || exit 1\nrun\nstatus=$?"'),  # newlines stay
        ('echo "$x" y', '-c "echo "$x" y"'),  # inner quotes end the outer ones: bash reads $x
        ('echo "$x"', '-c "echo "$x'),  # a script ending in " ends in "": the pair is cleaned away
    ],
)
def test_command_line_is_joined_quoted_and_cleaned_the_plugins_way(script: str, line_end: str) -> None:
    pod = make_pod(ctn(command=["/bin/sh", "-c", script]))
    words = condor.singularity_words(pod, pod["spec"]["containers"][0], "", [])
    line = condor.command_line(words)
    assert line == "singularity exec docker://busybox /bin/sh " + line_end


def test_executable_bytes() -> None:
    pod = make_pod(ctn(command=["/bin/sh", "-c", "echo hi"]))
    words = condor.singularity_words(pod, pod["spec"]["containers"][0], condor.env_words([("A", "1")]), [])
    assert condor.render_executable(words) == (
        '#!/bin/bash\n\n\nsingularity exec --env A=1 docker://busybox /bin/sh -c "echo hi"'
    )
    assert condor.render_executable(words, "source /etc/profile  ") == (
        '#!/bin/bash\n\nsource /etc/profile\nsingularity exec --env A=1 docker://busybox /bin/sh -c "echo hi"'
    )


@pytest.mark.parametrize(
    ("container", "options", "line"),
    [
        (ctn(command=["python"], args=["-m", "x"]), "", "singularity exec docker://busybox python -m x"),
        (ctn(args=["echo", "a"]), "--nv", "singularity exec --nv docker://busybox echo a"),  # args alone: the command
        (ctn(), "--nv", "singularity exec docker://busybox"),  # neither: no command, no options word (l. 622)
        (ctn(command=["true"]), "--cleanenv", "singularity exec --cleanenv docker://busybox true"),
        # an option containing -c quotes the env word: singularity then sees "--env A=1 " as one word
        (
            ctn(command=["true"], env=[]),
            "--containall",
            'singularity exec --containall "--env A=1 " docker://busybox true',
        ),
    ],
)
def test_words_for_command_and_args(container: dict[str, Any], options: str, line: str) -> None:
    pod = make_pod(container, annotations={condor.SINGULARITY_OPTIONS_ANNOTATION: options} if options else None)
    envs = condor.env_words([("A", "1")]) if "env" in container else ""
    assert condor.command_line(condor.singularity_words(pod, container, envs, [])) == line


def test_host_mode_is_refused() -> None:
    with pytest.raises(condor.NotReproduced, match="host-script mode"):
        condor.check_reproducible(make_pod(ctn(image="localhost:5000/img"), ctn("b")))
    condor.check_reproducible(make_pod(ctn("a"), ctn("b", image="ghost")))  # only the first container's image


# ---------------------------------------------------------------------- mounts (l. 129-318, 581-599)


def test_mounts_config_map_secret_host_path() -> None:
    container = ctn(
        volumeMounts=[
            {"name": "cfg", "mountPath": "/etc/cfg"},
            {"name": "sec", "mountPath": "/etc/sec"},
            {"name": "wd", "mountPath": "/work"},
            {"name": "proj", "mountPath": "/proj"},
        ]
    )
    pod = make_pod(
        container,
        volumes=[
            {"name": "cfg", "configMap": {"name": "cm", "defaultMode": 0o644}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o600}},
            {"name": "wd", "hostPath": {"path": "/data/wd", "type": "Directory"}},
            {"name": "proj", "projected": {"sources": []}},  # ignored
        ],
    )
    data, files = condor.plugin_mounts(pod, container, "/j", {"cfg": {"k": "v"}, "sec": {"pw": "x y"}, "proj": {}})
    assert data == ["/j/configMaps/cfg/k:/etc/cfg/k", "/j/secrets/sec/pw:/etc/sec/pw", "/data/wd:/work"]
    assert files == [
        condor.VolumeFile("configMaps/cfg/k", "v", 0o644),
        condor.VolumeFile("secrets/sec/pw", base64.b64encode(b"x y").decode(), 0o600),  # the JSON's base64 text
    ]
    assert condor.input_files(data) == ["/j/configMaps/cfg/k", "/j/secrets/sec/pw", "/data/wd", ""]
    assert condor.bind_words(data) == ["--bind", "./k:/etc/cfg/k,./pw:/etc/sec/pw,./wd:/work,"]
    assert condor.input_files([]) == [""] and condor.bind_words([]) == [""]


def test_every_config_map_lands_in_every_config_map_volume() -> None:
    container = ctn(volumeMounts=[{"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/b"}])
    pod = make_pod(
        container, volumes=[{"name": "a", "configMap": {"name": "ca"}}, {"name": "b", "configMap": {"name": "cb"}}]
    )
    data, _ = condor.plugin_mounts(pod, container, "/j", {"a": {"x": "1"}, "b": {"y": "2"}})
    once = ["/j/configMaps/a/x:/a/x", "/j/configMaps/a/y:/a/y", "/j/configMaps/b/x:/b/x", "/j/configMaps/b/y:/b/y"]
    assert data == once + once  # mountConfigMaps is called once per configMap mount, and walks them all


@pytest.mark.parametrize(
    ("volume", "data", "error"),
    [
        ({"emptyDir": {}}, {}, "AttributeError: 'dict' object has no attribute 'name'"),
        ({"configMap": {"name": "cm"}}, {}, "KeyError: 'data'"),  # a ConfigMap without data
        ({"secret": {"secretName": "s"}}, {}, "KeyError: 'data'"),
    ],
    ids=["emptyDir", "empty-configmap", "empty-secret"],
)
def test_mounts_that_make_the_plugin_crash(volume: dict[str, Any], data: dict[str, str], error: str) -> None:
    container = ctn(volumeMounts=[{"name": "v", "mountPath": "/v"}])
    pod = make_pod(container, volumes=[{"name": "v", **volume}])
    with pytest.raises(PluginCrash) as info:
        condor.plugin_mounts(pod, container, "/j", {"v": data})
    assert info.value.exception == error


def test_cvmfs_binds_are_not_transferred() -> None:
    data = ["/cvmfs/sw.cern.ch/x:/sw"]
    assert condor.input_files(data) == [""]
    assert condor.bind_words(data) == ["--bind", "/x:/sw,"]


# ---------------------------------------------------------------------- submit description, create answer


def test_submit_description_has_the_plugins_lines() -> None:
    pod = make_pod(ctn(requests={"cpu": "2", "memory": "300Mi"}))
    text = condor.render_submit(pod, "/jobs/ns-u-1", "/jobs/ns-u-1/p-u-1.sh", ["/jobs/ns-u-1/a", "/d/wd", ""], 2, 300)
    lines = text.splitlines()
    assert lines[0].startswith("# pod ns/p uid u-1: interlink-htcondor-plugin 6f5ee3e")
    assert text.split("\n", 1)[1] == (
        "\nExecutable = /jobs/ns-u-1/p-u-1.sh\nInitialDir = /jobs/ns-u-1\n\n"
        "Log        = log/mm_mul.$(Cluster).$(Process).log\n"
        "Output     = out/mm_mul.out.$(Cluster).$(Process)\n"
        "Error      = err/mm_mul.err.$(Cluster).$(Process)\n\n"
        "transfer_input_files = /jobs/ns-u-1/a,/d/wd,\n"
        "should_transfer_files = YES\nRequestCpus = 2\nRequestMemory = 300\n\n"
        "when_to_transfer_output = ON_EXIT_OR_EVICT\n+MaxWallTimeMins = 60\n\n"
        '+WMAgent_AgentName = "whatever"\n\nQueue 1\n'
    )
    assert "transfer_input_files = \n" in condor.render_submit(pod, "/j", "/j/x.sh", [""], 1, 1)  # always there


@pytest.mark.parametrize(
    ("stdout", "job_id"),
    [
        ("Submitting job(s).\n1 job(s) submitted to cluster 42.\n", "42"),
        ("", ""),  # condor_submit printed its error on stderr only
        ("Submitting job(s)\n", "job(s)\n"),
    ],
)
def test_job_id_is_read_the_plugins_way(stdout: str, job_id: str) -> None:
    assert condor.plugin_job_id(stdout) == job_id


def test_head_create_answer_is_refused_by_the_vk() -> None:
    pod = make_pod(ctn())
    body = condor.create_body(pod, "42")
    assert body == (
        '{\n  "PodJID": "42",\n  "PodUID": "u-1",\n  "metadata": {\n    "name": "p",\n    "namespace": "ns",\n'
        '    "uid": "u-1"\n  }\n}\n'
    )
    message = condor.head_create_error(pod, "42", session=7)
    assert message.startswith("error doing createRequest() in RemoteExecution() return value  error detail ")
    inner = (
        "error creating pod (HTTP 201): HTTP InterLink session CreatePod#7:  call exit status: 500. Body: "
        + body.replace('"', "&#34;")  # interLink's API escapes the body (html.EscapeString)
    )
    assert message.endswith(" error: " + inner)
    assert message.count("(HTTP 201)") == 2


# ---------------------------------------------------------------------- write_job


def volume_pod(**container: Any) -> dict[str, Any]:
    return make_pod(
        ctn("first", requests={"cpu": "1"}, command=["/bin/false"]),
        ctn(
            requests={"cpu": "1", "memory": "100Mi"},
            volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}],
            **container,
        ),
        volumes=[{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 0o644}}],
    )


def test_write_job_writes_the_plugins_files(tmp_path: Path) -> None:
    pod = volume_pod(command=["/bin/sh", "-c", 'cat ./etc/cfg/key; echo "$A"'])
    submit = write_job(tmp_path, pod, {"first": [("F", "1")], "main": [("A", "x y")]}, {"cfg": {"key": "value"}})
    directory = submit.parent
    assert submit.name == "p-u-1.jdl"
    assert oct(directory.stat().st_mode & 0o7777) == "0o1777"
    executable = directory / "p-u-1.sh"
    assert oct(os.stat(executable).st_mode & 0o777) == "0o777"  # env values included
    # only the last container, its env unquoted, the -c script in double quotes
    assert executable.read_text() == (
        "#!/bin/bash\n\n\nsingularity exec --env A=x y --bind ./key:/etc/cfg/key, docker://busybox "
        '/bin/sh -c "cat ./etc/cfg/key; echo "$A'  # the final "" went with the cleaning
    )
    text = submit.read_text()
    assert f"transfer_input_files = {directory}/configMaps/cfg/key,\n" in text
    assert "RequestCpus = 2\n" in text and "RequestMemory = 100\n" in text  # both containers count
    assert (directory / "configMaps/cfg/key").read_text() == "value"
    assert not list(directory.glob("*_envfile.properties"))  # env goes into the executable, nowhere else
    assert all((directory / sub).is_dir() for sub in ("log", "out", "err"))


def test_write_job_fails_where_the_plugin_crashes(tmp_path: Path) -> None:
    bad = make_pod(ctn(requests={"cpu": "500m"}))
    with pytest.raises(ProviderError) as info:
        write_job(tmp_path, bad, {}, {})
    assert info.value.plugin_status == 500
    assert "invalid literal for int() with base 10: &#39;500m&#39;" in str(info.value)
    empty_dir = make_pod(ctn(volumeMounts=[{"name": "e", "mountPath": "/e"}]), volumes=[{"name": "e", "emptyDir": {}}])
    empty_dir["metadata"]["uid"] = "u-2"
    with pytest.raises(ProviderError, match="AttributeError"):
        write_job(tmp_path, empty_dir, {}, {})
    host = make_pod(ctn(image="myhost/img"))
    host["metadata"]["uid"] = "u-3"
    with pytest.raises(ProviderError, match="host-script mode"):
        write_job(tmp_path, host, {}, {})


# ---------------------------------------------------------------------- status from the job ad (l. 707-845)


NOW = "2026-01-01T00:00:00Z"


def terminated(code: int, reason: str) -> dict[str, Any]:
    return {
        "terminated": {
            "startedAt": "2026-01-01T00:00:10Z",
            "finishedAt": "2026-01-01T00:00:20Z",
            "exitCode": code,
            "reason": reason,
        }
    }


@pytest.mark.parametrize(
    ("job", "state", "ready"),
    [
        (CondorJob("7", condor.IDLE), {"waiting": {"reason": "ContainerCreating"}}, False),
        (
            CondorJob("7", condor.RUNNING, start_date=1767225610),
            {"running": {"startedAt": "2026-01-01T00:00:10Z"}},
            True,
        ),
        (CondorJob("7", condor.RUNNING), {"running": {"startedAt": NOW}}, True),  # no JobStartDate: now
        (CondorJob("7", condor.COMPLETED, 0, "", 1767225610, 1767225620), terminated(0, "Completed"), False),
        (CondorJob("7", condor.COMPLETED, 3, "", 1767225610, 1767225620), terminated(3, "Completed"), False),
        (
            CondorJob("7", condor.COMPLETED, None, "", 1767225610, 1767225620),
            terminated(0, "Completed"),
            False,
        ),  # killed by a signal: no ExitCode, read as 0
        (CondorJob("7", condor.REMOVED, None, "", 1767225610, 1767225620), terminated(0, "Cancelled"), False),
        (
            CondorJob("7", condor.HELD, hold_reason="via condor_hold (by user root)"),
            {"waiting": {"reason": "JobHeld", "message": "via condor_hold (by user root)"}},
            False,
        ),
        (CondorJob("7", condor.HELD), {"waiting": {"reason": "JobHeld", "message": "Job held by HTCondor"}}, False),
        (CondorJob("7", 6), {"waiting": {"reason": "Unknown"}}, False),  # transferring output
    ],
    ids=["idle", "running", "running-no-date", "ok", "exit-3", "signal", "removed", "held", "held-no-reason", "other"],
)
def test_container_statuses_from_the_job_ad(job: CondorJob, state: dict[str, Any], ready: bool) -> None:
    (status,) = condor.container_statuses(["main"], job, NOW) or []
    assert status["state"] == state
    assert status["ready"] is ready


def test_every_container_gets_the_jobs_state_and_unknown_jobs_keep_the_status() -> None:
    statuses = condor.container_statuses(["a", "b"], CondorJob("7", condor.RUNNING), NOW) or []
    assert [s["name"] for s in statuses] == ["a", "b"]
    assert statuses[0]["state"] == statuses[1]["state"]
    assert condor.container_statuses(["a"], None, NOW) is None


PENDING = {"phase": "Pending", "conditions": [], "containerStatuses": []}


@pytest.mark.parametrize(
    ("job", "phase", "reason"),
    [
        (CondorJob("7", condor.IDLE), "Pending", None),
        (CondorJob("7", condor.HELD, hold_reason="x"), "Pending", None),  # held: stays Pending
        (CondorJob("7", condor.RUNNING), "Running", "Running"),
        (CondorJob("7", condor.COMPLETED, 0), "Succeeded", "Completed"),
        (CondorJob("7", condor.COMPLETED, 2), "Failed", "Error: 2"),
        (CondorJob("7", condor.REMOVED), "Succeeded", "Completed"),  # condor_rm'd: Succeeded
    ],
    ids=["idle", "held", "running", "ok", "exit-2", "removed"],
)
def test_pod_phase_after_the_vk_folds_the_answer_in(job: CondorJob, phase: str, reason: str | None) -> None:
    status = vk_merge(PENDING, condor.container_statuses(["main"], job, NOW) or [])
    assert status["phase"] == phase
    assert status.get("reason") == reason


def test_job_ad_parsing() -> None:
    ad = {"ClusterId": 12, "JobStatus": 4, "ExitCode": 3, "JobStartDate": 10, "CompletionDate": 20, "HoldReason": None}
    assert CondorJob.from_ad(ad) == CondorJob("12", 4, 3, "", 10, 20)
    assert CondorJob.from_ad({"ClusterId": 5, "JobStatus": 5, "HoldReason": "why"}) == CondorJob("5", 5, None, "why")


# ---------------------------------------------------------------------- the backend and its options


def fake_chroot(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("tester:x:1000:1000::/home/tester:/bin/sh\n")
    return root


def test_backend_installs_the_singularity_stand_in_and_answers_as_its_build(tmp_path: Path) -> None:
    root = fake_chroot(tmp_path)
    working = HTCondorBackend(root, container_path="/venv/bin:/usr/bin")
    installed = root / "usr/local/bin/singularity"
    text = installed.read_text()
    assert os.access(installed, os.X_OK) and text.startswith("#!/usr/bin/python3 -I\n")
    assert "main(sys.argv[1:], '/venv/bin:/usr/bin', None)" in text
    compile(text, str(installed), "exec")
    pod = make_pod(ctn())
    assert working.create_refusal(pod, "42") is None
    refusal = HTCondorBackend(root, plugin_build="head").create_refusal(pod, "42")
    assert refusal is not None and "(HTTP 201)" in refusal and "&#34;PodJID&#34;: &#34;42&#34;" in refusal
    with pytest.raises(ValueError, match="plugin build"):
        HTCondorBackend(root, plugin_build="0.3.7")


def test_backend_reads_the_job_id_the_plugins_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = HTCondorBackend(fake_chroot(tmp_path))
    calls: list[list[str]] = []
    answer = [0, "", ""]

    def run(argv: list[str], as_owner: bool = False, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, answer[0], answer[1], answer[2])

    monkeypatch.setattr(backend, "_run", run)
    answer[:] = [0, "Submitting job(s).\n1 job(s) submitted to cluster 42.\n", ""]
    assert backend.submit(tmp_path, tmp_path / "p.jdl", None) == "42"
    answer[:] = [1, "", "ERROR: Failed to open command file"]
    assert backend.submit(tmp_path, tmp_path / "p.jdl", None) == ""  # no error: a job id naming no job
    calls.clear()
    assert backend.query(["", "job(s)\n"]) == {}  # the plugin's 404: the VK keeps the status
    backend.cancel("")  # the plugin's int("") fails before condor_rm
    assert calls == []


def test_plugin_build_option_and_the_old_logs_option(tmp_path: Path) -> None:
    base = ["--kubeconfig", "k", "--state-dir", str(tmp_path)]
    assert parse_args(base).plugin_build == "working"
    assert parse_args([*base, "--batch", "htcondor", "--plugin-build", "head"]).plugin_build == "head"
    with pytest.raises(SystemExit, match="--logs-not-implemented is gone"):
        vnode_main([*base, "--logs-not-implemented"])
