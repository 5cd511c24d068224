"""The plugin as Snakemake sees it: registry, CLI options, environment variables."""

import ast
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

import snakemake_executor_plugin_interlink as plugin
from snakemake_executor_plugin_interlink.settings import ExecutorSettings

PACKAGE = Path(plugin.__file__).parent


def test_registry_finds_the_plugin():
    registered = ExecutorPluginRegistry().get_plugin("interlink")
    assert registered.common_settings.non_local_exec
    assert not registered.common_settings.pass_envvar_declarations_to_cmd
    assert registered.settings_cls is ExecutorSettings


def test_help_lists_every_setting_with_its_env_var():
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--executor", "interlink", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flat = " ".join(out.split())
    for f in fields(ExecutorSettings):
        option = "--interlink-" + f.name.replace("_", "-")
        env = "SNAKEMAKE_INTERLINK_" + f.name.upper()
        assert option in out, option
        assert env in flat.replace("- ", "-").replace(" _", "_"), env


def test_env_var_sets_a_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SNAKEMAKE_INTERLINK_FLAVOUR", "pbs")
    (tmp_path / "Snakefile").write_text(
        "rule a:\n    output: 'a'\n    shell: 'touch a'\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--executor", "interlink", "-n"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert (
        "invalid choice: 'pbs'" in done.stderr or "--interlink-flavour" in done.stderr
    )


def test_deployment_method_is_never_imported():
    """interface 10.0 removes DeploymentMethod."""
    for source in PACKAGE.glob("*.py"):
        tree = ast.parse(source.read_text())
        names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert "DeploymentMethod" not in names, source
