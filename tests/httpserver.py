"""A tiny HTTP file server on 127.0.0.1 for download tests (no network beyond loopback).

``FixtureServer`` serves in-memory files, honours ``Range: bytes=N-`` (206 with
``Content-Range``) unless told to ignore it, can drop the connection part-way through
the first response for a path, and records every request so tests can assert on them.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    path: str
    range: str | None
    status: int


@dataclass
class FixtureServer:
    """Serve ``files`` (URL path -> bytes) on an ephemeral loopback port.

    Parameters
    ----------
    files : dict[str, bytes]
        URL paths (``"/fma/x.zip"``) and their content; anything else is a 404.
    drop_after : dict[str, int]
        For these paths, the first response announces the full length but sends only
        this many bytes before closing the connection.
    ignore_range : set[str]
        For these paths, ``Range`` is ignored and the whole file is sent with 200.
    """

    files: dict[str, bytes]
    drop_after: dict[str, int] = field(default_factory=dict)
    ignore_range: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)

    def __enter__(self) -> FixtureServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                rng = self.headers.get("Range")
                data = server.files.get(path)
                if data is None:
                    server.requests.append(Request(path, rng, 404))
                    self.send_error(404, "Not Found")
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and path not in server.ignore_range:
                    start = int(m.group(1))
                    if start >= len(data):
                        server.requests.append(Request(path, rng, 416))
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                else:
                    status = 200
                body = data[start:]
                server.requests.append(Request(path, rng, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                cut = server.drop_after.pop(path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path


def closed_port_url(path: str = "/file") -> str:
    """A URL on a loopback port where nothing listens (connection refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
