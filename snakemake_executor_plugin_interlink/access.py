"""The start-up check: the permissions a run needs, asked before anything exists, and
what an API refusal tells the user to do."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

from .kube import Forbidden, KubeClient, KubeError, NotFound, Unauthorized

Permission = tuple[str, str, str]  # verb, resource, subresource

# what the executor needs; docs/setup.md grants exactly this
REQUIRED_PERMISSIONS: tuple[Permission, ...] = (
    ("create", "pods", ""),
    ("get", "pods", ""),
    ("list", "pods", ""),
    ("watch", "pods", ""),
    ("delete", "pods", ""),
    ("deletecollection", "pods", ""),
    ("get", "pods", "log"),
)
SECRET_PERMISSIONS: tuple[Permission, ...] = (
    ("create", "secrets", ""),
    ("delete", "secrets", ""),
)


def missing_permissions(
    wanted: Sequence[Permission], allowed: Sequence[bool]
) -> list[str]:
    """'verb resource[/sub]' of each permission not allowed, in the order asked."""
    return [
        f"{verb} {resource}{'/' + sub if sub else ''}"
        for (verb, resource, sub), ok in zip(wanted, allowed, strict=True)
        if not ok
    ]


def api_problem(what: str, namespace: str, source: str, error: KubeError) -> str:
    """A refusal or failure of the API, with what to do about it."""
    hint = ""
    if isinstance(error, Forbidden):
        hint = " Grant the Role in docs/setup.md."
    elif isinstance(error, Unauthorized):
        hint = " The credentials were refused: log in again or check the token."
    return f"Cannot {what} in namespace {namespace!r} with {source}: {error}.{hint}"


def check_access(
    kube: KubeClient,
    namespace: str,
    needs_secrets: bool,
    probe_pod: dict[str, Any],
    pool: Executor,
) -> None:
    """Refuse to start without the permissions the run needs, naming each one, and
    have the server check a pod like the run's (dry run) before creating anything."""
    wanted = REQUIRED_PERMISSIONS + (SECRET_PERMISSIONS if needs_secrets else ())
    source = kube.access.source
    try:
        allowed = list(pool.map(lambda p: kube.can_i(namespace, *p), wanted))
    except Forbidden:
        allowed = [True] * len(wanted)  # reviews not allowed: the dry run decides
    except KubeError as e:
        raise WorkflowError(
            api_problem("check permissions", namespace, source, e)
        ) from None
    missing = missing_permissions(wanted, allowed)
    if missing:
        raise WorkflowError(
            f"The Kubernetes user of {source} lacks permissions in namespace "
            f"{namespace!r}: {', '.join(missing)}. Grant them with the Role in "
            "docs/setup.md (or, if the namespace does not exist, create it or choose "
            "another with --interlink-namespace)."
        )
    try:
        kube.dry_run_create_pod(namespace, probe_pod)
    except NotFound:
        raise WorkflowError(
            f"Namespace {namespace!r} does not exist. Create it, or choose another "
            "with --interlink-namespace."
        ) from None
    except KubeError as e:
        raise WorkflowError(
            api_problem("create pods (dry run)", namespace, source, e)
        ) from None
