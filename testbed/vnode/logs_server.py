"""The kubelet's log endpoint: GET /containerLogs/<ns>/<pod>/<container> over HTTPS.

The API server proxies `pods/log` here (node InternalIP + kubeletEndpoint port). For an
HTCondor node it is what that plugin's /getLogs returns at every commit since its first
(handles.py LogsHandler, HEAD 6f5ee3e l. 848-860): HTTP 200 and the body
`"NOT IMPLEMENTED"`, quotes included (json.dumps of the string), for any pod, which
interLink relays as it is (read_condor_logs). For a Slurm node it is
what the Slurm plugin's /getLogs returns: job.out (the job script's own
lines) followed by the container's run-<name>.out, with tailLines and limitBytes applied
the plugin's way (one line / one byte more than asked, and an error when the request
equals the size exactly, where the plugin's slice goes out of range); a missing file reads
as empty (plugin GetLogs.go ReadLogs), so a job not started yet answers 200 with no body.

interLink's API server refuses tailLines together with limitBytes (400 "Both Tail and
LimitBytes set. Set only one of them", pkg/interlink/api/logs.go GetLogsHandler); the VK
then turns any non-200 into an error without the body (execute.go, the /getLogs call), and
the virtual-kubelet library answers 500 with that error. `serve_without_certificate`
stands for a VK whose serving-certificate CSR is not approved yet: it has no certificate
to present and every TLS handshake fails.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from .condor import LOGS_BODY as CONDOR_LOGS_BODY

log = logging.getLogger(__name__)

_PATH = re.compile(r"^/containerLogs/([^/]+)/([^/]+)/([^/]+)/?$")


class LogError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


BOTH_LIMITS_STATUS = 400  # interLink's answer to the VK, which the client never sees
VK_LOG_ERROR = (
    "error getting container logs?): HTTP InterLink session NoSessionFound#0: Unexpected error "
    "occured while getting logs. Status code: {status}. Check InterLink's logs for further informations"
)


def check_log_options(tail_lines: int, limit_bytes: int) -> None:
    """interLink's API-server check, as the client sees it through the VK (500)."""
    if tail_lines and limit_bytes:
        raise LogError(500, VK_LOG_ERROR.format(status=BOTH_LIMITS_STATUS))


def render_logs(job_out: bytes, container_out: bytes, tail_lines: int, limit_bytes: int) -> bytes:
    """Combine and cut the output as the plugin does (pure)."""
    check_log_options(tail_lines, limit_bytes)
    output = job_out + container_out
    if tail_lines:
        lines = output.split(b"\n")
        if tail_lines > len(lines):
            chosen = lines
        elif tail_lines == len(lines):
            raise LogError(500, "runtime error: slice bounds out of range [-1:] (tailLines equals the line count)")
        else:
            chosen = lines[len(lines) - tail_lines - 1 :]
        return b"".join(line + b"\n" for line in chosen)
    if limit_bytes:
        if limit_bytes > len(output):
            return output
        if limit_bytes == len(output):
            raise LogError(500, "runtime error: slice bounds out of range [-1:] (limitBytes equals the log size)")
        return output[len(output) - limit_bytes - 1 :]
    return output


def read_logs(directory: Path | None, pod_ref: str, container: str, tail_lines: int, limit_bytes: int) -> bytes:
    if directory is None:
        raise LogError(404, f"pod {pod_ref} is not known to this virtual node")
    # the plugin falls back to the init container's file only when reading fails; a
    # missing file is not a failure for it but an empty log
    container_out = _read_or_empty(directory / f"run-{container}.out")
    if container_out is None:
        container_out = _read_or_empty(directory / f"init-{container}.out")
    job_out = _read_or_empty(directory / "job.out")
    if container_out is None or job_out is None:
        raise LogError(500, f"error context: error during ReadFile() of readLogs() for pod {pod_ref}")
    return render_logs(job_out, container_out, tail_lines, limit_bytes)


def _read_or_empty(path: Path) -> bytes | None:
    """The plugin's ReadLogs: a missing file is empty; another read error is an error."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError:
        return None


def read_condor_logs(directory: Path | None, pod_ref: str, container: str, tail_lines: int, limit_bytes: int) -> bytes:
    """The HTCondor plugin's /getLogs: `"NOT IMPLEMENTED"` with HTTP 200, for every pod and
    container, whatever tailLines or limitBytes ask (interLink's own refusal of the two
    together comes first)."""
    check_log_options(tail_lines, limit_bytes)
    return CONDOR_LOGS_BODY


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _int(values: dict[str, list[str]], key: str) -> int:
    try:
        return max(0, int(values.get(key, ["0"])[0]))
    except ValueError:
        return 0


LogReader = Callable[[Path | None, str, str, int, int], bytes]


def make_handler(
    locate: Callable[[str, str], Path | None], reader: LogReader = read_logs
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlparse(self.path)
            match = _PATH.match(url.path)
            if not match:
                self._send(404, b"not found: only /containerLogs/<namespace>/<pod>/<container> is served\n")
                return
            namespace, pod, container = match.groups()
            query = parse_qs(url.query)
            try:
                body = reader(
                    locate(namespace, pod),
                    f"{namespace}/{pod}",
                    container,
                    _int(query, "tailLines"),
                    _int(query, "limitBytes"),
                )
            except LogError as exc:
                self._send(exc.status, (str(exc) + "\n").encode())
                return
            self._send(200, body)

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("logs: " + format, *args)

    return Handler


def ensure_certificate(directory: Path, node: str, address: str) -> tuple[Path, Path]:
    """A self-signed serving certificate (the 1.20 API server does not verify it)."""
    cert, key = directory / "kubelet.crt", directory / "kubelet.key"
    if not (cert.exists() and key.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3650",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-subj",
                f"/CN={node}",
                "-addext",
                f"subjectAltName=IP:{address},DNS:{node},DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


def serve(
    address: str,
    port: int,
    cert: Path,
    key: Path,
    locate: Callable[[str, str], Path | None],
    reader: LogReader = read_logs,
) -> ThreadingHTTPServer:
    """Start the HTTPS server in a daemon thread and return it."""
    server = ThreadingHTTPServer((address, port), make_handler(locate, reader))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="logs-server", daemon=True).start()
    return server


# a TLS record: alert (21), TLS 1.2, length 2, fatal (2) internal_error (80): what a Go
# server whose GetCertificate has nothing to offer sends ("remote error: tls: internal error")
_TLS_INTERNAL_ERROR_ALERT = bytes([21, 3, 3, 0, 2, 2, 80])


def serve_without_certificate(address: str, port: int) -> socket.socket:
    """A kubelet port whose serving certificate is not issued yet: every handshake fails."""
    listener = socket.create_server((address, port))

    def refuse() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(16384)  # the ClientHello
                    conn.sendall(_TLS_INTERNAL_ERROR_ALERT)
                except OSError:
                    pass

    threading.Thread(target=refuse, name="logs-no-certificate", daemon=True).start()
    return listener
