"""Stand-in for `singularity exec` on the testbed's HTCondor execute node.

interLink's HTCondor plugin writes a bash executable whose last line is
`singularity exec [options] [--env NAME=value ...] [--bind ...] IMAGE COMMAND ARGS...`
(see condor.py). There is no container runtime in the testbed: the vk-htcondor agent
installs this file as /usr/local/bin/singularity in the HTCondor chroot (`install`), and
it does what users can observe of Apptainer 1.x without a container:

- the command line is parsed as Apptainer parses it (cobra/pflag, flags end at the first
  positional word, which is the image; cmd/internal/cli/action_flags.go): an unknown
  flag, a flag without its value, a missing command, an image that is not an image
  reference or an existing SIF/squashfs file or sandbox directory, a bind source that
  does not exist, an `--env` value that is not KEY=VALUE, or a command that is not found
  end the job with an error and exit code 255, before anything runs;
- `--env` is a string-to-string map: a value with one "=" is taken whole (commas
  included, surrounding double quotes trimmed); a value with several "=" is read as CSV,
  so a comma starts a new KEY=VALUE pair (pflag stringToString);
- the environment is the job's (HTCondor's TMPDIR, _CONDOR_*, ...) unless --cleanenv,
  --containall or --compat clear it; PATH is the "image's" (`container_path`, not the
  host's), HOME is the user's home from the password database (Apptainer binds it), or
  a fresh empty directory with --contain/--containall/--compat, which also start the
  command there instead of in the current directory (unless --cwd/--pwd); --env values
  come last and win;
- `--bind SRC:DST` cannot mount anything here: it is emulated by a symbolic link
  ./DST -> SRC below the current directory (HTCondor's sandbox), so a job finds a
  ConfigMap/Secret file at ./<mountPath>/<key> but NOT at /<mountPath>/<key>.

Not reproduced: the image (commands run from the host's files, PATH first), namespaces,
read-only binds, the container shell's second evaluation of --env values (Apptainer
evaluates them unless --no-eval), and the messages' exact wording.

This file must stay standalone (standard library only, no package imports): `install`
copies its source into the chroot, where it runs with the chroot's /usr/bin/python3.
"""

from __future__ import annotations

import csv
import os
import pwd
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FATAL_EXIT = 255  # Apptainer's sylog.Fatalf exit status; flag errors get the same here

# Apptainer 1.x exec flags (action_flags.go and the common flags it registers for
# actions): long name -> short name ("" when none). Value flags take an argument.
VALUE_FLAGS = {
    "add-caps": "",
    "app": "",
    "apply-cgroups": "",
    "authfile": "",
    "bind": "B",
    "blkio-weight": "",
    "blkio-weight-device": "",
    "containlibs": "",
    "cpu-shares": "",
    "cpus": "",
    "cpuset-cpus": "",
    "cpuset-mems": "",
    "cwd": "",
    "dmtcp-launch": "",
    "dmtcp-restart": "",
    "dns": "",
    "docker-host": "",
    "docker-password": "",
    "docker-username": "",
    "drop-caps": "",
    "env": "",
    "env-file": "",
    "fusemount": "",
    "home": "H",
    "hostname": "",
    "memory": "",
    "memory-reservation": "",
    "memory-swap": "",
    "mount": "",
    "network": "",
    "network-args": "",
    "no-mount": "",
    "overlay": "o",
    "pem-path": "",
    "pids-limit": "",
    "pwd": "",
    "scratch": "S",
    "security": "",
    "tmpdir": "",
    "vm-cpu": "",
    "vm-ip": "",
    "vm-ram": "",
    "workdir": "W",
}
BOOL_FLAGS = {
    "allow-setuid": "",
    "cleanenv": "e",
    "compat": "",
    "contain": "c",
    "containall": "C",
    "disable-cache": "",
    "docker-login": "",
    "fakeroot": "f",
    "ignore-fakeroot-command": "",
    "ignore-subuid": "",
    "ignore-userns": "",
    "ipc": "i",
    "keep-privs": "",
    "net": "n",
    "no-eval": "",
    "no-home": "",
    "no-https": "",
    "no-init": "",
    "no-nv": "",
    "no-privs": "",
    "no-rocm": "",
    "no-umask": "",
    "nohttps": "",
    "nv": "",
    "nvccli": "",
    "oom-kill-disable": "",
    "passphrase": "",
    "pid": "p",
    "rocm": "",
    "underlay": "",
    "unsquash": "",
    "userns": "u",
    "uts": "",
    "vm": "",
    "vm-err": "",
    "writable": "w",
    "writable-tmpfs": "",
}
_SHORT_VALUE = {short: name for name, short in VALUE_FLAGS.items() if short}
_SHORT_BOOL = {short: name for name, short in BOOL_FLAGS.items() if short}
TRANSPORTS = (
    "docker",
    "docker-archive",
    "docker-daemon",
    "oci",
    "oci-archive",
    "oras",
    "library",
    "shub",
    "http",
    "https",
)
SIF_MAGIC = b"SIF_MAGIC"
SQUASHFS_MAGIC = b"hsqs"


