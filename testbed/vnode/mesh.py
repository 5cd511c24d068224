"""A site with interLink's full mesh network (`Network.FullMesh: true`), as this testbed
would see it (pure: no I/O).

interLink f6321757, pkg/virtualkubelet/virtualkubelet.go `CreatePod` (l. 1840): for a pod
without the annotation `interlink.eu/mesh-network: disabled` (case-insensitive, trimmed:
`isMeshNetworkingDisabled`, l. 1623) it calls `handleWstunnelCreation` (l. 1631)
SYNCHRONOUSLY, before the pod's initial status and before the pod enters the VK's map:
`createDummyPod` (l. 877) makes the namespace `<ns>-wstunnel` and applies the wstunnel
template (Deployment, Service, Ingress, ConfigMap: `applyWstunnelManifests`, l. 1306) with
`setupWireGuardConfig` (l. 1023) keys, `waitForDeploymentPod` (l. 1377) lists the
Deployment's pods every 1 s, then `waitForWstunnelPodIP` (l. 1670) waits up to 30 s (the
pod annotation `interlink.virtual-kubelet.io/wstunnel-timeout`, a Go duration, overrides
it) for that pod's IP. Only then would the Slurm plugin prepend the mesh script to the job
(mesh.go `addWstunnelClientAnnotation` puts it in `slurm-job.vk.io/pre-exec`; prepare.go
l. 1201 writes it out as mesh.sh).

The wstunnel pod's template asks for `nodeSelector: kubernetes.io/os: linux`; this
testbed's only nodes are virtual nodes (`kubernetes.io/os: virtual-kubelet`), so it stays
Pending without an IP: the set-up fails in the VK, before any job exists. CreatePod
returns "wstunnel pod <ns>-wstunnel/<pod> failed to get an IP within 30s timeout" and the
virtual-kubelet library (`handleProviderError`) writes phase Failed (restartPolicy Never;
else Pending), reason ProviderFailed, that message, no container statuses, and a Warning
event ProviderCreateFailed. interLink runs ONE pod sync worker (cmd/virtual-kubelet/main.go
`pc.Run(ctx, 1)`), so every other pod event waits behind each such set-up.
"""

from __future__ import annotations

import hashlib
import math
import re
from decimal import Decimal
from typing import Any

MESH_ANNOTATION = "interlink.eu/mesh-network"
TIMEOUT_ANNOTATION = "interlink.virtual-kubelet.io/wstunnel-timeout"
DEFAULT_TIMEOUT = 30.0
DEPLOYMENT_POD_WAIT = 1.0  # waitForDeploymentPod: the first list finds no pod yet, 1 s sleep
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString's alphabet


def mesh_disabled(pod: dict[str, Any]) -> bool:
    """isMeshNetworkingDisabled."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(MESH_ANNOTATION, "")).strip().lower() == "disabled"


def _sanitize(name: str) -> str:
    """sanitizeDNSName."""
    name = re.sub(r"[^a-z0-9]", "-", name.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if len(name) > 63:
        name = name[:63].rstrip("-")
    return name or "default"


def _unique_truncate(text: str, max_len: int, full: str) -> str:
    if len(text) <= max_len:
        return text
    suffix = hashlib.sha256(full.encode()).hexdigest()[:8]
    return text[: max_len - len(suffix) - 1].rstrip("-") + "-" + suffix


def wstunnel_names(pod_name: str, namespace: str) -> tuple[str, str]:
    """computeWstunnelResourceNames (mesh.go): (resource base name, wstunnel namespace)."""
    ns, name = _sanitize(namespace), _sanitize(pod_name)
    wstunnel_ns = ns + "-wstunnel"
    if len(wstunnel_ns) > 63:
        wstunnel_ns = ns[:54] + "-wstunnel"
    base, full = f"{name}-{ns}", f"{pod_name}-{namespace}"
    if len(base) > 63:
        if len(name) > 31:
            name = _unique_truncate(name, 31, full)
        base = f"{name}-{ns[:31]}".rstrip("-")
    if len(f"{base}-{wstunnel_ns}") > 63:
        base = _unique_truncate(base, 31, full)
        if len(wstunnel_ns) > 31:
            wstunnel_ns = wstunnel_ns[:31].rstrip("-")
    return base, wstunnel_ns


def _safe_hash(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:length])


def dummy_pod_name(deployment: str, uid: str) -> str:
    """The Deployment's first pod: <deployment>-<pod-template-hash>-<5 chars>, the
    generateName prefix cut at 58 characters as the API server does."""
    prefix = f"{deployment}-{_safe_hash('rs' + uid, 10)}-"[:58]
    return prefix + _safe_hash("pod" + uid, 5)


_GO_UNITS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),
    "μs": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}
_GO_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float | None:
    """time.ParseDuration in seconds (None: Go would return an error)."""
    rest, sign = text, 1
    if rest and rest[0] in "+-":
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        return None
    total = Decimal(0)
    while rest:
        match = _GO_PART.match(rest)
        if not match or match.group(1) in ("", "."):
            return None
        total += Decimal(match.group(1)) * _GO_UNITS[match.group(2)]
        rest = rest[match.end() :]
    return float(sign * total)


def go_duration_string(seconds: float) -> str:
    """time.Duration.String()."""
    ns = round(Decimal(str(seconds)) * 1_000_000_000)
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(int(ns))

    def fraction(value: int, digits: int) -> str:
        whole, part = divmod(value, 10**digits)
        decimals = str(part).rjust(digits, "0").rstrip("0")
        return f"{whole}.{decimals}" if decimals else str(whole)

    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{fraction(ns, 3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{fraction(ns, 6)}ms"
    minutes, rest = divmod(ns, 60 * 10**9)
    text = fraction(rest, 9) + "s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = (f"{hours}h" if hours else "") + f"{minutes}m" + text
    return sign + text


def wstunnel_timeout(pod: dict[str, Any]) -> float:
    """waitForWstunnelPodIP's timeout: the annotation if it parses, else 30 s."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    parsed = parse_go_duration(str(annotations.get(TIMEOUT_ANNOTATION, "")))
    return DEFAULT_TIMEOUT if parsed is None else parsed


def failed_setup(pod: dict[str, Any]) -> tuple[float, str]:
    """How long CreatePod blocks in this testbed (waitForDeploymentPod's 1 s, then 1 s polls
    until the timeout), and the error it returns."""
    meta = pod.get("metadata") or {}
    timeout = wstunnel_timeout(pod)
    base, namespace = wstunnel_names(meta.get("name", ""), meta.get("namespace", ""))
    blocked = DEPLOYMENT_POD_WAIT + (math.ceil(timeout) if timeout > 0 else 0)
    message = (
        f"wstunnel pod {namespace}/{dummy_pod_name(base, meta.get('uid', ''))} "
        f"failed to get an IP within {go_duration_string(timeout)} timeout"
    )
    return blocked, message
