"""The `singularity exec` stand-in of the HTCondor node, and the plugin's executable run
through it with bash: what a job at an HTCondor-plugin site sees of its command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vnode import condor, singularity
from vnode.singularity import Fatal, parse


def test_parse_flags_image_and_command() -> None:
    inv = parse(["exec", "--nv", "-B", "a:/a", "--bind=b:/b", "--env", "A=1", "-Ce", "docker://x", "sh", "-c", "x"])
    assert inv.image == "docker://x" and inv.command == ["sh", "-c", "x"]
    assert inv.values["bind"] == ["a:/a", "b:/b"]
    assert inv.flags == {"nv", "containall", "cleanenv"}
    assert inv.env == {"A": "1"}
    # flags end at the image: what follows belongs to the command
    assert parse(["exec", "img", "--env", "X=1"]).command == ["--env", "X=1"]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["exec", "--bogus", "docker://x", "true"], "unknown flag: --bogus"),
        (["exec", "-Z", "docker://x", "true"], "unknown shorthand flag: 'Z'"),
        (["exec", "docker://x"], "requires at least 2 arg(s), only received 1"),
        (["exec", "--env"], "flag needs an argument: --env"),
        (["exec", "--env", "NOVALUE", "docker://x", "true"], "must be formatted as key=value"),
        (["exec", "--env", "A=1=2,b", "docker://x", "true"], "b must be formatted as key=value"),
        (["run", "docker://x"], "stands in for"),
        # one word holding several flags (the env word quoted after an option containing -c)
        (["exec", "--containall", "--env A=1 ", "docker://x", "true"], "unknown flag: --env A"),
    ],
)
def test_parse_errors(argv: list[str], error: str) -> None:
    with pytest.raises(Fatal, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse(argv)


@pytest.mark.parametrize(
    ("value", "pairs"),
    [
        ("A=1,2", {"A": "1,2"}),  # one "=": the whole value, commas included
        ('"A=x"', {"A": "x"}),  # surrounding double quotes trimmed
        ("A=1,B=2", {"A": "1", "B": "2"}),  # several "=": CSV
        ("A=x=y", {"A": "x=y"}),
        ("A=", {"A": ""}),
    ],
)
def test_env_values_are_a_string_to_string_map(value: str, pairs: dict[str, str]) -> None:
    assert singularity.env_pairs(value) == pairs


def test_image_checks(tmp_path: Path) -> None:
    singularity.check_image("docker://busybox")
    singularity.check_image(str(tmp_path))  # a sandbox directory
    sif = tmp_path / "x.sif"
    sif.write_bytes(b"#!/usr/bin/env run-singularity\nSIF_MAGIC0001")
    singularity.check_image(str(sif))
    with pytest.raises(Fatal, match="image format not recognized"):
        singularity.check_image("/bin/sh")  # what the command becomes without an image word
    with pytest.raises(Fatal, match="no such file"):
        singularity.check_image(str(tmp_path / "missing.sif"))
    with pytest.raises(Fatal, match="unsupported transport"):
        singularity.check_image("ftp://x")


def test_prepare_environment_binds_and_home(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("v")
    inv = parse(["exec", "--env", "A=1", "--bind", "./key:/etc/cfg/key,", "docker://x", "sh", "-c", "true"])
    program, argv, env, workdir = singularity.prepare(
        inv, {"TMPDIR": "/scratch", "PATH": "/host", "A": "0"}, tmp_path, "/img/bin:/usr/bin:/bin"
    )
    assert program.endswith("/sh") and argv == ["sh", "-c", "true"]
    assert env["PATH"] == "/img/bin:/usr/bin:/bin" and env["TMPDIR"] == "/scratch" and env["A"] == "1"
    assert env["HOME"] == os.path.expanduser("~") and workdir == tmp_path
    assert (tmp_path / "etc/cfg/key").read_text() == "v"  # the bind, as a link below the sandbox
    clean = parse(["exec", "--containall", "docker://x", "true"])
    _, _, env, workdir = singularity.prepare(clean, {"TMPDIR": "/scratch", "LANG": "C"}, tmp_path, "/usr/bin:/bin")
    assert "TMPDIR" not in env and env["LANG"] == "C"
    assert workdir == Path(env["HOME"]) and workdir.parent == tmp_path and not any(workdir.iterdir())
    with pytest.raises(Fatal, match=r"mount source \./nope doesn't exist"):
        singularity.prepare(parse(["exec", "-B", "./nope:/x", "docker://x", "true"]), {}, tmp_path, "/usr/bin")
    with pytest.raises(Fatal, match="executable file not found"):
        singularity.prepare(parse(["exec", "docker://x", "no-such-command"]), {}, tmp_path, "/usr/bin:/bin")


# ---------------------------------------------------------------------- the plugin's executable, run


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """An HTCondor sandbox with the stand-in `singularity` on the PATH bash will use."""
    bin_dir = tmp_path / "bin"
    (tmp_path / "home").mkdir()
    singularity.install(
        bin_dir / "singularity", "/usr/bin:/bin", python=sys.executable, user_home=str(tmp_path / "home")
    )
    directory = tmp_path / "sandbox"
    directory.mkdir()
    return directory


def run_job(
    sandbox: Path, pod: dict[str, Any], env: list[tuple[str, str]] | None = None
) -> subprocess.CompletedProcess:
    containers = pod["spec"]["containers"]
    words: list[str] = []
    for container in containers:  # the plugin's loop: the last container's words win
        words = condor.singularity_words(pod, container, condor.env_words(env or []), [])
    executable = sandbox / "condor_exec.exe"
    executable.write_text(condor.render_executable(words))
    executable.chmod(0o777)
    path = f"{sandbox.parent / 'bin'}:/usr/bin:/bin"
    job_env = {"PATH": path, "TMPDIR": str(sandbox), "_CONDOR_SCRATCH_DIR": str(sandbox)}
    return subprocess.run(
        [str(executable)], cwd=sandbox, env=job_env, capture_output=True, text=True, timeout=30, check=False
    )


def sh_pod(*scripts: str) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": "busybox", "command": ["/bin/sh", "-c", s]} for i, s in enumerate(scripts)]
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"containers": containers}}


def test_only_the_last_container_runs(sandbox: Path) -> None:
    done = run_job(sandbox, sh_pod("echo first > first", "echo last > last; exit 4"))
    assert done.returncode == 4
    assert (sandbox / "last").exists() and not (sandbox / "first").exists()


def test_the_outer_bash_reads_the_script(sandbox: Path) -> None:
    # $? is the outer bash's (0) and $status the outer bash's (unset): a failed command exits 0
    done = run_job(sandbox, sh_pod('false\nstatus=$?\necho "[$status]" > seen\nexit $status'))
    assert done.returncode == 0, done.stderr
    assert (sandbox / "seen").read_text() == "[]\n"  # `status=0` ran, but "$status" was expanded outside
    # $(...) runs in the outer bash, before singularity; "$d" in the script is the outer, unset $d
    done = run_job(sandbox, sh_pod('d=$(mktemp -d "$TMPDIR/s.XXXX") || exit 1\ncd "$d" || exit 1\npwd > where'))
    assert done.returncode == 0, done.stderr
    home = sandbox.parent / "home"
    assert (home / "where").read_text() == f"{home}\n"  # `cd ""` is `cd`: the command ran in $HOME
    assert list(sandbox.glob("s.*"))  # the directory was made by the outer bash, in the sandbox


def test_a_script_ending_in_a_double_quote_loses_it(sandbox: Path) -> None:
    # "echo "x y"" -> the final "" is cleaned away -> "echo "x y: two words, `sh -c 'echo x' y`
    done = run_job(sandbox, sh_pod('echo "x y"'))
    assert done.returncode == 0 and done.stdout == "x\n", done.stderr


def test_env_values_are_split_and_expanded_by_bash(sandbox: Path) -> None:
    done = run_job(sandbox, sh_pod("printenv A > a"), [("A", "$HOME/x")])
    assert done.returncode == 0, done.stderr
    assert (sandbox / "a").read_text() == "/x\n"  # the outer bash has no HOME: $HOME was empty
    done = run_job(sandbox, sh_pod("true"), [("MSG", "hello world")])
    assert done.returncode == singularity.FATAL_EXIT  # "world" is taken as the image
    assert "could not open image world" in done.stderr


def test_env_of_the_job_reaches_the_command(sandbox: Path) -> None:
    # (no $ in the script: the outer bash would expand it; \$A would reach the container as $A)
    done = run_job(sandbox, sh_pod("printenv A TMPDIR PATH HOME > env"), [("A", "1")])
    out = (sandbox / "env").read_text()
    assert done.returncode == 0, done.stderr
    assert out == f"1\n{sandbox}\n/usr/bin:/bin\n{sandbox.parent / 'home'}\n"
