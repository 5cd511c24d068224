"""Snakemake executor plugin: every job runs as a pod on an interLink virtual node,
which offloads it to a Slurm or HTCondor site."""

from snakemake_interface_executor_plugins.settings import CommonSettings

from .executor import Executor
from .settings import ExecutorSettings

common_settings = CommonSettings(
    non_local_exec=True,
    # Shared filesystem by default; `--shared-fs-usage none` with a default storage
    # provider switches to object storage, and then Snakemake deploys the sources.
    implies_no_shared_fs=False,
    job_deploy_sources=True,
    pass_default_storage_provider_args=True,
    pass_default_resources_args=True,
    # the environment travels in a per-run Secret (secretKeyRef), never in the command
    pass_envvar_declarations_to_cmd=False,
    # the image should hold the storage plugins; --interlink-deploy-storage-plugins
    # installs the default provider's only, instead of every installed one
    auto_deploy_default_storage_provider=False,
    init_seconds_before_status_checks=0,
    pass_group_args=True,
)

__all__ = ["Executor", "ExecutorSettings", "common_settings"]
