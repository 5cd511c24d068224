"""A plain-HTTP front for the testbed's API server that misbehaves on purpose: it answers
a share of requests with 429 + Retry-After or 503, and cuts a share of responses in the
middle (also of watch streams), as throttling and flaky networks do; on request it loses
the answers of pod creates that the API server carried out."""

from __future__ import annotations

import json
import random
import socket
import ssl
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_HOP = {
    "connection",
    "transfer-encoding",
    "content-length",
    "keep-alive",
    "host",
    "content-encoding",
}


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        ca: str,
        *,
        p429=0.1,
        p503=0.1,
        p_reset=0.05,
        lose_first_create_answers: bool = False,
        seed: int = 7,
    ):
        """`lose_first_create_answers`: the first create of each pod reaches the API
        server, which creates the pod, and its answer is lost (the connection drops),
        as when a network fails at the worst moment."""
        # httpx deprecates verify=<path>: a context that trusts the testbed's CA
        self.upstream = httpx.Client(
            base_url=upstream,
            verify=ssl.create_default_context(cafile=ca),
            timeout=None,
        )
        self.rates = (p429, p503, p_reset)
        self.lose_first_create_answers = lose_first_create_answers
        self.created: set[str] = set()
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                proxy.handle(self)

            do_POST = do_DELETE = do_PATCH = do_PUT = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.upstream.close()

    def _draw(self) -> str:
        p429, p503, p_reset = self.rates
        with self.lock:
            x = self.random.random()
        if x < p429:
            return "429"
        if x < p429 + p503:
            return "503"
        if x < p429 + p503 + p_reset:
            return "reset"
        return "pass"

    def _first_create(self, h: BaseHTTPRequestHandler, body: bytes | None) -> bool:
        if not (
            self.lose_first_create_answers
            and h.command == "POST"
            and h.path.split("?")[0].endswith("/pods")
            and "dryRun" not in h.path
            and body
        ):
            return False
        name = json.loads(body)["metadata"]["name"]
        with self.lock:
            first = name not in self.created
            self.created.add(name)
        return first

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        if self._first_create(h, body):
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
            self.upstream.request(h.command, h.path, headers=headers, content=body)
            with self.lock:
                self.counts["lost"] += 1
                self.counts["requests"] += 1
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        fault = self._draw()
        with self.lock:
            self.counts[fault] += 1
            self.counts["requests"] += 1
        if fault in ("429", "503"):
            payload = (
                b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":'
                + fault.encode()
                + b',"message":"injected by the fault proxy"}'
            )
            h.send_response(int(fault))
            if fault == "429":
                h.send_header("Retry-After", "1")
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
        with self.upstream.stream(
            h.command, h.path, headers=headers, content=body
        ) as up:
            h.send_response(up.status_code)
            for k, v in up.headers.items():
                if k.lower() not in _HOP:
                    h.send_header(k, v)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            sent = 0
            for chunk in up.iter_raw():
                if fault == "reset" and sent > 0:
                    h.connection.shutdown(socket.SHUT_RDWR)
                    h.close_connection = True
                    return
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                h.wfile.flush()
                sent += len(chunk)
                if fault == "reset":  # cut after the first part of the answer
                    h.connection.shutdown(socket.SHUT_RDWR)
                    h.close_connection = True
                    return
            h.wfile.write(b"0\r\n\r\n")
