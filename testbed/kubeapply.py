"""Apply a multi-document YAML file: create each object, or update it if it exists.

A fresh machine may have no kubectl, so the testbed applies its manifests with the
kubernetes Python client. Usage: python -m kubeapply --kubeconfig FILE manifest.yaml...
"""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

import yaml
from kubernetes import config, dynamic
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.rest import ApiException


def apply_document(dyn: dynamic.DynamicClient, doc: dict[str, Any]) -> str:
    """Create `doc`; if it already exists, replace it. Returns what was done."""
    api = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    meta = doc["metadata"]
    namespace = meta.get("namespace") if api.namespaced else None
    try:
        api.create(body=doc, namespace=namespace)
        return "created"
    except ApiException as exc:
        if exc.status != 409:
            raise
    current = api.get(name=meta["name"], namespace=namespace)
    body = copy.deepcopy(doc)
    body["metadata"]["resourceVersion"] = current.metadata.resourceVersion
    try:
        api.replace(body=body, namespace=namespace)
        return "unchanged or updated"
    except ApiException as exc:
        if exc.status != 422:  # an immutable field changed (e.g. a RoleBinding's roleRef)
            raise
    api.delete(name=meta["name"], namespace=namespace)
    api.create(body=doc, namespace=namespace)
    return "recreated"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("manifests", nargs="+")
    args = parser.parse_args(argv)
    dyn = dynamic.DynamicClient(ApiClient(_configuration(args.kubeconfig)))
    for path in args.manifests:
        with open(path, encoding="utf-8") as handle:
            for doc in yaml.safe_load_all(handle):
                if not doc:
                    continue
                what = apply_document(dyn, doc)
                meta = doc["metadata"]
                where = f"{meta['namespace']}/" if meta.get("namespace") else ""
                print(f"{doc['kind']} {where}{meta['name']}: {what}")
    return 0


def _configuration(kubeconfig: str) -> Configuration:
    cfg = Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    return cfg


if __name__ == "__main__":
    sys.exit(main())
