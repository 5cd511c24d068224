"""Executor settings, declared once.

`CheckedSettings` declares every setting: its typed, validated value, its default and,
in an `Option`, its help text. The pure modules take it. `ExecutorSettings`, the
dataclass that Snakemake reads (each field becomes an `--interlink-<name>` option and a
`SNAKEMAKE_INTERLINK_<NAME>` variable), is generated from it, so the command line and
the validated form cannot drift apart. `ExecutorSettings.__post_init__` validates
everything, so a bad value fails before the workflow starts, with a message naming the
option.
"""

import ast
import dataclasses
import inspect
import math
import re
import shlex
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    Optional,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
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
# A non-negative Kubernetes quantity as the API server's grammar has it (apimachinery
# resource.Quantity). kubernetes.utils.parse_quantity computes the value but takes
# whatever Python's Decimal takes ('NaN', '-1', '1_000', ' 5', '100mi'): this shape
# check keeps those from reaching the API server, which would refuse every pod.
_QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|[numkMGTPE]|[KMGTPE]i)?$")


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


def dns_name(value: str) -> str:
    if not (len(value) <= 253 and _DNS_SUBDOMAIN.match(value)):
        raise ValueError(
            f"{value!r} must be a lowercase RFC 1123 name (letters, digits, '-', '.')"
        )
    return value


def absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    return value


def optional_absolute_path(value: str) -> str:
    return value and absolute_path(value)


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


def quantity_value(text: str) -> Decimal:
    """A Kubernetes quantity as a number: cores for cpu, bytes for memory."""
    # imported here: the kubernetes package costs every Snakemake start ~0.4 s
    from kubernetes.utils.quantity import parse_quantity

    if not _QUANTITY.match(text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)")
    return Decimal(parse_quantity(text))


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
        if not sep or name not in ("cpu", "memory"):
            raise ValueError(
                f"{text!r} is not 'none', 'N%', 'limits' or "
                "'cpu=QUANTITY,memory=QUANTITY'"
            )
        quantity_value(quantity)
        fixed[name] = quantity
    return RequestPolicy(fixed=fixed)


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


# Validators that take the command line's form (a string, a list of words) and pass the
# validated form (what tests and CheckedSettings' defaults hold) through.


def _words(value: Any) -> Any:
    return as_list(value) if isinstance(value, str | list) else value