class Fatal(Exception):
    """Apptainer would stop here (exit 255) before running anything."""


@dataclass
class Invocation:
    """`singularity exec` as parsed."""

    image: str
    command: list[str]
    values: dict[str, list[str]] = field(default_factory=dict)  # value flag -> every value given
    flags: set[str] = field(default_factory=set)  # bool flags set to true
    env: dict[str, str] = field(default_factory=dict)  # --env, merged in order

    def value(self, name: str) -> str | None:
        given = self.values.get(name)
        return given[-1] if given else None


def _bool_value(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise Fatal(f'invalid argument "{text}" for "--{name}" flag: strconv.ParseBool: parsing "{text}": invalid syntax')


def env_pairs(text: str) -> dict[str, str]:
    """One --env value, as pflag's stringToString reads it."""
    count = text.count("=")
    if count == 0:
        raise Fatal(f'invalid argument "{text}" for "--env" flag: {text} must be formatted as key=value')
    if count == 1:
        items = [text.strip('"')]
    else:
        try:
            items = next(csv.reader([text]))
        except (csv.Error, StopIteration) as exc:
            raise Fatal(f'invalid argument "{text}" for "--env" flag: {exc}') from exc
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise Fatal(f'invalid argument "{text}" for "--env" flag: {item} must be formatted as key=value')
        pairs[key] = value
    return pairs


def parse(argv: list[str]) -> Invocation:
    """`singularity ARGV...` -> what Apptainer would run; raises Fatal."""
    if not argv or argv[0] != "exec":
        raise Fatal(f"the testbed's singularity stands in for `singularity exec` only, not {argv[:1]}")
    values: dict[str, list[str]] = {}
    flags: set[str] = set()
    env: dict[str, str] = {}

    def take_value(name: str, value: str) -> None:
        values.setdefault(name, []).append(value)
        if name == "env":
            env.update(env_pairs(value))

    words = argv[1:]
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-":
            break
        if word.startswith("--"):
            name, sep, inline = word[2:].partition("=")
            if name in VALUE_FLAGS:
                if sep:
                    take_value(name, inline)
                elif i + 1 < len(words):
                    i += 1
                    take_value(name, words[i])
                else:
                    raise Fatal(f"flag needs an argument: --{name}")
            elif name in BOOL_FLAGS:
                if not sep or _bool_value(name, inline):
                    flags.add(name)
                else:
                    flags.discard(name)
            else:
                raise Fatal(f"unknown flag: --{name}")
        else:
            shorts = word[1:]
            j = 0
            while j < len(shorts):
                short = shorts[j]
                if short in _SHORT_BOOL:
                    flags.add(_SHORT_BOOL[short])
                    j += 1
                elif short in _SHORT_VALUE:
                    rest = shorts[j + 1 :].removeprefix("=")
                    if rest:
                        take_value(_SHORT_VALUE[short], rest)
                    elif i + 1 < len(words):
                        i += 1
                        take_value(_SHORT_VALUE[short], words[i])
                    else:
                        raise Fatal(f"flag needs an argument: '{short}' in -{short}")
                    break
                else:
                    raise Fatal(f"unknown shorthand flag: '{short}' in {word}")
        i += 1
    positional = words[i:]
    if len(positional) < 2:
        raise Fatal(f"requires at least 2 arg(s), only received {len(positional)}")
    return Invocation(positional[0], positional[1:], values, flags, env)


def check_image(image: str) -> None:
    """An image reference Apptainer could use: a known transport, or an existing SIF or
    squashfs file or sandbox directory."""
    transport, sep, _ = image.partition("://")
    if sep:
        if transport not in TRANSPORTS:
            raise Fatal(f"could not open image {image}: unsupported transport type: {transport}")
        return
    path = Path(image)
    if not path.exists():
        raise Fatal(f"could not open image {image}: failed to retrieve path for {image}: lstat {image}: no such file")
    if path.is_dir():
        return
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise Fatal(f"could not open image {image}: {exc}") from exc
    if SIF_MAGIC not in head and not head.startswith(SQUASHFS_MAGIC):
        raise Fatal(f"could not open image {image}: image format not recognized")


def binds(invocation: Invocation) -> list[tuple[str, str]]:
    """(source, destination) of every --bind spec (comma-separated lists; empty items skipped)."""
    result = []
    for value in invocation.values.get("bind", []):
        for spec in value.split(","):
            if not spec:
                continue
            parts = spec.split(":")
            source = parts[0]
            destination = parts[1] if len(parts) > 1 and parts[1] else source
            result.append((source, destination))
    return result


def link_binds(pairs: list[tuple[str, str]], cwd: Path) -> None:
    """Sources must exist (Apptainer: "mount source ... doesn't exist"); each is linked at
    ./<destination> below `cwd`, the closest a process without a mount namespace gets."""
    for source, destination in pairs:
        if not os.path.exists(cwd / source):
            raise Fatal(
                f"container creation failed: mount hook function failure: mount {source}->{destination} error: "
                f"while mounting {source}: mount source {source} doesn't exist"
            )
    for source, destination in pairs:
        link = cwd / destination.lstrip("/")
        if link == cwd or os.path.lexists(link):
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.normpath(cwd / source))


