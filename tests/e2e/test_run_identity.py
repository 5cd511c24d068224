"""A run adopts or removes only pods of runs its own directory started (runs.py): not
those of another user working at the same path, not those made for an edited rule."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from .conftest import Testbed, sacct, wait_until

# Runs a command in a mount namespace of its own where $0 is bind-mounted at $1 and
# the current directory is $1: the second JupyterHub user's /home/jovyan.
SECOND_USER = (
    "unshare",
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    'mount --bind "$0" "$1" && cd "$1" && shift && exec "$@"',
)


def test_another_users_run_at_the_same_path_never_touches_this_ones_pods(
    testbed: Testbed, tmp_path: Path
):
    """Users A and B both work in `home` (every JupyterHub user's /home/jovyan), in one
    namespace: A in this mount namespace, B in one where B's own directory is mounted
    over the same path. B is killed, then run again with --interlink-remove-orphans
    while A's job runs: B removes its own killed run's pod and nothing of A's.

    The virtual node runs every job on the host, where `home` is A's directory: B's
    jobs `cd` into A's directory there. So that they still do only what they would do
    on a site that sees B's directory, B's Snakefile and outputs live outside `home`
    (in `shared`, the same path for everyone): B's jobs read and write only those,
    and A's job writes only inside `home`. (B's exit-status files land in A's
    `.snakemake`, under B's pod names, which A never reads.) B's second run needs no
    pod of its own: its executor starts, finds its own directory's record of the
    killed run and handles that run's pod as an orphan at the end."""
    home, b_dir, shared = tmp_path / "home", tmp_path / "b-home", tmp_path / "shared"
    for folder in (home, b_dir, shared):
        folder.mkdir()
    (home / "Snakefile").write_text(
        'rule a:\n    output: "a.txt"\n    shell: "sleep 60; echo A > {output}"\n'
    )
    b_snakefile = shared / "Snakefile"
    b_snakefile.write_text(
        f'rule b:\n    output: "{shared}/b.txt"\n    shell: "sleep 600; touch {{output}}"\n'
        # local: the Slurm node's two CPUs hold A's job and B's killed one
        f'localrules: other\nrule other:\n    output: "{shared}/other.txt"\n'
        '    shell: "touch {output}"\n'
    )
    a = testbed.start_snakemake(
        home, "--envvars", "USER_A_TOKEN", env={"USER_A_TOKEN": "a"}
    )
    assert wait_until(lambda: testbed.submitted(1), timeout=90)
    (a_pod,) = (p["metadata"]["name"] for p in testbed.pods())
    (a_secret,) = (s["metadata"]["name"] for s in testbed.secrets())

    def b_snakemake(*args: str) -> list[str]:
        return [
            *SECOND_USER,
            str(b_dir),
            str(home),
            *testbed.command("-s", str(b_snakefile), *args),
        ]

    b = subprocess.Popen(
        b_snakemake("b"),
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    testbed.procs.append(b)
    assert wait_until(lambda: testbed.submitted(2), timeout=90)
    b.send_signal(signal.SIGKILL)
    b.wait(timeout=30)
    b_pod = next(
        p["metadata"]["name"] for p in testbed.pods() if p["metadata"]["name"] != a_pod
    )
    shutil.rmtree(b_dir / ".snakemake" / "locks")  # what `snakemake --unlock` does

    rerun = subprocess.run(
        b_snakemake("other", "--interlink-remove-orphans"),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(rerun.stdout[-3000:], rerun.stderr[-10000:], sep="\n")
    assert rerun.returncode == 0
    assert "removed 1 pod(s) of earlier runs" in rerun.stderr
    assert (shared / "other.txt").exists()
    pods = {p["metadata"]["name"]: p for p in testbed.pods()}
    assert b_pod not in pods or pods[b_pod]["metadata"].get("deletionTimestamp")
    assert a_pod in pods, "A's pod is untouched"
    assert not pods[a_pod]["metadata"].get("deletionTimestamp")
    assert a.poll() is None, "A's job still ran while B came and went"
    assert a_secret in {s["metadata"]["name"] for s in testbed.secrets()}

    out, _ = a.communicate(timeout=300)
    print(out[-5000:])
    assert a.returncode == 0
    assert (home / "a.txt").read_text() == "A\n"
    assert not list((home / ".snakemake" / "interlink" / "runs").iterdir()), (
        "A's record goes with its last pod"
    )


def test_an_edited_rule_is_not_adopted_and_its_old_pod_stops_first(
    testbed: Testbed, workdir: Path
):
    snakefile = 'rule work:\n    output: "out.txt"\n    shell: "{}"\n'
    (workdir / "Snakefile").write_text(
        snakefile.format("touch started; sleep 120; echo old > {output}")
    )
    proc = testbed.start_snakemake(workdir)
    # the job's own Snakemake reads the Snakefile when it starts: edited before that,
    # the old pod would run the new rule
    assert wait_until(lambda: (workdir / "started").exists(), timeout=120)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ((old_pod, old_job),) = (
        (p["metadata"]["name"], p["metadata"]["annotations"]["JobID"])
        for p in testbed.pods()
    )
    (workdir / "Snakefile").write_text(snakefile.format("echo new > {output}"))
    testbed.unlock(workdir)
    done = testbed.snakemake(workdir, timeout=300)
    assert done.returncode == 0
    assert "re-attached" not in done.stderr
    assert f"pod {old_pod} of an earlier run writes outputs of job" in done.stderr
    assert (workdir / "out.txt").read_text() == "new\n"
    state = sacct("-j", old_job, fields="State")  # "CANCELLED by 0", split in words
    assert state[:1] == ["CANCELLED"], (
        f"the old batch job was cancelled, not left writing out.txt: {state}"
    )