def _node_label(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parsed = parse_key_values([value], "node label")
    return next(iter(check_label_values(parsed, "node label").items()))


def _tolerations(value: Any) -> Any:
    return tuple(
        parse_toleration(item) if isinstance(item, str) else item
        for item in _words(value)
    )


def _key_values(what: str, label_values: bool) -> BeforeValidator:
    """KEY=VALUE words, or a dict, into a dict whose keys (and, for labels and
    selectors, values) the API server accepts."""

    def parse(value: Any) -> Any:
        if isinstance(value, Mapping):
            items = dict(value)
            for key in items:
                check_label_key(key, what)
        else:
            items = parse_key_values(_words(value), what)
        return check_label_values(items, what) if label_values else items

    return BeforeValidator(parse)


def _request_policy(value: Any) -> Any:
    return parse_request_policy(value) if isinstance(value, str) else value


DnsName = Annotated[str, AfterValidator(dns_name)]
PositiveSeconds = Annotated[float, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Words = BeforeValidator(_words)


@dataclass(frozen=True)
class Option:
    """A setting's face on Snakemake's command line. `cli_type` is the type of its
    dataclass field where the checked type is not what argparse produces (a list of
    KEY=VALUE words that becomes a dict, a string parsed into a policy); by default it
    is the checked type, with `X | None` as `Optional[X]` and a Literal as `str` with
    choices, since that is what Snakemake's argparse reads."""

    help: str
    cli_type: Any = None


class CheckedSettings(BaseModel):
    """The validated settings; pure modules take this, never the CLI dataclass.

    This is the one declaration of the settings: `ExecutorSettings` is generated from
    it. Where the command line's form differs from the checked one, a BeforeValidator
    parses it; the defaults of `node_label` and `requests` are written in the command
    line's form and parsed too (validate_default), so each default is written once.
    """

    model_config = ConfigDict(frozen=True)

    namespace: Annotated[
        DnsName | None,
        Option(
            "Kubernetes namespace for the run's pods and Secret. "
            "Default: the namespace of the kube context, or of the in-cluster service "
            "account, else 'default'."
        ),
    ] = None
    context: Annotated[
        str | None,
        Option(
            "kubeconfig context to use. Without it, kubectl's order: the current "
            "context of the kubeconfig; inside a pod with no kubeconfig (or one "
            "without a current context), the pod's service account."
        ),
    ] = None
    kubeconfig: Annotated[
        Path | None,
        Option(
            "kubeconfig file. Default, as kubectl: the files of $KUBECONFIG "
            "(colon-separated, merged; missing ones skipped), else ~/.kube/config; "
            "when none exists, the in-cluster service account."
        ),
    ] = None
    node: Annotated[
        DnsName | None,
        Option(
            "Name of the interLink virtual node to run on (nodeSelector "
            "kubernetes.io/hostname=NAME). Overrides --interlink-node-label."
        ),
    ] = None
    node_label: Annotated[
        tuple[str, str],
        BeforeValidator(_node_label),
        Option(
            "Label KEY=VALUE that selects interLink virtual nodes (interLink 0.3 used "
            "type=virtual-kubelet).",
            cli_type=str,
        ),
    ] = Field(DEFAULT_NODE_LABEL, validate_default=True)
    tolerations: Annotated[
        tuple[Toleration, ...],
        BeforeValidator(_tolerations),
        Option(
            "Extra tolerations, each KEY[=VALUE][:EFFECT]. The interLink taint "
            f"{INTERLINK_TAINT_KEY} is always tolerated.",
            cli_type=list[str],
        ),
    ] = ()
    node_selector: Annotated[
        dict[str, str],
        _key_values("node selector", label_values=True),
        Option("Extra nodeSelector entries, each KEY=VALUE.", cli_type=list[str]),
    ] = Field(default_factory=dict)
    labels: Annotated[
        dict[str, str],
        _key_values("label", label_values=True),
        Option("Extra pod labels, each KEY=VALUE.", cli_type=list[str]),
    ] = Field(default_factory=dict)
    annotations: Annotated[
        dict[str, str],
        _key_values("annotation", label_values=False),
        Option(
            "Extra pod annotations, each KEY=VALUE (e.g. "
            "slurm-job.vk.io/pre-exec='module load apptainer').",
            cli_type=list[str],
        ),
    ] = Field(default_factory=dict)
    image: Annotated[
        str | None,
        Option(
            "Container image of the jobs. It must hold Python and the same Snakemake "
            "version as the submitting side. Default: Snakemake's --container-image."
        ),
    ] = None
    image_pull_secrets: Annotated[
        tuple[DnsName, ...],
        Words,
        Option("Names of image pull Secrets in the namespace.", cli_type=list[str]),
    ] = ()
    service_account: Annotated[
        DnsName | None,
        Option("Service account of the pods (its token is never mounted)."),
    ] = None
    flavour: Annotated[
        Literal["slurm", "htcondor"],
        Option(
            "Batch system behind the virtual node: 'slurm' writes slurm-job.vk.io/* "
            "annotations, 'htcondor' writes htcondor-job.vk.io/* annotations and sizes "
            "the job from whole-CPU requests."
        ),
    ] = "slurm"
    requests: Annotated[
        RequestPolicy,
        BeforeValidator(_request_policy),
        Option(
            "Pod requests, which count against the virtual node's advertised capacity "
            "while interLink sizes Slurm jobs from limits: 'none' (zero: the site's "
            "batch system queues the jobs), 'N%%' of the limits, 'limits', or fixed "
            "'cpu=100m,memory=64Mi'. interLink 0.6.2 advertises Slurm's free cpus and "
            "memory, so on a busy site any request leaves pods unschedulable. HTCondor "
            "targets always request the limits in whole CPUs, since that plugin sizes "
            "jobs from requests.",
            cli_type=str,
        ),
    ] = Field("none", validate_default=True)
    gpu_resource: Annotated[
        str,
        Option(
            "Extended resource (e.g. nvidia.com/gpu) that a rule's gpu count also "
            "becomes as a pod limit. Set it only if the virtual node advertises that "
            "resource: a limit the node lacks makes the pod unschedulable (interLink's "
            "Helm default advertises none). GPUs always reach Slurm as "
            "--gres=gpu[:model]:N."
        ),
    ] = ""
    binds: Annotated[
        tuple[Annotated[str, AfterValidator(absolute_path)], ...],
        Words,
        Option(
            "Extra host directories bound into every job at the same path "
            "(shared-filesystem mode; e.g. a shared conda prefix).",
            cli_type=list[str],
        ),
    ] = ()
    scratch_dir: Annotated[
        str,
        AfterValidator(optional_absolute_path),
        Option(
            "Slurm sites: a directory of the worker nodes bound into every job at the "
            "same path, where jobs without a shared filesystem make their scratch "
            "directory (sources, inputs, outputs, storage copies); the default, /tmp, "
            "is also Snakemake's default tmpdir of every rule. interLink runs jobs "
            "with singularity --containall, whose own /tmp and HOME share a 64 MiB "
            "in-memory session: more data fails with 'No space left on device' there. "
            "Empty: bind nothing. HTCondor sites: not bound (the job runs in "
            "HTCondor's sandbox)."
        ),
    ] = "/tmp"
    deploy_storage_plugins: Annotated[
        bool,
        Option(
            "Install the default storage provider's plugin with pip at the start of "
            "every job (no-shared-filesystem mode). Off: the image must already hold "
            "it."
        ),
    ] = False
    pod_network: Annotated[
        bool,
        Option(
            "Let interLink give the jobs its pod network where the site runs one "
            "(Network.FullMesh: WireGuard set-up before every job, a wstunnel per "
            "pod). Off: pods carry interlink.eu/mesh-network=disabled, since Snakemake "
            "jobs talk to no other pod."
        ),
    ] = False
    node_outage_tolerance: Annotated[
        NonNegativeInt,
        Option(
            "Seconds a pod stays bound while its virtual node is NotReady or "
            "unreachable (interLink or the site down) before Kubernetes evicts it; "
            "Kubernetes' own default of 300 s would evict hours-long jobs during an "
            "interLink restart and orphan their batch jobs. 0: never evicted."
        ),
    ] = 86400
    log_probe_rate: Annotated[
        float,
        Field(ge=0, le=50),
        Option(
            "Without a shared filesystem: the most log requests per second (in all) "
            "that look for the end line of running jobs, since interLink refreshes a "
            "pod's status only about every N x 10 s with N running pods. 0: wait for "
            "the pod status."
        ),
    ] = 10.0
    log_probe_period: Annotated[
        PositiveSeconds,
        Option(
            "Without a shared filesystem: how often in seconds each submitted job's "
            "log is read for its end line, as long as --interlink-log-probe-rate "
            "allows; fewer jobs, fewer requests."
        ),
    ] = 15.0
    termination_grace: Annotated[
        NonNegativeInt,
        Option(
            "Seconds that jobs still running when Snakemake gets SIGTERM (a JupyterHub "
            "culling its server, a CI timeout) have to finish; then the run cancels "
            "them, as Ctrl-C does, and exits. Snakemake alone would wait for them "
            "however long they run, and for ever if the API server cannot be reached."
        ),
    ] = 15
    status_interval: Annotated[
        PositiveSeconds,
        Option(
            "Longest wait in seconds between two status rounds; a round starts earlier "
            "as soon as a pod changes. Rounds read a watched local view: no request "
            "per job."
        ),
    ] = 1.0
    relist_interval: Annotated[
        PositiveInt,
        Option(
            "Seconds between full LISTs of the run's pods that guard the watch against "
            "missed events."
        ),
    ] = 300
    refusal_tolerance: Annotated[
        NonNegativeInt,
        Option(
            "Seconds the run tolerates the API server refusing to show its pods "
            "(401, 403 or 404 while watching them: a removed Role, a revoked token, a "
            "deleted namespace) before every active job fails with the refusal. An "
            "unreachable API server is tolerated for 30 min."
        ),
    ] = 300
    unschedulable_timeout: Annotated[
        NonNegativeInt,
        Option(
            "Seconds a pod may stay unscheduled (no virtual node accepts it) before "
            "its job fails with the scheduler's reason. A node that fits but is full "
            "(the scheduler says 'Insufficient pods/cpu/memory') is waited for. 0 "
            "waits forever."
        ),
    ] = 600
    pending_timeout: Annotated[
        NonNegativeInt,
        Option(
            "Seconds a pod may stay Pending on the virtual node (queued at the site) "
            "before its job fails. 0 waits forever (site queues can be long)."
        ),
    ] = 0
    max_concurrent_submissions: Annotated[
        int,
        Field(ge=1, le=64),
        Option(
            "Pods created in parallel when Snakemake releases many jobs at once "
            "(8 keep a remote API server's round trips overlapping without loading "
            "it: benchmarks/README.md)."
        ),
    ] = 8
    remove_orphans: Annotated[
        bool,
        Option(
            "Delete pods of earlier, killed runs of this working directory (recorded "
            "in .snakemake/interlink/runs) that no job of this run re-attached to. "
            "Off: they are listed with the command that removes them."
        ),
    ] = False
    keep_failed_pods: Annotated[
        bool,
        Option(
            "Keep the pods of failed jobs for debugging (kubectl describe). They are "
            "still deleted on Ctrl-C."
        ),
    ] = False
    log_dir: Annotated[
        Path,
        Option(
            "Where job logs are stored, as <log-dir>/<rule>/<wildcards>/<jobid>.log "
            "(a retry's as <jobid>.attempt<N>.log)."
        ),
    ] = Path(".snakemake/interlink_logs")
    log_limit_mb: Annotated[
        PositiveInt,
        Option(
            "How much of the end of a job's log is fetched (limitBytes, in MiB) before "
            "its pod is deleted."
        ),
    ] = 16
    insecure_log_backend: Annotated[
        bool,
        Option(
            "Skip TLS verification between the API server and the virtual node when "
            "fetching logs (insecureSkipTLSVerifyBackend). interLink >= 0.6 needs it "
            "when the virtual kubelet's serving certificate has no approved CSR."
        ),
    ] = False
    no_report: Annotated[
        bool,
        Option(
            "Do not write the run report (.snakemake/interlink_reports/<run>/jobs.tsv "
            "and timeline.html)."
        ),
    ] = False


def cli_type(checked_type: Any, option: Option) -> Any:
    """The dataclass field type Snakemake's argparse reads for a setting."""
    if option.cli_type is not None:
        return option.cli_type
    if get_origin(checked_type) is Literal:
        return str
    args = get_args(checked_type)
    if get_origin(checked_type) in (Union, types.UnionType) and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return Optional[inner]
    return checked_type


def cli_fields(model: type[BaseModel]) -> list[tuple[str, Any, Any]]:
    """(name, type, dataclasses.field) for each setting of `model`, in its order."""
    hints = get_type_hints(model)  # the checked types without their Annotated extras
    made = []
    for name, info in model.model_fields.items():
        (option,) = (m for m in info.metadata if isinstance(m, Option))
        field_type = cli_type(hints[name], option)
        metadata: dict[str, Any] = {"help": option.help, "env_var": True}
        metadata["required"] = False
        if get_origin(hints[name]) is Literal:
            metadata["choices"] = list(get_args(hints[name]))
        default = info.get_default(call_default_factory=True)
        if field_type == list[str]:
            if default:
                raise TypeError(f"{name}: a list setting's default must be empty")
            metadata.update(nargs="+", type=str)
            made_field = dataclasses.field(default_factory=list, metadata=metadata)
        else:
            made_field = dataclasses.field(default=default, metadata=metadata)
        made.append((name, field_type, made_field))
    return made


_Settings = TypeVar("_Settings", bound=type)


def declared_by(model: type[BaseModel]) -> Callable[[_Settings], _Settings]:
    """Class decorator: give the class one dataclass field per setting of `model`."""

    def decorate(cls: _Settings) -> _Settings:
        annotations = dict(inspect.get_annotations(cls))
        for name, field_type, cli_field in cli_fields(model):
            annotations[name] = field_type
            setattr(cls, name, cli_field)
        cls.__annotations__ = annotations
        dataclass(cls)  # makes the class itself a dataclass (no slots: the same class)
        return cls

    return decorate


@declared_by(CheckedSettings)
class ExecutorSettings(ExecutorSettingsBase):
    """What Snakemake reads: one field per CheckedSettings field, in the command line's
    form (see `cli_fields`)."""

    if TYPE_CHECKING:
        checked: CheckedSettings

        def __init__(self, **values: Any) -> None: ...

    def __post_init__(self) -> None:
        self.checked = check_settings(self)


def check_settings(settings: ExecutorSettings) -> CheckedSettings:
    """Validate every setting; the error names the option and says what is expected."""
    values = {
        f.name: getattr(settings, f.name)
        for f in fields(settings)
        if getattr(settings, f.name) is not None
    }
    try:
        return CheckedSettings(**values)
    except ValidationError as e:
        raise WorkflowError(
            "; ".join(
                f"Invalid {cli_name(str(err['loc'][0]))}: {_explain(err['msg'])}"
                for err in e.errors()
            )
        ) from None


def _explain(msg: str) -> str:
    """pydantic's message for a ValueError starts 'Value error, '; its own ones with a
    capital ('Input should be ...')."""
    msg = msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]
