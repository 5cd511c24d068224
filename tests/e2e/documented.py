"""The commands the docs show, run as a reader would type them.

Docs mark commands as fenced ```sh blocks (and Python snippets as ```python). A test runs
them unchanged, with only the docs' upper-case placeholders (BUCKET, PREFIX, ...) filled
in, from a shell whose `snakemake` and `kubectl` are the ones a user would have.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from .conftest import REPO, Testbed

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == language]


def commands(page: Path) -> list[str]:
    """Each command of the page's ```sh blocks: continuation lines joined, comments off."""
    found = []
    for block in code_blocks(page, "sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                found.append(" ".join(line.split()))
    return found


def fill(text: str, placeholders: dict[str, str]) -> str:
    for name, value in placeholders.items():
        text = re.sub(rf"\b{re.escape(name)}\b", value, text)
    return text


def user_env(
    testbed: Testbed, kubeconfig: str | None = None, path_first: Path | None = None
) -> dict[str, str]:
    """A user's shell: Snakemake of this checkout's venv (or of `path_first`), the
    testbed's kubectl, and the executor's kubeconfig, whose context names the namespace."""
    path = [
        str(path_first or Path(sys.executable).parent),
        testbed.env["TESTBED_BIN"],
        os.environ["PATH"],
    ]
    return {
        **os.environ,
        "PATH": os.pathsep.join(path),
        "KUBECONFIG": kubeconfig or testbed.executor_kubeconfig,
    }


def run(command: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    """Run one documented command; fail the test with its output when it fails."""
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(f"$ {command}\n{done.stdout[-5000:]}{done.stderr[-20000:]}")
    assert done.returncode == 0, f"{command!r} failed:\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def run_readme(
    example: str, workdir: Path, env: dict[str, str], **placeholders: str
) -> list[str]:
    """Every command, then every Python snippet, of examples/<example>/README.md."""
    page = REPO / "examples" / example / "README.md"
    outputs = [run(fill(c, placeholders), workdir, env) for c in commands(page)]
    for snippet in code_blocks(page, "python"):
        outputs.append(
            run(f"python -c {shlex.quote(fill(snippet, placeholders))}", workdir, env)
        )
    assert outputs, f"{page} shows no command"
    return outputs
