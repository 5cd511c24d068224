"""The container of a vk-slurm job: `singularity exec --containall` over an image root,
stood in for by bubblewrap (`--sandbox bwrap`).

What the Slurm plugin runs (interlink-slurm-plugin f8451d9, `pkg/slurm/prepare.go`
`prepareRuntimeCommand`, `prepareMounts`, `mountDataSimpleVolume`, `createEnvFile`; options
from `pkg/slurm/func.go`, default `--nv --no-eval --containall`):

    singularity exec --nv --no-eval --containall <singularity-mounts> <singularity-options>
        --env-file <dir>/<ctn>_envfile.properties --bind A:B --bind ... IMAGE command args

and what Apptainer makes of it (apptainer/apptainer 917d665,
`internal/pkg/runtime/engine/apptainer/container_linux.go`, `internal/pkg/runtime/launch/
launcher_linux.go` `setProcessCwd`, `internal/pkg/util/env/create.go`):

- the image's root read-only; `/proc`, a minimal `/dev`, `/sys`; the host's `/etc/hosts`,
  `/etc/localtime` and `/etc/resolv.conf`; nothing else of the host but the `--bind`s;
- one session tmpfs ("sessiondir max size", 64 MiB by default, applied to non-root callers,
  i.e. every site user) holding `$HOME`, `/tmp` and `/var/tmp` (`--contain`);
- the working directory is `$HOME` under `--contain` (`setProcessCwd`); `workingDir` of the
  pod never reaches the plugin's command line;
- a clean environment (`--cleanenv`): the image's PATH, HOME, TERM and the proxy variables
  when set (`alwaysPassKeys`), then the env file, where HOME cannot be overridden
  (`alwaysOmitKeys`) and PATH can;
- its own PID and IPC namespaces (`--containall` = `--contain --cleanenv --pid --ipc`).

bubblewrap gives each of those without a daemon, an image store or user namespaces (it runs
as root here, as Slurm's jobs do). The session tmpfs is mounted by `unshare -m` in the job
script before bwrap starts, so that HOME and /tmp share its 64 MiB as in Apptainer; bwrap
cannot bind a path of a tmpfs it mounted itself. The image root is laid out as a small
tmpfs `/` holding read-only binds of the image's top-level directories (and its symlinks),
remounted read-only at the end: bind destinations that the image lacks (a shared working
directory, /work/...) get their mount points there, as Apptainer's underlay creates them.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

SESSION_SIZE_MIB = 64  # apptainer.conf "sessiondir max size" default
IMAGE_ENV_FILE = ".singularity.d/env/10-docker2singularity.sh"  # a Docker image's ENV, as Apptainer keeps it
DEFAULT_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Apptainer's default PATH
# the host files Apptainer binds by default (apptainer.conf "bind path", "config resolv_conf")
HOST_FILES = ("/etc/hosts", "/etc/localtime", "/etc/resolv.conf")
# variables Apptainer passes even with --cleanenv (util/env/create.go alwaysPassKeys)
ALWAYS_PASSED = (
    "TERM",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "ftp_proxy",
    "FTP_PROXY",
)
# what the sandbox provides itself instead of the image's directory
_NOT_FROM_IMAGE = {"proc", "dev", "sys", "tmp", "root"}


@dataclass(frozen=True)
class Bind:
    """One `--bind src[:dest[:opts]]` (Apptainer's syntax; dest defaults to src)."""

    source: str
    destination: str
    read_only: bool = False


@dataclass(frozen=True)
class Image:
    """The image root and what the sandbox takes from it."""

    root: str
    entries: tuple[tuple[str, str | None], ...]  # top-level (name, symlink target or None for a directory)
    path: str  # the image's PATH
    home: str = "/root"  # the job's user's home (Slurm runs the jobs as root here)


def parse_bind(spec: str) -> Bind:
    """`src[:dest[:opts]]` as Apptainer reads one element of `--bind` (opts: ro or rw)."""
    parts = spec.split(":")
    if not parts[0]:
        raise ValueError(f"bind {spec!r}: no source")
    source = parts[0]
    destination = parts[1] if len(parts) > 1 and parts[1] else source
    options = parts[2].split(",") if len(parts) > 2 else []
    for option in options:
        if option not in ("ro", "rw"):
            raise ValueError(f"bind {spec!r}: unknown option {option!r}")
    if not destination.startswith("/"):
        raise ValueError(f"bind {spec!r}: the destination must be absolute")
    return Bind(source, destination, "ro" in options)


def binds_of_words(text: str) -> list[Bind]:
    """The binds in the words the plugin puts on singularity's command line: the
    `slurm-job.vk.io/singularity-mounts` annotation (e.g. `--bind /a:/b,/c`) and its own
    ` --bind A:B:rw ` words. Other options are not reproduced and are ignored."""
    words = shlex.split(text)
    binds: list[Bind] = []
    i = 0
    while i < len(words):
        word = words[i]
        value = None
        if word in ("--bind", "-B") and i + 1 < len(words):
            value = words[i + 1]
            i += 1
        elif word.startswith("--bind="):
            value = word.split("=", 1)[1]
        if value:
            binds += [parse_bind(spec) for spec in value.split(",") if spec]
        i += 1
    return binds


def image_path(env_text: str | None) -> str:
    """The image's PATH from its environment file (`export PATH="..."`), else Apptainer's default."""
    for match in re.finditer(r'^\s*export\s+PATH="?([^"\n]*)"?\s*$', env_text or "", re.MULTILINE):
        return match.group(1)
    return DEFAULT_IMAGE_PATH


def load_image(root: str | Path) -> Image:
    """Read the image root's top level and PATH (once, when the agent starts)."""
    root = Path(root)
    if not (root / "usr").is_dir():
        raise ValueError(f"{root}: not an image root (no usr/)")
    entries: list[tuple[str, str | None]] = []
    for entry in sorted(root.iterdir()):
        if entry.is_symlink():
            entries.append((entry.name, os.readlink(entry)))
        elif entry.is_dir():
            entries.append((entry.name, None))
    try:
        env_text = (root / IMAGE_ENV_FILE).read_text()
    except OSError:
        env_text = None
    return Image(str(root), tuple(entries), image_path(env_text))


def bwrap_args(image: Image, binds: list[Bind], session: str) -> list[str]:
    """bubblewrap's arguments (after the program, before `--` and the command) for one
    container: `session` is the host path of the mounted session tmpfs, with `home`, `tmp`
    and `var_tmp` in it. No host path but the binds, HOST_FILES and the session appears."""
    args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--tmpfs", "/"]
    for name, target in image.entries:
        if name in _NOT_FROM_IMAGE:
            continue
        if target is not None:
            args += ["--symlink", target, f"/{name}"]
        else:
            args += ["--ro-bind", f"{image.root}/{name}", f"/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev", "--ro-bind", "/sys", "/sys"]
    for path in HOST_FILES:
        args += ["--ro-bind-try", path, path]
    args += ["--bind", f"{session}/home", image.home, "--bind", f"{session}/tmp", "/tmp"]
    if any(name == "var" and target is None for name, target in image.entries):
        args += ["--bind", f"{session}/var_tmp", "/var/tmp"]
    for bind in binds:
        args += ["--ro-bind" if bind.read_only else "--bind", bind.source, bind.destination]
    args += ["--remount-ro", "/", "--chdir", image.home]
    return args
