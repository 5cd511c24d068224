"""A job's Snakemake arguments: every wildcard value and file name reaches the job's
Snakemake as it was, read back by Snakemake's own parser, or the job is refused."""

import json
import shlex
import subprocess
import sys
from types import SimpleNamespace

import pytest
from snakemake.cli import get_argument_parser
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.utils import (
    TargetSpec,
    encode_target_jobs_cli_args,
    format_cli_arg,
    join_cli_args,
)

from snakemake_executor_plugin_interlink.executor import Executor
from snakemake_executor_plugin_interlink.jobargs import check_target_jobs, shell_words

RUNNABLE = [
    "plain",
    "a'b\"c",
    "a'b\"c $x",  # issue 12: "Unterminated quoted string"
    "it's $HOME",
    'say "hi" to $USER',
    "`date` $(id) ${HOME}",
    "back\\slash \\n \\' end",
    "tab\there",
    "two\nlines",
    "naïve ü 日本語",
    "zero\u200bwidth \x1b escape",
    "a=b=c",
    "key:value",
    "*?[glob] ~tilde #hash",
    "semi;colon & pipe | !bang",
    "-dash",
    "",
]
REFUSED = ["a,b", "'quoted'", '"quoted"', "trailing'", '"leading']


def snakemake_job_args(specs: list[TargetSpec], files: list[str]) -> str:
    """The job arguments as Snakemake writes them (RealExecutor.get_job_args and
    RemoteExecutor's --wait-for-files), with the functions it writes them with."""
    return join_cli_args(
        [
            format_cli_arg("--target-jobs", encode_target_jobs_cli_args(specs)),
            format_cli_arg(
                "--allowed-rules", sorted({s.rulename for s in specs}), quote=False
            ),
            format_cli_arg("--cores", "all"),
            format_cli_arg("--attempt", 1),
            format_cli_arg("--unneeded-temp-files", files),
            format_cli_arg("--wait-for-files", files),
        ]
    )


def argv_through_sh(words: str) -> subprocess.CompletedProcess:
    """What /bin/sh, as in the job's container, makes of the words."""
    print_argv = "import json,sys; print(json.dumps(sys.argv[1:]))"
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(print_argv)} {words}"
    return subprocess.run(
        ["/bin/sh", "-c", command],
        env={"HOME": "/home/job", "USER": "job", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def snakemake_cli():
    return get_argument_parser()


@pytest.mark.parametrize("value", RUNNABLE)
def test_wildcards_and_files_reach_the_jobs_snakemake_unchanged(value, snakemake_cli):
    single = [TargetSpec("make", {"w": value})]
    group = [
        TargetSpec("first", {"w": value, "n": "1"}),
        TargetSpec("second", {"n": "2", "w": value}),
    ]
    for specs in (single, group):
        files = [f"in/{value}.txt", f"mid/{value}"]
        check_target_jobs(specs)
        sh = argv_through_sh(shell_words(snakemake_job_args(specs, files)))
        assert sh.returncode == 0, sh.stderr
        args = snakemake_cli.parse_args(json.loads(sh.stdout))
        assert args.target_jobs == specs
        assert args.wait_for_files == args.unneeded_temp_files == set(files)
        assert args.attempt == 1


def test_snakemakes_own_words_break_or_change_such_values():
    """Why: Snakemake writes them with `repr` (snakemake-interface-executor-plugins
    9.4), which is no shell quoting."""
    issue = snakemake_job_args([TargetSpec("make", {"w": "a'b\"c $x"})], [])
    assert issue == (
        "--target-jobs 'make:w=a\\'b\"c $x' --allowed-rules make --cores 'all' "
        "--attempt 1"
    )
    broken = argv_through_sh(issue)
    assert broken.returncode == 2 and "nterminated" in broken.stderr
    for value in ("it's $HOME", "back\\slash"):
        words = snakemake_job_args([TargetSpec("make", {"w": value})], [])
        assert json.loads(argv_through_sh(words).stdout)[1] != f"make:w={value}"


@pytest.mark.parametrize("value", REFUSED)
def test_values_snakemakes_parser_changes_are_refused_naming_rule_and_wildcard(
    value, snakemake_cli
):
    specs = [TargetSpec("fine", {"w": "ok"}), TargetSpec("make", {"w": value})]
    with pytest.raises(WorkflowError) as refused:
        check_target_jobs(specs)
    message = str(refused.value)
    assert message.startswith(f"Rule make: the value {value!r} of wildcard w ")
    assert "cannot be passed to the job" in message
    # what the job's Snakemake would have done with it: another job, or an error
    words = shell_words(snakemake_job_args(specs, []))
    try:
        parsed = snakemake_cli.parse_args(shlex.split(words)).target_jobs
    except ValueError:
        return
    assert parsed != specs


def test_jobs_without_wildcards_pass():
    check_target_jobs([TargetSpec("all", {})])
    assert shell_words(snakemake_job_args([TargetSpec("all", {})], [])) == (
        "--target-jobs all: --allowed-rules all --cores all --attempt 1"
    )


@pytest.mark.parametrize(
    "args",
    [
        "--target-jobs 'make:w=it'\"'\"'s'",  # shell-quoted already
        "--target-jobs 'make:w=it\\'s'",  # `repr` writes "make:w=it's"
        "--wait-for-files 'a\\qb'",  # an escape `repr` never writes
        "--target-jobs 'unterminated",
    ],
)
def test_words_not_written_by_repr_are_left_as_they_are(args):
    assert shell_words(args) == args


def test_the_executor_quotes_the_job_arguments_and_refuses_before_the_spec(
    monkeypatch,
):
    written = snakemake_job_args([TargetSpec("make", {"w": "a'b\"c $x"})], [])
    monkeypatch.setattr(RemoteExecutor, "get_job_args", lambda self, job: written)
    executor = Executor.__new__(Executor)  # no cluster: only what jobs run as
    assert executor.get_job_args(None) == shell_words(written) != written
    job = SimpleNamespace(get_target_spec=lambda: [TargetSpec("make", {"w": "a,b"})])
    with pytest.raises(
        WorkflowError, match=r"^Rule make: the value 'a,b' of wildcard w "
    ):
        executor.job_spec(job, key="k")
