"""The slurm-job.vk.io/flags annotation, parsed as the interLink Slurm plugin does."""

from __future__ import annotations

import pytest

from vnode.flags import deduplicate, flag_key, flag_value, slurm_time_seconds, split_flags, split_shell_words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", []),
        ("--a b  c", ["--a", "b", "c"]),
        ("--comment 'two words' x", ["--comment", "two words", "x"]),
        ('--comment "say \\"hi\\""', ["--comment", 'say "hi"']),
        ("a\\ b", ["a b"]),
        ("'unbalanced quote", ["unbalanced quote"]),  # shlex would raise
        ("''", [""]),
        ("trailing\\", ["trailing\\"]),
    ],
)
def test_split_shell_words(text: str, words: list[str]) -> None:
    assert split_shell_words(text) == words


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ("--partition=gpu", ["--partition=gpu"]),
        ("--partition gpu", ["--partition gpu"]),
        ("-p gpu -t 10 --qos=high", ["-p gpu", "-t 10", "--qos=high"]),
        ("--comment 'a b' --exclusive", ["--comment a b", "--exclusive"]),  # quotes are lost when joined
        ("stray --mem 4G", ["stray", "--mem 4G"]),
        ("--gres=gpu:a100:2\n--account proj", ["--gres=gpu:a100:2", "--account proj"]),
    ],
)
def test_split_flags(text: str, flags: list[str]) -> None:
    assert split_flags(text) == flags


@pytest.mark.parametrize(
    ("flag", "key"),
    [
        ("--partition=gpu", "--partition"),
        ("-p gpu", "--partition"),
        ("-A proj", "--account"),
        ("-t 10", "--time"),
        ("-c 4", "--cpus-per-task"),
        ("-C a100", "--constraint"),
        ("-G 1", "--gpus"),
        ("-n 2", "--ntasks"),
        ("-N 1", "--nodes"),
        ("-pgpu", "-pgpu"),  # glued short options are not recognised
        ("--mem", "--mem"),
    ],
)
def test_flag_key(flag: str, key: str) -> None:
    assert flag_key(flag) == key


def test_later_duplicates_win_in_first_position() -> None:
    flags = ["--partition=cpu", "--time=10", "-p gpu", "--time 20", "--qos=x"]
    assert deduplicate(flags) == ["-p gpu", "--time 20", "--qos=x"]


@pytest.mark.parametrize(("flag", "value"), [("--time=10", "10"), ("-t 1-00:00", "1-00:00"), ("--exclusive", "")])
def test_flag_value(flag: str, value: str) -> None:
    assert flag_value(flag) == value


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10", 600),
        ("10:30", 630),
        ("1:00:00", 3600),
        ("2-0", 172800),
        ("1-2:3", 93780),
        ("1-2:3:4", 93784),
        ("UNLIMITED", None),
        ("nonsense", None),
    ],
)
def test_slurm_time_seconds(text: str, seconds: int | None) -> None:
    assert slurm_time_seconds(text) == seconds
