"""The run's Secret: how the jobs' environment travels (never in the pod spec)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

SECRET_LIMIT_BYTES = 1024 * 1024 - 4096  # a Secret holds 1 MiB, minus metadata
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class SecretError(ValueError):
    """The environment cannot travel in a Secret; the message says what to do."""


def secret_manifest(
    name: str, labels: Mapping[str, str], env: Mapping[str, str]
) -> dict[str, Any]:
    """One Secret holding every variable of `env`; refused, naming the variables,
    when a name cannot be a Secret key or the whole is larger than a Secret holds."""
    bad = sorted(key for key in env if not _KEY.match(key))
    if bad:
        raise SecretError(
            f"Environment variable names {bad} cannot be Secret keys (letters, "
            "digits, '-', '_', '.'); rename them."
        )
    data = {k: base64.b64encode(v.encode()).decode() for k, v in env.items()}
    size = sum(len(k) + len(v) for k, v in data.items())
    if size > SECRET_LIMIT_BYTES:
        raise SecretError(
            f"The jobs' environment ({', '.join(sorted(env))}) takes {size} bytes, "
            f"more than a Kubernetes Secret holds ({SECRET_LIMIT_BYTES}); pass fewer "
            "or smaller variables with --envvars."
        )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "labels": dict(labels)},
        "data": data,
    }
