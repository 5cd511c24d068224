"""Rule resources -> pod limits, requests and interLink annotations (pure).

The resource names and their meaning are those of snakemake-executor-plugin-slurm, so a
workflow written for it runs unchanged. interLink's Slurm plugin reads pod *limits* only
(`--cpus-per-task=ceil(cpu)`, `--mem=<MiB>`) and the `slurm-job.vk.io/flags` annotation;
it ignores `--cpus-per-task`/`--mem` in the flags when limits exist, so cpu and memory
always travel as limits and never as flags. The HTCondor plugin sizes jobs from
*requests* (whole CPUs only) instead.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
)
from snakemake_interface_common.exceptions import WorkflowError

from .settings import CheckedSettings, check_label_key, quantity_value

SLURM_FLAGS = "slurm-job.vk.io/flags"
HTCONDOR_MAX_WALLTIME_MINUTES = 60  # hard-coded in interLink's HTCondor plugin
FALLBACK_MEM_MB = 1024  # without it interLink's Slurm plugin would submit --mem=1
# every job runs `python -m snakemake` around the rule's command (about 100-150 MB);
# below this the batch system's memory limit kills the job whatever the rule needs
JOB_MEMORY_FLOOR_MIB = 256

# sbatch options the executor owns: set them through resources, never through flags.
_FORBIDDEN_FLAGS = {
    "--cpus-per-task": "threads or cpus_per_task",
    "-c": "threads or cpus_per_task",
    "--mem": "mem_mb",
    "--mem-per-cpu": "mem_mb_per_cpu",
    "--job-name": None,
    "-J": None,
    "--output": None,
    "-o": None,
    "--error": None,
    "-e": None,
    "--chdir": None,
    "-D": None,
    "--wrap": None,
    "--parsable": None,
}
_GRES = re.compile(r"^[A-Za-z0-9_]+(:[A-Za-z0-9_.-]+)?:\d+$")
_GPU_GRES = re.compile(r"^gpu(:[A-Za-z0-9_.-]+)?:(\d+)$")
_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*"
    r"(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)


def parse_minutes(value: Any) -> float:
    """Minutes from a number, '90', '1h30m', '2d', or Slurm's [D-]HH:MM:SS."""
    if isinstance(value, bool):
        raise ValueError("must be a duration, not a boolean")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    days, _, clock = text.rpartition("-") if ":" in text else ("", "", text)
    if ":" in clock:
        parts = clock.split(":")
        if (
            len(parts) in (2, 3)
            and all(p.isdigit() for p in parts)
            and (days == "" or days.isdigit())
        ):
            hours, minutes, seconds = ([0] * (3 - len(parts))) + [int(p) for p in parts]
            return int(days or 0) * 1440 + hours * 60 + minutes + seconds / 60
    match = _DURATION.match(text)
    if text and match and any(match.groups()):
        d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
        return d * 1440 + h * 60 + m + s / 60
    raise ValueError(f"{value!r} is not a duration (minutes, '1h30m' or 'HH:MM:SS')")


def _number(value: Any) -> Any:
    """Accept '8' and 8.0 like Snakemake does, but not booleans."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    return value


def _whole(value: Any) -> Any:
    value = _number(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value} is not a whole number")
        return int(value)
    return value


PositiveCount = Annotated[StrictInt, Field(gt=0), BeforeValidator(_whole)]
Count = Annotated[StrictInt, Field(ge=0), BeforeValidator(_whole)]
PositiveAmount = Annotated[float, Field(gt=0), BeforeValidator(_number)]
Minutes = Annotated[float, Field(gt=0), BeforeValidator(parse_minutes)]
Word = Annotated[str, Field(min_length=1, pattern=r"^[^\s'\"\\]+$")]


class RuleResources(BaseModel):
    """The resources of a rule that this executor reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    # 0 is a rule that uses no core (Snakemake accepts it); its job still needs one
    threads: Count = 1
    cpus_per_task: Count | None = None
    mem_mb: PositiveAmount | None = None
    mem_mb_per_cpu: PositiveAmount | None = None
    runtime: Minutes | None = None
    slurm_partition: Word | None = None
    slurm_account: Word | None = None
    qos: Word | None = None
    constraint: Annotated[str, Field(min_length=1)] | None = None
    gres: Annotated[str, Field(pattern=_GRES.pattern)] | None = None
    gpu: Count | None = None
    gpu_model: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
    tasks: PositiveCount | None = None
    tasks_per_gpu: PositiveCount | None = None
    nodes: PositiveCount | None = None
    slurm_extra: str | None = None
    interlink_annotations: str | None = None
    interlink_image: Annotated[str, Field(min_length=1)] | None = None
    interlink_node: Annotated[str, Field(min_length=1)] | None = None
    interlink_flavour: Literal["slurm", "htcondor"] | None = None


