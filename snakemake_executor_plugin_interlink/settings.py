"""Executor settings: the CLI face (a dataclass, as Snakemake requires) and the typed,
validated form that the rest of the plugin consumes.

`ExecutorSettings` fields become `--interlink-<name>` options and
`SNAKEMAKE_INTERLINK_<NAME>` variables. `__post_init__` validates everything, so a bad
value fails before the workflow starts, with a message naming the option.
"""

import ast
import math
import re
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import ExecutorSettingsBase

DEFAULT_NODE_LABEL = "virtual-node.interlink/type=virtual-kubelet"
INTERLINK_TAINT_KEY = "virtual-node.interlink/no-schedule"

# RFC 1123 names, label keys/values and taint effects as the API server checks them.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


def _setting(help: str, default: Any = None, **extra: Any) -> Any:
    """A dataclass field whose value may also come from SNAKEMAKE_INTERLINK_<NAME>."""
    metadata = {"help": help, "env_var": True, "required": False, **extra}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    namespace: Optional[str] = _setting(
        "Kubernetes namespace for the run's pods and Secret. "
        "Default: the namespace of the kube context, or of the in-cluster service "
        "account, else 'default'."
    )
    context: Optional[str] = _setting(
        "kubeconfig context to use. Without it, kubectl's order: the current context "
        "of the kubeconfig; inside a pod with no kubeconfig (or one without a current "
        "context), the pod's service account."
    )
    kubeconfig: Optional[Path] = _setting(
        "kubeconfig file. Default, as kubectl: the files of $KUBECONFIG "
        "(colon-separated, merged; missing ones skipped), else ~/.kube/config; when "
        "none exists, the in-cluster service account."
    )
    node: Optional[str] = _setting(
        "Name of the interLink virtual node to run on (nodeSelector "
        "kubernetes.io/hostname=NAME). Overrides --interlink-node-label."
    )
    node_label: str = _setting(
        "Label KEY=VALUE that selects interLink virtual nodes (interLink 0.3 used "
        "type=virtual-kubelet).",
        DEFAULT_NODE_LABEL,
    )
    tolerations: list[str] = _setting(
        "Extra tolerations, each KEY[=VALUE][:EFFECT]. The interLink taint "
        f"{INTERLINK_TAINT_KEY} is always tolerated.",
        [],
        nargs="+",
        type=str,
    )
    node_selector: list[str] = _setting(
        "Extra nodeSelector entries, each KEY=VALUE.", [], nargs="+", type=str
    )
    labels: list[str] = _setting(
        "Extra pod labels, each KEY=VALUE.", [], nargs="+", type=str
    )
    annotations: list[str] = _setting(
        "Extra pod annotations, each KEY=VALUE (e.g. "
        "slurm-job.vk.io/pre-exec='module load apptainer').",
        [],
        nargs="+",
        type=str,
    )
    image: Optional[str] = _setting(
        "Container image of the jobs. It must hold Python and the same Snakemake "
        "version as the submitting side. Default: Snakemake's --container-image."
    )
    image_pull_secrets: list[str] = _setting(
        "Names of image pull Secrets in the namespace.", [], nargs="+", type=str
    )
    service_account: Optional[str] = _setting(
        "Service account of the pods (its token is never mounted)."
    )
    flavour: str = _setting(
        "Batch system behind the virtual node: 'slurm' writes slurm-job.vk.io/* "
        "annotations, 'htcondor' writes htcondor-job.vk.io/* annotations and sizes the "
        "job from whole-CPU requests.",
        "slurm",
        choices=["slurm", "htcondor"],
    )
    requests: str = _setting(
        "Pod requests, which count against the virtual node's advertised capacity "
        "while interLink sizes Slurm jobs from limits: 'none' (zero: the site's batch "
        "system queues the jobs), 'N%%' of the limits, 'limits', or fixed "
        "'cpu=100m,memory=64Mi'. interLink 0.6.2 advertises Slurm's free cpus and "
        "memory, so on a busy site any request leaves pods unschedulable. HTCondor "
        "targets always request the limits in whole CPUs, since that plugin sizes jobs "
        "from requests.",
        "none",
    )
    gpu_resource: str = _setting(
        "Extended resource (e.g. nvidia.com/gpu) that a rule's gpu count also becomes "
        "as a pod limit. Set it only if the virtual node advertises that resource: a "
        "limit the node lacks makes the pod unschedulable (interLink's Helm default "
        "advertises none). GPUs always reach Slurm as --gres=gpu[:model]:N.",
        "",
    )
    binds: list[str] = _setting(
        "Extra host directories bound into every job at the same path "
        "(shared-filesystem mode; e.g. a shared conda prefix).",
        [],
        nargs="+",
        type=str,
    )
    deploy_storage_plugins: bool = _setting(
        "Install the default storage provider's plugin with pip at the start of every "
        "job (no-shared-filesystem mode). Off: the image must already hold it.",
        False,
    )
    pod_network: bool = _setting(
        "Let interLink give the jobs its pod network where the site runs one "
        "(Network.FullMesh: WireGuard set-up before every job, a wstunnel per pod). "
        "Off: pods carry interlink.eu/mesh-network=disabled, since Snakemake jobs talk "
        "to no other pod.",
        False,
    )
    node_outage_tolerance: int = _setting(
        "Seconds a pod stays bound while its virtual node is NotReady or unreachable "
        "(interLink or the site down) before Kubernetes evicts it; Kubernetes' own "
        "default of 300 s would evict hours-long jobs during an interLink restart and "
        "orphan their batch jobs. 0: never evicted.",
        86400,
    )
    log_probe_rate: float = _setting(
        "Without a shared filesystem: log requests per second (in all) that look for "
        "the end line of running jobs, since interLink refreshes a pod's status only "
        "about every N x 10 s with N running pods. 0: wait for the pod status.",
        2.0,
    )
    termination_grace: int = _setting(
        "Seconds that jobs still running when Snakemake gets SIGTERM (a JupyterHub "
        "culling its server, a CI timeout) have to finish; then the run cancels them, "
        "as Ctrl-C does, and exits. Snakemake alone would wait for them however long "
        "they run, and for ever if the API server cannot be reached.",
        15,
    )
    status_interval: float = _setting(
        "Longest wait in seconds between two status rounds; a round starts earlier as "
        "soon as a pod changes. Rounds read a watched local view: no request per job.",
        1.0,
    )
    relist_interval: int = _setting(
        "Seconds between full LISTs of the run's pods that guard the watch against "
        "missed events.",
        300,
    )
    refusal_tolerance: int = _setting(
        "Seconds the run tolerates the API server refusing to show its pods (401, "
        "403 or 404 while watching them: a removed Role, a revoked token, a deleted "
        "namespace) before every active job fails with the refusal. An unreachable "
        "API server is tolerated for 30 min.",
        300,
    )
    unschedulable_timeout: int = _setting(
        "Seconds a pod may stay unscheduled (no virtual node accepts it) before its "
        "job fails with the scheduler's reason. A node that fits but is full (the "
        "scheduler says 'Insufficient pods/cpu/memory') is waited for. 0 waits "
        "forever.",
        600,
    )
    pending_timeout: int = _setting(
        "Seconds a pod may stay Pending on the virtual node (queued at the site) "
        "before its job fails. 0 waits forever (site queues can be long).",
        0,
    )
    max_concurrent_submissions: int = _setting(
        "Pods created in parallel when Snakemake releases many jobs at once.", 4
    )
    remove_orphans: bool = _setting(
        "Delete pods of earlier, killed runs of this working directory (recorded in "
        ".snakemake/interlink/runs) that no job of this run re-attached to. Off: "
        "they are listed with the command that removes them.",
        False,
    )
    keep_failed_pods: bool = _setting(
        "Keep the pods of failed jobs for debugging (kubectl describe). They are still "
        "deleted on Ctrl-C.",
        False,
    )
    log_dir: Path = _setting(
        "Where job logs are stored, as <log-dir>/<rule>/<wildcards>/<jobid>.log.",
        Path(".snakemake/interlink_logs"),
    )
    log_limit_mb: int = _setting(
        "How much of the end of a job's log is fetched (limitBytes, in MiB) before its "
        "pod is deleted.",
        16,
    )
    insecure_log_backend: bool = _setting(
        "Skip TLS verification between the API server and the virtual node when "
        "fetching logs (insecureSkipTLSVerifyBackend). interLink >= 0.6 needs it when "
        "the virtual kubelet's serving certificate has no approved CSR.",
        False,
    )

    no_report: bool = _setting(
        "Do not write the run report (.snakemake/interlink_reports/<run>/jobs.tsv and "
        "timeline.html).",
        False,
    )

    def __post_init__(self) -> None:
        self.checked = check_settings(self)


