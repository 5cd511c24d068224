"""The kubelet's log endpoint: GET /containerLogs/<ns>/<pod>/<container> over HTTPS.

The API server proxies `pods/log` here (node InternalIP + kubeletEndpoint port). For an
HTCondor node it is what that plugin's /getLogs returns (read_condor_logs), or HTTP 500
"NOT IMPLEMENTED" as in earlier versions (logs_not_implemented). For a Slurm node it is
what the Slurm plugin's /getLogs returns: job.out (the job script's own
lines) followed by the container's run-<name>.out, with tailLines and limitBytes applied
the plugin's way (one line / one byte more than asked, and an error when the request
equals the size exactly, where the plugin's slice goes out of range).
"""

from __future__ import annotations

import logging
import re
import ssl
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from .condor import render_logs as render_condor_logs

log = logging.getLogger(__name__)

_PATH = re.compile(r"^/containerLogs/([^/]+)/([^/]+)/([^/]+)/?$")


class LogError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def render_logs(job_out: bytes, container_out: bytes, tail_lines: int, limit_bytes: int) -> bytes:
    """Combine and cut the output as the plugin does (pure)."""
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
    try:
        container_out = (directory / f"run-{container}.out").read_bytes()
    except OSError:
        try:
            container_out = (directory / f"init-{container}.out").read_bytes()
        except OSError as exc:
            raise LogError(500, f"cannot find any log for container {container} of pod {pod_ref}: {exc}") from exc
    try:
        job_out = (directory / "job.out").read_bytes()
    except OSError as exc:
        raise LogError(500, f"cannot read the job output of pod {pod_ref}: {exc}") from exc
    return render_logs(job_out, container_out, tail_lines, limit_bytes)


def read_condor_logs(directory: Path | None, pod_ref: str, container: str, tail_lines: int, limit_bytes: int) -> bytes:
    """The HTCondor plugin's /getLogs: the job's Output, Error and user log (transferred back
    into the job directory when the job ends), whatever the container, tailLines or limitBytes."""
    if directory is None:
        raise LogError(404, f"pod {pod_ref} is not known to this virtual node")
    job_id = (_read(directory / "JobID.jid") or b"").decode().strip()
    if not job_id:
        raise LogError(404, "Pod not found")
    return render_condor_logs(
        _read(directory / "out" / f"mm_mul.out.{job_id}.0"),
        _read(directory / "err" / f"mm_mul.err.{job_id}.0"),
        _read(directory / "log" / f"mm_mul.{job_id}.0.log"),
    )


def logs_not_implemented(
    directory: Path | None, pod_ref: str, container: str, tail_lines: int, limit_bytes: int
) -> bytes:
    """Earlier HTCondor plugins: /getLogs answers 500 with this body, for every pod."""
    raise LogError(500, "NOT IMPLEMENTED")


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
