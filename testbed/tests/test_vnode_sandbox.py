"""vk-slurm's `--sandbox bwrap`: the bubblewrap arguments and the job script (pure: nothing runs).

The sandbox itself is proven on the running testbed in test_vnode_sandbox_e2e.py.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from vnode import batch, jobfiles, sandbox, sbatch
from vnode.sandbox import Bind, Image

ROOT = "/cache/image-abc"
IMAGE = Image(
    ROOT,
    (
        (".singularity.d", None),
        ("bin", "usr/bin"),
        ("etc", None),
        ("opt", None),
        ("proc", None),
        ("root", None),
        ("tmp", None),
        ("usr", None),
        ("var", None),
    ),
    "/opt/snakemake/bin:/usr/bin:/bin",
)
SESSION = "/jobs/ns-u/session-main"


def mounts(args: list[str]) -> list[tuple[str, ...]]:
    """bwrap's operations as tuples: (option, its operands...)."""
    arity = {
        "--tmpfs": 1,
        "--proc": 1,
        "--dev": 1,
        "--remount-ro": 1,
        "--chdir": 1,
        "--bind": 2,
        "--ro-bind": 2,
        "--ro-bind-try": 2,
        "--symlink": 2,
    }
    ops, i = [], 0
    while i < len(args):
        n = arity.get(args[i], 0)
        ops.append(tuple(args[i : i + 1 + n]))
        i += 1 + n
    return ops


def test_root_is_the_image_read_only_with_proc_dev_and_the_session() -> None:
    ops = mounts(sandbox.bwrap_args(IMAGE, [], SESSION))
    assert ops[:4] == [("--die-with-parent",), ("--unshare-pid",), ("--unshare-ipc",), ("--tmpfs", "/")]
    assert ("--ro-bind", f"{ROOT}/usr", "/usr") in ops and ("--ro-bind", f"{ROOT}/etc", "/etc") in ops
    assert ("--symlink", "usr/bin", "/bin") in ops
    # the sandbox's own /proc, /dev, /tmp and HOME instead of the image's directories
    for name in ("proc", "tmp", "root"):
        assert ("--ro-bind", f"{ROOT}/{name}", f"/{name}") not in ops
    assert ("--proc", "/proc") in ops and ("--dev", "/dev") in ops
    assert ("--bind", f"{SESSION}/home", "/root") in ops
    assert ("--bind", f"{SESSION}/tmp", "/tmp") in ops
    assert ("--bind", f"{SESSION}/var_tmp", "/var/tmp") in ops
    assert ops[-2:] == [("--remount-ro", "/"), ("--chdir", "/root")]  # --containall: the working directory is HOME


def test_no_host_path_but_image_binds_session_and_apptainers_host_files() -> None:
    binds = [Bind("/shared/work", "/shared/work"), Bind("/refs", "/data", read_only=True)]
    args = sandbox.bwrap_args(IMAGE, binds, SESSION)
    sources = [op[1] for op in mounts(args) if op[0] in ("--bind", "--ro-bind", "--ro-bind-try")]
    allowed = (ROOT + "/", SESSION + "/", "/shared/work", "/refs", "/sys", *sandbox.HOST_FILES)
    assert all(source.startswith(allowed) for source in sources), sources
    assert ("--bind", "/shared/work", "/shared/work") in mounts(args)
    assert ("--ro-bind", "/refs", "/data") in mounts(args)
    # binds come after the session, so that a bind under /tmp or HOME lands inside it
    assert args.index("/shared/work") > args.index(f"{SESSION}/tmp")


def test_an_image_without_var_gets_no_var_tmp() -> None:
    image = Image(ROOT, (("usr", None),), "/usr/bin")
    assert "/var/tmp" not in sandbox.bwrap_args(image, [], SESSION)


@pytest.mark.parametrize(
    ("spec", "bind"),
    [
        ("/a", Bind("/a", "/a")),
        ("/a:/b", Bind("/a", "/b")),
        ("/a:/b:ro", Bind("/a", "/b", True)),
        ("/a:/b:rw", Bind("/a", "/b")),
        ("/a::ro", Bind("/a", "/a", True)),
    ],
)
def test_bind_specs_as_apptainer_reads_them(spec: str, bind: Bind) -> None:
    assert sandbox.parse_bind(spec) == bind


@pytest.mark.parametrize("spec", [":/b", "/a:b", "/a:/b:nosuid"])
def test_bad_bind_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        sandbox.parse_bind(spec)


def test_binds_of_the_singularity_mounts_annotation() -> None:
    words = "--bind /a:/b,/c -B /d:/e:ro --bind=/f --nv --other x"
    assert sandbox.binds_of_words(words) == [
        Bind("/a", "/b"),
        Bind("/c", "/c"),
        Bind("/d", "/e", True),
        Bind("/f", "/f"),
    ]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('export PATH="/opt/venv/bin:/usr/bin"\n', "/opt/venv/bin:/usr/bin"),
        ("#!/bin/sh\nexport PATH=/x:/y\n", "/x:/y"),
        ("", sandbox.DEFAULT_IMAGE_PATH),
        (None, sandbox.DEFAULT_IMAGE_PATH),
    ],
)
def test_image_path_from_its_environment_file(text: str | None, path: str) -> None:
    assert sandbox.image_path(text) == path


