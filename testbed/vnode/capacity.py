"""The node's cpu and memory from the batch system's free resources (pure: no I/O).

interLink 0.6.2 (f6321757, pkg/virtualkubelet/virtualkubelet.go `nodeUpdate`) pings every
30 s; when the answer is 200 and its body parses as a PingResponse with `resources`,
`updateNodeResources` overwrites BOTH capacity and allocatable cpu and memory with what the
plugin reported (an unparsable quantity keeps the old value; pods and GPUs are not sent).
A failed ping changes nothing, so the last reported values stay.

The Slurm plugin HEAD (f8451d9, pkg/slurm/Status.go `getClusterResources`, answering the
ping, i.e. /status with no pods) reports FREE resources:
  1. `sinfo --json`: cpu = sum(cpus) - sum(alloc_cpus), memory = sum(real_memory) - used,
     used per node = alloc_memory if > 0 else real_memory - free_memory, in Mi, clamped at
     0 (`parseClusterResourcesFromJSON`). Any stderr, unparsable JSON (numbers must be
     integers, as Go's int64 fields), or no nodes -> 2.;
  2. `sinfo --noheader --format=%c|%m|%e`: cpu = the total INSTALLED cpus, memory = the
     sum of free memory (Mi) (`parseClusterResourcesFromText`); lines that do not parse are
     skipped, so no line at all reports cpu 0, memory 0Mi. Any stderr: the ping fails (500).
The released plugins (<= 0.6.2-pre5) answer the ping with `sinfo -s`'s text: no JSON, so
the capacity stays what the VK was configured with (Helm: 8 cpu, 49Gi).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .quantity import parse_quantity

UPDATED = ("cpu", "memory")  # what updateNodeResources takes from the Slurm plugin's answer
_INT = re.compile(r"^[+-]?[0-9]+$")  # strconv.ParseInt(s, 10, 64)


def _go_int(node: dict[str, Any], key: str) -> int:
    """A field of Go's slurmJSONNode (int64): absent or null -> 0; a non-integer fails the parse."""
    value = node.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"sinfo --json parse error: {key}={value!r} is not an int64")
    return value


def parse_sinfo_json(stdout: str) -> dict[str, str]:
    """The plugin's reading of `sinfo --json` (ValueError where it returns an error)."""
    try:
        data = json.loads(stdout)
    except ValueError as exc:
        raise ValueError(f"sinfo --json parse error: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("sinfo --json parse error: not an object")
    nodes = data.get("nodes") or []
    if not isinstance(nodes, list):
        raise ValueError("sinfo --json parse error: nodes is not a list")
    if not nodes:
        raise ValueError("sinfo --json returned no nodes")
    total_cpu = alloc_cpu = total_mem = used_mem = 0
    for node in nodes:
        node = node or {}
        if not isinstance(node, dict):
            raise ValueError("sinfo --json parse error: a node is not an object")
        total_cpu += _go_int(node, "cpus")
        alloc_cpu += _go_int(node, "alloc_cpus")
        real = _go_int(node, "real_memory")
        total_mem += real
        alloc_mem = _go_int(node, "alloc_memory")
        used_mem += alloc_mem if alloc_mem > 0 else real - _go_int(node, "free_memory")
    return {"cpu": str(max(0, total_cpu - alloc_cpu)), "memory": f"{max(0, total_mem - used_mem)}Mi"}


def parse_sinfo_text(stdout: str) -> dict[str, str]:
    """The plugin's reading of `sinfo --noheader --format=%c|%m|%e` (never fails)."""
    total_cpu = free_mem = 0
    for line in stdout.split("\n"):
        parts = [part.strip() for part in line.strip().split("|")]
        if len(parts) < 3 or not all(_INT.match(part) for part in parts[:3]):
            continue
        total_cpu += int(parts[0])
        free_mem += int(parts[2])
    return {"cpu": str(total_cpu), "memory": f"{free_mem}Mi"}


def host_resources(cpus: int, meminfo: str) -> dict[str, str]:
    """The local mode's stand-in: what the text path reports for this machine (all its cpus,
    its available memory in Mi), as slurmd would report it."""
    available_kib = 0
    for line in meminfo.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "MemAvailable":
            available_kib = int(rest.split()[0])
    return {"cpu": str(cpus), "memory": f"{available_kib // 1024}Mi"}


def apply_resources(capacity: dict[str, str], resources: dict[str, str] | None) -> dict[str, str]:
    """updateNodeResources: the node's capacity (= allocatable) after a ping answer."""
    updated = dict(capacity)
    for key in UPDATED:
        value = (resources or {}).get(key, "")
        if not value:
            continue
        try:
            parse_quantity(value)
        except ValueError:
            continue  # "Invalid ... value in ping response": the old value stays
        updated[key] = value
    return updated
