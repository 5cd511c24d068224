"""The `slurm-job.vk.io/flags` annotation, parsed the way the interLink Slurm plugin does.

Shell words (quotes and backslashes respected, unbalanced quotes tolerated); a flag takes
the following words that do not start with "-" as its value, joined by one space; flags
are identified by their long name (short aliases mapped), and a later duplicate replaces
an earlier one in the position of the first.
"""

from __future__ import annotations

import re

ALIASES = {
    "-A": "--account",
    "-C": "--constraint",
    "-D": "--chdir",
    "-G": "--gpus",
    "-J": "--job-name",
    "-N": "--nodes",
    "-c": "--cpus-per-task",
    "-n": "--ntasks",
    "-o": "--output",
    "-p": "--partition",
    "-t": "--time",
    "-w": "--nodelist",
}


def split_shell_words(text: str) -> list[str]:
    """Split like a POSIX shell (no expansion). Unlike shlex, never raises on bad quoting."""
    words: list[str] = []
    current: list[str] = []
    started = in_single = in_double = escaping = False
    for char in text:
        if escaping:
            current.append(char)
            escaping = False
        elif char == "\\" and not in_single:
            escaping = started = True
        elif char == "'" and not in_double:
            in_single, started = not in_single, True
        elif char == '"' and not in_single:
            in_double, started = not in_double, True
        elif char.isspace() and not in_single and not in_double:
            if started:
                words.append("".join(current))
                current, started = [], False
        else:
            current.append(char)
            started = True
    if escaping:
        current.append("\\")
    if started:
        words.append("".join(current))
    return words


def split_flags(text: str) -> list[str]:
    """Group shell words into flags: `--partition gpu -t 10` -> ["--partition gpu", "-t 10"]."""
    words = [w.strip() for w in split_shell_words(text)]
    flags: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word:
            continue
        if not word.startswith("-"):
            flags.append(word)
            continue
        parts = [word]
        while i < len(words) and not words[i].startswith("-"):
            parts.append(words[i])
            i += 1
        flags.append(" ".join(parts))
    return flags


def flag_key(flag: str) -> str:
    """The long option a flag sets: "-p gpu" -> "--partition", "--mem=4G" -> "--mem"."""
    parts = split_shell_words(flag.strip())
    if not parts:
        return ""
    key = parts[0].split("=", 1)[0]
    return ALIASES.get(key, key)


def deduplicate(flags: list[str]) -> list[str]:
    """Keep the last value of each flag, at the position where the flag first appeared."""
    latest: dict[str, str] = {}
    for flag in flags:
        flag = flag.strip()
        key = flag_key(flag)
        if key:
            latest[key] = flag  # dicts keep first-insertion order
    return list(latest.values())


def flag_value(flag: str) -> str:
    """The value part of a flag: "--time=10" and "-t 10" -> "10"."""
    parts = split_shell_words(flag.strip())
    if not parts:
        return ""
    if "=" in parts[0]:
        return parts[0].split("=", 1)[1]
    return " ".join(parts[1:])


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def slurm_time_seconds(value: str) -> int | None:
    """Slurm --time syntax in seconds (None for UNLIMITED or unparsable values).

    Accepted: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (a bare number means minutes).
    """
    value = value.strip()
    match = _TIME.match(value)
    if not match:
        return None
    days, first, second, third = match.groups()
    if days is None:
        if second is None:
            return int(first) * 60
        if third is None:
            return int(first) * 60 + int(second)
        return int(first) * 3600 + int(second) * 60 + int(third)
    hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
    return int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