def cli_name(field_name: str) -> str:
    return "--interlink-" + field_name.replace("_", "-")


class Toleration(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    operator: Literal["Exists", "Equal"]
    value: str | None = None
    effect: str | None = None

    def manifest(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


class RequestPolicy(BaseModel):
    """How pod requests derive from limits (limits are what interLink's Slurm plugin
    turns into --cpus-per-task and --mem)."""

    model_config = ConfigDict(frozen=True)
    fraction: float | None = None  # of the limits, in (0, 1]
    fixed: dict[str, str] | None = None


NO_REQUESTS = {
    "cpu": "0",
    "memory": "0",
}  # explicit: omitted requests default to limits
PositiveSeconds = Annotated[float, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]


class CheckedSettings(BaseModel):
    """The validated settings; pure modules take this, never the CLI dataclass."""

    model_config = ConfigDict(frozen=True)
    namespace: str | None = None
    context: str | None = None
    kubeconfig: Path | None = None
    node: str | None = None
    node_label: tuple[str, str] = ("virtual-node.interlink/type", "virtual-kubelet")
    tolerations: tuple[Toleration, ...] = ()
    node_selector: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    image: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    service_account: str | None = None
    flavour: Literal["slurm", "htcondor"] = "slurm"
    requests: RequestPolicy = RequestPolicy(fixed=NO_REQUESTS)
    gpu_resource: str = ""
    binds: tuple[str, ...] = ()
    deploy_storage_plugins: bool = False
    pod_network: bool = False
    node_outage_tolerance: NonNegativeInt = 86400
    log_probe_rate: Annotated[float, Field(ge=0, le=50)] = 2.0
    termination_grace: NonNegativeInt = 15
    status_interval: PositiveSeconds = 1.0
    relist_interval: PositiveInt = 300
    refusal_tolerance: NonNegativeInt = 300
    unschedulable_timeout: NonNegativeInt = 600
    pending_timeout: NonNegativeInt = 0
    max_concurrent_submissions: Annotated[int, Field(ge=1, le=64)] = 4
    remove_orphans: bool = False
    keep_failed_pods: bool = False
    log_dir: Path = Path(".snakemake/interlink_logs")
    log_limit_mb: PositiveInt = 16
    insecure_log_backend: bool = False
    no_report: bool = False

    @field_validator("namespace", "node", "service_account")
    @classmethod
    def _dns_name(cls, value: str | None) -> str | None:
        if value is not None and not (
            len(value) <= 253 and _DNS_SUBDOMAIN.match(value)
        ):
            raise ValueError(
                "must be a lowercase RFC 1123 name (letters, digits, '-', '.')"
            )
        return value

    @field_validator("image_pull_secrets")
    @classmethod
    def _dns_names(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            cls._dns_name(value)
        return values

    @field_validator("binds")
    @classmethod
    def _absolute_paths(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not value.startswith("/"):
                raise ValueError(f"{value!r} is not an absolute path")
        return values


def parse_key_values(items: list[str], what: str) -> dict[str, str]:
    """KEY=VALUE items into a dict; VALUE may contain '='."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{item!r} is not KEY=VALUE")
        check_label_key(key, what)
        parsed[key] = value
    return parsed


def check_label_key(key: str, what: str) -> None:
    """Label, annotation and selector keys: optional DNS prefix, '/', qualified name."""
    prefix, _, name = key.rpartition("/")
    if (
        (prefix and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.match(prefix)))
        or len(name) > 63
        or not _QUALIFIED_NAME.match(name)
    ):
        raise ValueError(f"{key!r} is not a valid {what} key")


def check_label_values(items: dict[str, str], what: str) -> dict[str, str]:
    for key, value in items.items():
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise ValueError(
                f"{what} value {value!r} of {key!r} must be at most 63 letters, "
                "digits, '-', '_' or '.', starting and ending with a letter or digit"
            )
    return items


def parse_toleration(item: str) -> Toleration:
    """KEY[=VALUE][:EFFECT], the notation of `kubectl taint`."""
    rest, _, effect = item.rpartition(":") if ":" in item else (item, "", "")
    if effect and effect not in _TAINT_EFFECTS:
        raise ValueError(f"{item!r}: effect must be one of {', '.join(_TAINT_EFFECTS)}")
    key, sep, value = rest.partition("=")
    check_label_key(key, "toleration")
    if sep:
        return Toleration(key=key, operator="Equal", value=value, effect=effect or None)
    return Toleration(key=key, operator="Exists", effect=effect or None)


def parse_request_policy(text: str) -> RequestPolicy:
    text = text.strip()
    if text == "none":
        return RequestPolicy(fixed=NO_REQUESTS)
    if text == "limits":
        return RequestPolicy(fraction=1.0)
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            percent = math.nan
        if not 0 < percent <= 100:
            raise ValueError(f"{text!r}: the percentage must be in (0, 100]")
        return RequestPolicy(fraction=percent / 100)
    fixed = {}
    for item in text.split(","):
        name, sep, quantity = item.strip().partition("=")
        if not sep or name not in ("cpu", "memory") or not _QUANTITY.match(quantity):
            raise ValueError(
                f"{text!r} is not 'none', 'N%', 'limits' or "
                "'cpu=QUANTITY,memory=QUANTITY'"
            )
        fixed[name] = quantity
    return RequestPolicy(fixed=fixed)


_LIST_FIELDS = frozenset(
    {"tolerations", "node_selector", "labels", "annotations", "image_pull_secrets",
     "binds"}
)  # fmt: skip


def as_list(value: Any) -> list[str]:
    """List settings arrive as lists from the command line, but as one string from a
    profile ("['a=1', 'b=2']") or an environment variable ("a=1 b=2")."""
    if not isinstance(value, str):
        return [str(v) for v in value]
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"{value!r} is not a list") from None
        if isinstance(parsed, list | tuple):
            return [str(v) for v in parsed]
    return shlex.split(text)


def _parse_field(name: str, value: Any) -> Any:
    """Turn one CLI value into the typed value CheckedSettings expects."""
    if name in _LIST_FIELDS:
        value = as_list(value)
    if name == "node_label":
        parsed = parse_key_values([value], "node label")
        return next(iter(check_label_values(parsed, "node label").items()))
    if name == "tolerations":
        return tuple(parse_toleration(item) for item in value)
    if name == "node_selector":
        return check_label_values(parse_key_values(value, "node selector"), "selector")
    if name == "labels":
        return check_label_values(parse_key_values(value, "label"), "label")
    if name == "annotations":
        return parse_key_values(value, "annotation")
    if name == "requests":
        return parse_request_policy(value)
    if name == "flavour" and value not in ("slurm", "htcondor"):
        raise ValueError(f"{value!r} is not 'slurm' or 'htcondor'")
    if name in _LIST_FIELDS:
        return tuple(value)
    return value


def check_settings(settings: ExecutorSettings) -> CheckedSettings:
    """Validate every setting; the error names the option and says what is expected."""
    values = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is None:
            continue
        try:
            values[f.name] = _parse_field(f.name, value)
        except ValueError as e:
            raise WorkflowError(f"Invalid {cli_name(f.name)}: {e}") from None
    try:
        return CheckedSettings(**values)
    except ValidationError as e:
        problems = "; ".join(
            f"{cli_name(str(err['loc'][0]))} {err['msg'].lower()}" for err in e.errors()
        )
        raise WorkflowError(f"Invalid interlink settings: {problems}") from None
