"""A job's own Snakemake arguments as shell words that reach it unchanged (pure).

Snakemake writes the arguments that name a job's wildcards and files (`--target-jobs`,
`--wait-for-files`, `--unneeded-temp-files`) with Python's `repr`, which the shell reads
otherwise as soon as a value holds both `'` and `"` (an unterminated string), a `'` and
a `$` or backquote (expanded inside `"..."`), a backslash (doubled), or a character
`repr` escapes (a newline becomes `\\n`). Every remote executor inherits that. Here
those words are read back exactly as Python wrote them and re-emitted with
`shlex.quote`; the values that no quoting saves, because Snakemake's own `--target-jobs`
parser changes them, are refused before the job's pod exists.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterable

from snakemake.target_jobs import parse_target_jobs_cli_args
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.utils import (
    TargetSpec,
    encode_target_jobs_cli_args,
)

# one word of what Snakemake joins with spaces: a Python string literal as `repr`
# writes it (no prefix, every inner quote of its kind and every backslash escaped), or
# a bare word (flags, numbers, rule names), each followed by a space or the end
_WORD = re.compile(
    r"""\s*(?:(?P<literal>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<bare>[^\s'"]\S*))"""
    r"(?=\s|$)"
)


def shell_words(args: str) -> str:
    """Snakemake's job arguments with every string literal quoted for the shell; bare
    words stay as written. Arguments that are not such words only (a later Snakemake
    that quotes them itself) are returned unchanged."""
    words = []
    pos, end = 0, len(args.rstrip())
    while pos < end:
        word = _WORD.match(args, pos)
        if word is None:
            return args
        literal = word["literal"]
        if literal:
            try:
                value = ast.literal_eval(literal)
            except (ValueError, SyntaxError):
                return args
            if repr(value) != literal:  # not written by `repr`: read it no further
                return args
            words.append(shlex.quote(value))
        else:
            words.append(word["bare"])
        pos = word.end()
    return " ".join(words)


def check_target_jobs(specs: Iterable[TargetSpec]) -> None:
    """Refuse a job whose wildcard values the job's Snakemake would read back otherwise
    from `--target-jobs`: its parser splits at every `,` (a value holding one becomes
    an error or another wildcard) and strips quotes from both ends of a value, so the
    job would be looked up under other wildcards, and fail or make another file."""
    for spec in specs:
        for name, value in spec.wildcards_dict.items():
            written = encode_target_jobs_cli_args(
                [TargetSpec(spec.rulename, {name: value})]
            )
            try:
                (parsed,) = parse_target_jobs_cli_args(written)
            except ValueError:
                parsed = None
            if parsed is None or parsed.wildcards_dict != {name: str(value)}:
                raise WorkflowError(
                    f"Rule {spec.rulename}: the value {str(value)!r} of wildcard "
                    f"{name} cannot be passed to the job: Snakemake's --target-jobs "
                    "splits values at ',' and strips quotes from their ends. Use "
                    "values without a comma that neither begin nor end with a quote "
                    "(wildcard_constraints can enforce it)."
                )
