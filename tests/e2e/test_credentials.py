"""Credentials that last a long run: a run from inside a pod outlives its service
account's tokens, as runs longer than an hour outlive projected tokens."""

from __future__ import annotations

import contextlib
import os
import ssl
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from snakemake_executor_plugin_interlink.kube import KubeClient, NotFound

from .conftest import Testbed, pod_files, wait_until

# three jobs in sequence, each long enough for a token to die while it runs
SNAKEFILE = """
rule all:
    input: "c.txt"
rule a:
    output: "a.txt"
    shell: "sleep 20; echo a > {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "sleep 20; cat {input} > {output}; echo b >> {output}"
rule c:
    input: "b.txt"
    output: "c.txt"
    shell: "sleep 20; cat {input} > {output}; echo c >> {output}"
"""


class BoundTokens:
    """Tokens of a service account that die on demand. TokenRequest's shortest
    lifetime (600 s) is too long for a test, so each token is bound to a Secret of its
    own (boundObjectRef): deleting the Secret makes the API server refuse the token."""

    def __init__(self, admin: KubeClient, namespace: str, account: str):
        self.admin = admin
        self.namespace = namespace
        self.account = account
        self.secrets: dict[str, str] = {}  # token -> the name of its Secret
        self.pod_dir = Path()  # token, ca.crt, namespace: what a pod mounts

    def issue(self) -> str:
        name = f"{self.account}-bound-{len(self.secrets) + 1}"
        secret = self.admin.request(
            "POST",
            f"/api/v1/namespaces/{self.namespace}/secrets",
            body={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}},
        )
        answer = self.admin.request(
            "POST",
            f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{self.account}/token",
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "expirationSeconds": 600,
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "name": name,
                        "uid": secret["metadata"]["uid"],
                    },
                },
            },
        )
        token = answer["status"]["token"]
        self.secrets[token] = name
        return token

    def revoke(self, token: str) -> None:
        self.admin.delete_secret(self.namespace, self.secrets[token])

    def revoke_all(self) -> None:
        for token in self.secrets:
            self.revoke(token)


def answer_to(testbed: Testbed, ca: Path, token: str) -> int:
    """The API server's answer to a pod list made with this token and nothing else
    (the admin's client certificate would authenticate the request by itself)."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca))) as http:
        response = http.get(
            f"{testbed.admin.access.server}/api/v1/namespaces/{testbed.namespace}/pods",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {token}"},
        )
    return response.status_code


def write_token(pod_dir: Path, token: str) -> None:
    """Replace the token file in one step, as the kubelet does (a reader never sees
    half a token)."""
    (pod_dir / "token.new").write_text(token)
    os.replace(pod_dir / "token.new", pod_dir / "token")


@pytest.fixture
def account(testbed: Testbed, tmp_path_factory) -> Iterator[BoundTokens]:
    """A service account holding the Role of docs/setup.md (which the testbed's
    executor user holds in its namespace), its tokens, and what its pods mount
    (`pod_dir`); all of it removed afterwards."""
    admin, namespace = testbed.admin, testbed.namespace
    name = f"creds-{uuid.uuid4().hex[:8]}"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"
    role = admin.request("GET", f"{rbac}/snakemake-executor")["roleRef"]
    tokens = BoundTokens(admin, namespace, name)
    try:
        admin.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            body={
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name},
            },
        )
        admin.request(
            "POST",
            rbac,
            body={
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name},
                "roleRef": role,
                "subjects": [
                    {"kind": "ServiceAccount", "name": name, "namespace": namespace}
                ],
            },
        )
        tokens.pod_dir = pod_files(
            testbed, namespace, name, tmp_path_factory.mktemp("pod") / name
        )
        yield tokens
    finally:
        tokens.revoke_all()
        for path in (
            f"{rbac}/{name}",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
        ):
            with contextlib.suppress(NotFound):
                admin.request("DELETE", path)


def test_a_run_from_a_pod_outlives_two_of_its_tokens(
    testbed: Testbed, account: BoundTokens, workdir: Path
):
    """Each of the three jobs runs while a token dies: during the first and second
    job the token file gets a new token and the old one is revoked. The executor
    meets a 401 once per rotation, reloads the file, and the run finishes."""
    (workdir / "Snakefile").write_text(SNAKEFILE)
    pod_dir = account.pod_dir
    ca = pod_dir / "ca.crt"

    def answer(token: str) -> int:
        return answer_to(testbed, ca, token)

    token = account.issue()
    write_token(pod_dir, token)
    assert wait_until(lambda: answer(token) == 200, timeout=30), "no Role yet"
    proc = testbed.start_snakemake(workdir, pod=pod_dir)
    seen: set[str] = set()

    def pods_seen(count: int) -> bool:
        seen.update(p["metadata"]["name"] for p in testbed.pods())
        return len(seen) >= count or proc.poll() is not None

    for job in (1, 2):
        assert wait_until(partial(pods_seen, job), timeout=120)
        assert proc.poll() is None, (
            f"the run ended before its tokens died:\n{proc.stdout.read()[-3000:]}"
        )
        old, token = token, account.issue()
        write_token(pod_dir, token)
        account.revoke(old)
        assert wait_until(lambda old=old: answer(old) == 401, timeout=30), (
            f"the token of Secret {account.secrets[old]} is still accepted"
        )

    out, _ = proc.communicate(timeout=300)
    print(out[-10000:])
    assert proc.returncode == 0, out[-3000:]
    assert "via in-cluster service account" in out
    assert (workdir / "c.txt").read_text().split() == ["a", "b", "c"]
    reloads = out.count("refused the credentials (401); reloaded them from the")
    assert reloads == 2, "one 401 and one reload per revoked token"