def test_load_image_reads_the_top_level_and_path(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / ".ready").touch()
    (tmp_path / sandbox.IMAGE_ENV_FILE).parent.mkdir(parents=True)
    (tmp_path / sandbox.IMAGE_ENV_FILE).write_text('export PATH="/opt/s/bin:/usr/bin"\n')
    image = sandbox.load_image(tmp_path)
    assert image.entries == ((".singularity.d", None), ("bin", "usr/bin"), ("usr", None))
    assert image.path == "/opt/s/bin:/usr/bin" and image.home == "/root"
    with pytest.raises(ValueError, match="not an image root"):
        sandbox.load_image(tmp_path / "usr")


def pod(volumes: list[dict[str, Any]], mounts_: list[dict[str, Any]], annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "annotations": annotations},
        "spec": {
            "volumes": volumes,
            "containers": [
                {
                    "name": "main",
                    "image": "docker://anything",
                    "workingDir": "/somewhere/else",
                    "command": ["/bin/sh", "-c", "echo hi"],
                    "volumeMounts": mounts_,
                }
            ],
        },
    }


def test_job_script_runs_the_container_in_the_sandbox_with_the_plugins_binds(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    manifest = pod(
        [
            {"name": "work", "hostPath": {"path": str(shared), "type": "Directory"}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "scratch", "emptyDir": {}},
        ],
        [
            {"name": "work", "mountPath": str(shared)},
            {"name": "cfg", "mountPath": "/config", "readOnly": True},
            {"name": "scratch", "mountPath": "/scratch"},
        ],
        {jobfiles.SINGULARITY_MOUNTS_ANNOTATION: "--bind /cvmfs:/cvmfs:ro"},
    )
    config = jobfiles.SandboxConfig(IMAGE, bwrap="/usr/bin/bwrap", unshare="/usr/bin/unshare")
    env = {"main": [("SECRET", "s3cr3t value")]}
    script, _ = jobfiles.write_job(tmp_path / "jobs", manifest, env, {"cfg": {"a.conf": "x"}}, sandboxed=config)
    job = script.parent
    text = (job / "job.sh").read_text()
    line = next(line for line in text.splitlines() if line.startswith("runCtn main sandbox "))
    words = shlex.split(line)
    assert words[3:5] == [str(job / "main_envfile.properties"), str(job / "session-main")]
    bwrap, command = words[5 : words.index("--")], words[words.index("--") + 1 :]
    assert command == ["/bin/sh", "-c", "echo hi"]
    binds = [
        op for op in mounts(bwrap) if op[0] in ("--bind", "--ro-bind") and op[1].startswith(("/cvmfs", str(tmp_path)))
    ]
    assert binds == [
        ("--bind", str(job / "session-main/home"), "/root"),
        ("--bind", str(job / "session-main/tmp"), "/tmp"),
        ("--bind", str(job / "session-main/var_tmp"), "/var/tmp"),
        ("--ro-bind", "/cvmfs", "/cvmfs"),  # the annotation's words come first on singularity's line
        ("--bind", str(shared), str(shared)),
        ("--ro-bind", str(job / "configMaps/cfg/a.conf"), "/config/a.conf"),  # one bind per file
        ("--bind", str(job / "emptyDirs/scratch"), "/scratch"),
    ]
    assert "/somewhere/else" not in text  # workingDir never reaches the command line
    assert "s3cr3t" not in text  # the env stays in its file
    assert "/usr/bin/bwrap" in text and "/usr/bin/unshare" in text
    assert "size=64m" in text and "PATH=/opt/snakemake/bin:/usr/bin:/bin HOME=/root" in text


def test_sandbox_function_keeps_home_and_passes_apptainers_always_passed_variables() -> None:
    text = sbatch.sandbox_function(IMAGE)
    assert 'if [[ $entry != HOME=* ]]; then kept+=("$entry"); fi' in text  # the pod cannot set HOME
    assert "for key in TERM http_proxy" in text
    assert 'env -i PATH=/opt/snakemake/bin:/usr/bin:/bin HOME=/root "${kept[@]}" bwrap "$@"' in text


def test_template_job_script_runs_containers_in_the_sandbox(tmp_path: Path) -> None:
    manifest = pod([], [], {})
    config = jobfiles.SandboxConfig(IMAGE)
    jobfiles.write_job(tmp_path, manifest, {}, {}, job_script_template=True, sandboxed=config)
    text = (tmp_path / "ns-u" / "jobScript.sh").read_text()
    assert "\nsandbox() {" in text and "\nsandbox - " in text


def test_bad_singularity_mounts_are_refused_at_create(tmp_path: Path) -> None:
    manifest = pod([], [], {jobfiles.SINGULARITY_MOUNTS_ANNOTATION: "--bind /a:relative"})
    with pytest.raises(jobfiles.ProviderError, match="testbed: bind '/a:relative'"):
        jobfiles.write_job(tmp_path, manifest, {}, {}, sandboxed=jobfiles.SandboxConfig(IMAGE))


def test_the_htcondor_flavour_has_no_bwrap_sandbox(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Slurm flavour"):
        batch.make_backend("htcondor", tmp_path, sandboxed=jobfiles.SandboxConfig(IMAGE))
    assert batch.make_backend("slurm", sandboxed=jobfiles.SandboxConfig(IMAGE)).sandboxed is not None  # type: ignore[attr-defined]