def resolve_command(command: str, path: str) -> str:
    if "/" in command:
        if os.path.isfile(command) and os.access(command, os.X_OK):
            return command
        raise Fatal(f'"{command}": no such file or directory, or not executable')
    found = shutil.which(command, path=path)
    if found is None:
        raise Fatal(f'"{command}": executable file not found in $PATH')
    return found


def prepare(
    invocation: Invocation, environ: dict[str, str], cwd: Path, container_path: str, user_home: str | None = None
) -> tuple[str, list[str], dict[str, str], Path]:
    """(program, argv, environment, working directory) of the command; raises Fatal.
    `user_home`: the home directory Apptainer binds (default: the password database's)."""
    check_image(invocation.image)
    link_binds(binds(invocation), cwd)
    clean = bool(invocation.flags & {"cleanenv", "containall", "compat"})
    contained = bool(invocation.flags & {"contain", "containall", "compat"})
    env = {} if clean else dict(environ)
    if clean:
        env.update({k: environ[k] for k in ("LANG", "TERM") if k in environ})
    env.pop("PWD", None)
    env["PATH"] = container_path
    home_spec = invocation.value("home")
    workdir = cwd
    if home_spec:
        home = home_spec.split(":")[-1]
    elif contained:
        home = tempfile.mkdtemp(prefix="apptainer-home.", dir=cwd)
    else:
        home = user_home or pwd.getpwuid(os.getuid()).pw_dir
    if contained:
        workdir = Path(home)
    given = invocation.value("cwd") or invocation.value("pwd")
    if given:
        workdir = Path(given) if os.path.isabs(given) else cwd / given
    env["HOME"] = home
    env["APPTAINER_CONTAINER"] = env["SINGULARITY_CONTAINER"] = invocation.image
    env["APPTAINER_NAME"] = env["SINGULARITY_NAME"] = os.path.basename(invocation.image.rstrip("/"))
    env.update(invocation.env)
    program = resolve_command(invocation.command[0], env["PATH"])
    return program, invocation.command, env, workdir


def main(argv: list[str], container_path: str = DEFAULT_CONTAINER_PATH, user_home: str | None = None) -> int:
    try:
        invocation = parse(argv)
        program, args, env, workdir = prepare(invocation, dict(os.environ), Path.cwd(), container_path, user_home)
        os.chdir(workdir)
    except (Fatal, OSError) as exc:
        print(f"FATAL:   {exc}", file=sys.stderr)
        return FATAL_EXIT
    sys.stdout.flush()
    os.execve(program, args, env)
    return FATAL_EXIT  # not reached


def install(target: Path, container_path: str, python: str = "/usr/bin/python3", user_home: str | None = None) -> Path:
    """Write this module as an executable `singularity` at `target` (atomically).
    `user_home` replaces the password database's home directory (tests)."""
    source = Path(__file__).read_text()
    text = (
        f"#!{python} -I\n"
        "# Installed by the testbed's vk-htcondor agent (testbed/vnode/singularity.py): a stand-in\n"
        "# for `singularity exec`, without a container runtime.\n"
        f"{source}\n\n"
        'if __name__ == "__main__":\n'
        f"    sys.exit(main(sys.argv[1:], {container_path!r}, {user_home!r}))\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    tmp.replace(target)
    return target
