"""Just enough of the Kubernetes API for the agent: raw JSON over httpx.

The kubernetes package only reads the kubeconfig (contexts, CA, token, client certs);
requests go through httpx as plain JSON, which costs far less CPU than the typed client
when thousands of pods are tracked. Transient failures (connection errors, 429, 5xx) are
retried a few times; anything else raises ApiError.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
from kubernetes import config as kube_config
from kubernetes.client import Configuration

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
_TRANSIENT = {429, 500, 502, 503, 504}


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(f"HTTP {status} {reason}: {message}".strip())
        self.status = status
        self.reason = reason
        self.message = message


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        return ApiError(response.status_code, body.get("message", ""), body.get("reason", ""))
    except ValueError:
        return ApiError(response.status_code, response.text[:500])


class Kube:
    """A small synchronous client; safe to share between threads."""

    def __init__(self, kubeconfig: str, timeout: float = 30.0) -> None:
        cfg = Configuration()
        kube_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        headers = {"Accept": "application/json"}
        for setting in cfg.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        verify: ssl.SSLContext | bool = False
        if cfg.verify_ssl:
            verify = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
            if cfg.cert_file:
                verify.load_cert_chain(cfg.cert_file, cfg.key_file)
        self._options: dict[str, Any] = dict(base_url=cfg.host, headers=headers, verify=verify)
        self._client = httpx.Client(timeout=timeout, **self._options)

    def close(self) -> None:
        self._client.close()

    def new_stream_client(self) -> httpx.Client:
        """A separate client for long watches (no read timeout), so they never hold the pool."""
        return httpx.Client(timeout=httpx.Timeout(30.0, read=None), **self._options)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        attempts: int = 4,
    ) -> Any:
        """Send one request, retrying transient failures; returns the decoded JSON body."""
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content is not None else None
        for attempt in range(1, attempts + 1):
            try:
                response = self._client.request(method, path, params=params, content=content, headers=headers)
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise ApiError(0, f"{method} {path}: {exc}", "ConnectionError") from exc
                log.warning("%s %s: %s (attempt %d/%d)", method, path, exc, attempt, attempts)
            else:
                if response.is_success:
                    return response.json() if response.content else None
                if response.status_code not in _TRANSIENT or attempt == attempts:
                    raise _error(response)
                log.warning("%s %s: HTTP %d (attempt %d/%d)", method, path, response.status_code, attempt, attempts)
            time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Any, content_type: str = MERGE_PATCH) -> Any:
        return self.request("PATCH", path, body=body, content_type=content_type)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body=body)

    def watch(self, client: httpx.Client, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield watch events until the server ends the watch; raises ApiError on HTTP errors."""
        params = {**params, "watch": "true", "allowWatchBookmarks": "true"}
        with client.stream("GET", path, params=params) as response:
            if not response.is_success:
                response.read()
                raise _error(response)
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)
