"""vk-slurm's sandbox on the running testbed: real pods run `singularity exec --containall`'s
way in bubblewrap over the job image (TESTBED_SANDBOX=bwrap testbed/up.sh).

Opt-in (marker `testbed`): `pytest testbed/tests --testbed`; skipped when vk-slurm runs
without the sandbox. One pod probes everything (with interLink's status timing every pod
costs 10 s or more); each test reads its part of the probe's log.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from test_vnode_e2e import LABEL, _logs, pod_manifest, unique, wait_phase

from vnode.kube import Kube
from vnode.sandbox import ALWAYS_PASSED, SESSION_SIZE_MIB

pytestmark = [pytest.mark.testbed, pytest.mark.sandbox]

PROBE = r"""
say() { printf 'probe %s=%s\n' "$1" "$2"; }
say pwd "$(pwd)"
say home "$HOME"
say python "$(command -v python)"
python -c 'import snakemake, sys; print("probe snakemake=" + snakemake.__version__)'
python -c 'import sys; print("probe prefix=" + sys.prefix)'
say env "$(env | sed 's/=.*//' | sort | tr '\n' ' ')"
say probe_value "$PROBE_VALUE"
for path in "$UNBOUND" "$STATE" /work; do
  if [ -e "$path" ]; then say visible "$path"; else say invisible "$path"; fi
done
say bound "$(cat /data/marker)"
echo from-the-job >/data/written
python -c 'import os
for p in ("/tmp", os.environ["HOME"]):
    s = os.statvfs(p)
    print("probe fs %s=%d %d" % (p, s.f_blocks * s.f_frsize // 1024, os.stat(p).st_dev))'
if head -c 40M /dev/zero >/tmp/a; then say tmp40 ok; else say tmp40 full; fi
if head -c 40M /dev/zero >"$HOME/b" 2>/dev/null; then say home40 ok; else say home40 full; fi
if touch /in-the-image 2>/dev/null; then say root writable; else say root read-only; fi
"""


@pytest.fixture(scope="module")
def executor(testbed_env: dict[str, str]) -> Iterator[Kube]:
    if testbed_env.get("TESTBED_SANDBOX", "none") != "bwrap":
        pytest.fail("vk-slurm runs containers on the host (TESTBED_SANDBOX=bwrap testbed/up.sh turns the sandbox on)")
    kube = Kube(testbed_env["TESTBED_EXECUTOR_KUBECONFIG"])
    yield kube
    kube.request(
        "DELETE", f"/api/v1/namespaces/{testbed_env['TESTBED_NAMESPACE']}/pods", params={"labelSelector": LABEL}
    )
    kube.close()


@pytest.fixture(scope="module")
def probe(testbed_env: dict[str, str], executor: Kube, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Run the probe pod once: a bound hostPath (type Directory) at /data, a host directory
    beside it that is not bound, workingDir set to the bound directory, one env value."""
    base = tmp_path_factory.mktemp("sandbox")
    bound, unbound = base / "bound", base / "unbound"
    bound.mkdir()
    unbound.mkdir()
    (bound / "marker").write_text("host-file")
    ns = testbed_env["TESTBED_NAMESPACE"]
    name = unique("e2e-sandbox")
    manifest = pod_manifest(
        name,
        PROBE,
        container={
            "workingDir": str(bound),
            "env": [
                {"name": "PROBE_VALUE", "value": "it's $HOME"},
                {"name": "UNBOUND", "value": str(unbound)},
                {"name": "STATE", "value": testbed_env["TESTBED_STATE"]},
                {"name": "HOME", "value": "/pods/cannot/set/it"},
            ],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        },
        volumes=[{"name": "data", "hostPath": {"path": str(bound), "type": "Directory"}}],
    )
    executor.post(f"/api/v1/namespaces/{ns}/pods", manifest)
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    pod, _ = wait_phase(executor, path, ("Succeeded", "Failed"), timeout=240)
    logs = _logs(executor, path)
    assert pod["status"]["phase"] == "Succeeded", logs
    found: dict[str, object] = {"visible": [], "invisible": [], "logs": logs, "bound_dir": bound}
    for line in logs.splitlines():
        if not line.startswith("probe "):
            continue
        key, _, value = line[len("probe ") :].partition("=")
        if key in ("visible", "invisible"):
            found[key].append(value)  # type: ignore[union-attr]
        else:
            found[key] = value
    return found


def test_host_paths_not_bound_are_invisible(probe: dict[str, object], testbed_env: dict[str, str]) -> None:
    assert probe["visible"] == []
    assert len(probe["invisible"]) == 3  # type: ignore[arg-type]  # a sibling of the bound dir, the state dir, /work
    assert probe["root"] == "read-only"


def test_a_bound_host_path_is_visible_and_writable(probe: dict[str, object]) -> None:
    assert probe["bound"] == "host-file"
    assert (Path(str(probe["bound_dir"])) / "written").read_text() == "from-the-job\n"


def test_home_and_tmp_share_a_private_64_mib_tmpfs(probe: dict[str, object]) -> None:
    assert probe["home"] == "/root"  # the pod's HOME is not applied, as Apptainer refuses it
    tmp_size, tmp_dev = str(probe["fs /tmp"]).split()
    home_size, home_dev = str(probe["fs /root"]).split()
    assert int(tmp_size) == int(home_size) == SESSION_SIZE_MIB * 1024
    assert tmp_dev == home_dev  # one session for both: 40 MiB in /tmp leave no room for 40 more in HOME
    assert (probe["tmp40"], probe["home40"]) == ("ok", "full")


def test_the_environment_is_clean(probe: dict[str, object]) -> None:
    names = set(str(probe["env"]).split()) - {"PWD", "SHLVL", "OLDPWD", "_"} - set(ALWAYS_PASSED)
    assert names == {"PATH", "HOME", "PROBE_VALUE", "UNBOUND", "STATE"}, names  # no SLURM_*, no agent variables
    assert probe["probe_value"] == "it's $HOME"  # --no-eval: values as written


def test_working_dir_is_ignored_and_the_job_starts_in_home(probe: dict[str, object]) -> None:
    assert probe["pwd"] == "/root"


def test_the_jobs_python_is_the_images(probe: dict[str, object]) -> None:
    assert probe["python"] == "/opt/snakemake/bin/python"
    assert probe["prefix"] == "/opt/snakemake"
    assert probe["snakemake"] == metadata.version("snakemake")  # the image's Snakemake matches the submitting side