@dataclass(frozen=True)
class PodResources:
    """Everything about a job's pod that comes from its rule's resources."""

    limits: dict[str, str]
    requests: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    image: str | None = None
    node: str | None = None
    flavour: str = "slurm"
    warnings: tuple[str, ...] = ()
    time_limit_minutes: int | None = None  # what the batch system enforces, if known


def read_rule_resources(
    rule: str, threads: int, resources: Mapping[str, Any]
) -> RuleResources:
    """Validate a job's resources; errors name the rule, the resource and the fix."""
    values = {k: v for k, v in resources.items() if v is not None and k in _FIELDS}
    values["threads"] = threads
    try:
        return RuleResources(**values)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            given = values.get(name)
            problems.append(f"{name}={given!r}: {_explain(err['msg'])}")
        raise WorkflowError(
            f"Rule {rule}: invalid resources: {'; '.join(problems)}. "
            "Fix the rule's resources (or --set-resources / --default-resources)."
        ) from None


_FIELDS = frozenset(RuleResources.model_fields)


def _explain(msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    if "should match pattern" in msg:
        return "contains characters that are not allowed here"
    return msg[0].lower() + msg[1:]


# what Snakemake sums over a group's side-by-side jobs although the group runs as one
# batch job on one node with one Snakemake: meaningless (or quadratic) for its pod
_NOT_SUMMED_IN_GROUPS = ("cpus_per_task", "tasks", "tasks_per_gpu", "nodes")


def group_job_resources(
    summed: Mapping[str, Any], members: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """A group job's resources as its pod needs them. Snakemake's GroupJob sums each
    number over the jobs it runs side by side (bounded by --cores and --resources) and
    adds up `runtime` over the jobs it runs one after another: right for the group's
    cpus (its `_cores`, passed as threads), memory, gpus and time. Summed per-job
    counts are dropped (the group is one task on one node, its cpus are its threads),
    and `mem_mb_per_cpu`, whose sum times the summed cpus would grow with the square
    of the group's width, becomes the largest of its jobs'."""
    resources = {
        k: v
        for k, v in summed.items()
        if k not in _NOT_SUMMED_IN_GROUPS and k != "mem_mb_per_cpu"
    }
    per_cpu = [
        m["mem_mb_per_cpu"] for m in members if m.get("mem_mb_per_cpu") is not None
    ]
    if per_cpu:
        resources["mem_mb_per_cpu"] = _largest(per_cpu)
    return resources


def unbounded_group_warning(group: str, cpus: int, cores: int | None) -> str | None:
    """Without --cores, Snakemake bounds a group's width by nothing: all its jobs that
    could run side by side count, and its pod asks for that many cpus, which a site
    may never grant."""
    if cores is not None or cpus <= 1:
        return None
    return (
        f"group {group}: its pod asks for {cpus} cpus, all its jobs side by side, "
        "because --cores is not set; set --cores (e.g. `cores: 2` in the profile) to "
        "the cpus each group's pod should have, and its jobs take turns within them."
    )


def _largest(values: list[Any]) -> Any:
    """The largest number, or the first value that is none (its rule's validation
    then names it)."""
    for value in values:
        try:
            _number(value)
        except ValueError:
            return value
    return max(values, key=_number)


def pod_resources(
    rule: str, threads: int, resources: Mapping[str, Any], settings: CheckedSettings
) -> PodResources:
    """The limits, requests and annotations of one job's pod."""
    res = read_rule_resources(rule, threads, resources)
    flavour = res.interlink_flavour or settings.flavour
    cpus = job_cpus(res)
    if res.mem_mb_per_cpu is not None:
        mem_mib = math.ceil(res.mem_mb_per_cpu * cpus)
    elif res.mem_mb is not None:
        mem_mib = math.ceil(res.mem_mb)
    else:
        mem_mib = FALLBACK_MEM_MB
    warnings: list[str] = []
    if mem_mib < JOB_MEMORY_FLOOR_MIB:
        warnings.append(
            f"Rule {rule}: {mem_mib} MiB of memory is less than the job's own "
            f"Snakemake needs; its pod asks for {JOB_MEMORY_FLOOR_MIB} MiB."
        )
        mem_mib = JOB_MEMORY_FLOOR_MIB
    gpus = _gpu_count(rule, res)
    limits = {"cpu": str(cpus), "memory": f"{mem_mib}Mi"}
    if gpus and settings.gpu_resource:
        limits[settings.gpu_resource] = str(gpus)

    annotations = dict(settings.annotations)
    if flavour == "slurm":
        requests = _requests(cpus, mem_mib, settings)
        flags = " ".join(
            f for f in (annotations.get(SLURM_FLAGS, ""), _slurm_flags(res)) if f
        )
    else:
        # HTCondor's plugin sums int(requests.cpu): a fraction would crash it.
        requests = {"cpu": str(cpus), "memory": f"{mem_mib}Mi"}
        flags = ""
        warnings.extend(_htcondor_warnings(rule, res))
    extra = _rule_annotations(rule, res.interlink_annotations)
    if SLURM_FLAGS in extra:
        flags = " ".join(f for f in (flags, extra.pop(SLURM_FLAGS)) if f)
    annotations.update(extra)
    if flags:
        check_slurm_flags(rule, flags)
        annotations[SLURM_FLAGS] = flags
    else:
        annotations.pop(SLURM_FLAGS, None)
    return PodResources(
        limits=limits,
        requests=requests,
        annotations=annotations,
        image=res.interlink_image,
        node=res.interlink_node,
        flavour=flavour,
        warnings=tuple(warnings),
        time_limit_minutes=(
            HTCONDOR_MAX_WALLTIME_MINUTES
            if flavour == "htcondor"
            else (math.ceil(res.runtime) if res.runtime is not None else None)
        ),
    )


def job_cpus(res: RuleResources) -> int:
    """cpus_per_task, else threads, and never 0: the Slurm plugin's jobstep does the
    same (get_cpu_setting: max(1, ...)), so `threads: 0` runs on one CPU."""
    return max(1, res.cpus_per_task if res.cpus_per_task is not None else res.threads)


def _gpu_count(rule: str, res: RuleResources) -> int:
    if res.gres is not None:
        match = _GPU_GRES.match(res.gres)
        gres_gpus = int(match.group(2)) if match else 0
        if res.gpu and gres_gpus and res.gpu != gres_gpus:
            raise WorkflowError(
                f"Rule {rule}: gpu={res.gpu} contradicts gres={res.gres!r}; "
                "set only one of them."
            )
        return res.gpu or gres_gpus
    if res.gpu_model is not None and not res.gpu:
        return 1  # as the Slurm plugin (set_gres_string): a model alone means one GPU
    return res.gpu or 0


def _requests(cpus: int, mem_mib: int, settings: CheckedSettings) -> dict[str, str]:
    policy = settings.requests
    if policy.fraction is not None:
        return {
            "cpu": f"{max(1, math.floor(cpus * 1000 * policy.fraction))}m",
            "memory": f"{max(1, math.floor(mem_mib * policy.fraction))}Mi",
        }
    fixed = policy.fixed or {}
    limits = {"cpu": cpus, "memory": mem_mib * 2**20}  # cores, bytes
    requests = {}
    for name, quantity in fixed.items():
        # a request above its limit is rejected by the API server: cap it
        if quantity_value(quantity) > limits[name]:
            quantity = str(cpus) if name == "cpu" else f"{mem_mib}Mi"
        requests[name] = quantity
    return requests


def _slurm_flags(res: RuleResources) -> str:
    """sbatch flags for what Slurm needs beyond cpu and memory, as the slurm plugin."""
    flags = []
    if res.runtime is not None:
        flags.append(f"--time={math.ceil(res.runtime)}")
    for option, value in (
        ("--partition", res.slurm_partition),
        ("--account", res.slurm_account),
        ("--qos", res.qos),
        ("--constraint", res.constraint),
    ):
        if value is not None:
            flags.append(f"{option}={shlex.quote(value)}")
    gpus = res.gpu or (1 if res.gpu_model is not None else 0)
    gpu_job = bool(gpus) or (res.gres is not None and "gpu" in res.gres)
    # as the Slurm plugin (get_submit_command): in a GPU job, tasks are per GPU
    per_gpu = res.tasks_per_gpu if res.tasks_per_gpu is not None else res.tasks
    if gpu_job and per_gpu is not None:
        flags.append(f"--ntasks-per-gpu={per_gpu}")
    elif res.tasks is not None:
        flags.append(f"--ntasks={res.tasks}")
    if res.nodes is not None:
        flags.append(f"--nodes={res.nodes}")
    if res.gres is not None:
        flags.append(f"--gres={res.gres}")
    elif gpus:
        model = f":{res.gpu_model}" if res.gpu_model else ""
        flags.append(f"--gres=gpu{model}:{gpus}")
    if res.slurm_extra:
        flags.append(res.slurm_extra.strip())
    return " ".join(flags)


def check_slurm_flags(rule: str, flags: str) -> None:
    """Refuse flags interLink would drop or that the executor owns."""
    try:
        words = shlex.split(flags)
    except ValueError as e:
        raise WorkflowError(
            f"Rule {rule}: Slurm flags {flags!r} cannot be split into words ({e}); "
            "check the quotes in slurm_extra."
        ) from None
    for word in words:
        option = word.split("=", 1)[0]
        if option in _FORBIDDEN_FLAGS:
            use = _FORBIDDEN_FLAGS[option]
            fix = (
                f"use the {use} resource instead (interLink sizes the job from the "
                "pod's limits and ignores this flag)"
                if use
                else "the executor sets it itself"
            )
            raise WorkflowError(
                f"Rule {rule}: Slurm flags must not contain {option}: {fix}."
            )


def _rule_annotations(rule: str, text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        extra = json.loads(text)
    except json.JSONDecodeError as e:
        raise WorkflowError(
            f"Rule {rule}: interlink_annotations must be a JSON object of strings, "
            f'e.g. \'{{"slurm-job.vk.io/pre-exec": "module load cuda"}}\' ({e}).'
        ) from None
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise WorkflowError(
            f"Rule {rule}: interlink_annotations must be a JSON object whose keys and "
            "values are strings."
        )
    for key in extra:
        try:
            check_label_key(key, "annotation")
        except ValueError as e:
            raise WorkflowError(f"Rule {rule}: interlink_annotations: {e}.") from None
    return extra


def _htcondor_warnings(rule: str, res: RuleResources) -> list[str]:
    warnings = []
    ignored = [
        name
        for name in (
            "slurm_partition",
            "slurm_account",
            "qos",
            "constraint",
            "gres",
            "slurm_extra",
            "tasks",
            "tasks_per_gpu",
            "nodes",
        )
        if getattr(res, name) is not None
    ]
    if ignored:
        warnings.append(
            f"Rule {rule}: {', '.join(ignored)} have no meaning on an HTCondor site "
            "and are ignored."
        )
    if res.runtime is not None and res.runtime > HTCONDOR_MAX_WALLTIME_MINUTES:
        warnings.append(
            f"Rule {rule}: runtime={math.ceil(res.runtime)} min exceeds the "
            f"{HTCONDOR_MAX_WALLTIME_MINUTES} min wall time that interLink's HTCondor "
            "plugin sets for every job."
        )
    if res.gpu or res.gpu_model is not None:
        warnings.append(
            f"Rule {rule}: interLink's HTCondor plugin does not request GPUs; "
            "gpu reaches the site only as a pod limit (--interlink-gpu-resource)."
        )
    return warnings
