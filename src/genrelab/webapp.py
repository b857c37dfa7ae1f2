"""A small web demo: upload a file or record the microphone, see the genre and its timeline.

The server is the standard library's :class:`http.server.ThreadingHTTPServer` in front of
:func:`genrelab.predict.predict_file`, with one self-contained HTML page (inline CSS, JS and
SVG charts; nothing from a CDN, so it works offline). It adds no dependency to the project.

Routes (:data:`ROUTES`)::

    GET  /              the page
    GET  /api/info      the model (genres, slice length, variant) and the upload limits (JSON)
    POST /api/predict?name=<file name>
                        the raw file as the request body (no multipart); answers the
                        prediction as JSON, or ``{"error": "..."}`` with 400, 408, 411, 413,
                        415 or 422 for what is wrong with the request or the file, 503 (with
                        ``Retry-After``) when the server is busy
    POST /api/audio?name=<file name>
                        the same upload, answered as 16-bit WAV for the page's player
                        (browsers cannot play ``.au`` or ``.aiff``)

For example ``curl -H 'Content-Type: audio/mpeg' --data-binary @song.mp3
'http://127.0.0.1:7860/api/predict?name=song.mp3'``.

The browser records the microphone with ``MediaRecorder``, decodes the recording with the Web
Audio API, downmixes and resamples it to the model's rate and uploads it as 16-bit WAV, so the
server never needs a webm/opus decoder. Browsers give pages the microphone only over https or
on ``localhost`` / ``127.0.0.1``.

Limits: uploads above ``max_bytes`` are refused from their ``Content-Length`` before they are
read, and only ``max_duration_s`` (plus one second) of audio is ever decoded. Every file goes
through the project's one audio validation (:mod:`genrelab.io`), so a broken file is a 422
with the reason, never a 500. The server keeps a listen backlog of 128, drops a connection
idle or stalled for ``socket_timeout_s``, serves at most ``max_connections`` at once (more are
answered 503 at once, without a thread), runs at most ``workers`` predictions at a time with
at most ``max_pending`` uploads admitted (the rest get 503 with ``Retry-After``). The server
has no authentication: keep it on 127.0.0.1 unless you mean to share it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import io
import json
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from genrelab.models import Bundle
from genrelab.predict import AUDIO_EXTENSIONS, AudioInputError, bundle_recipe, predict_file

__all__ = ["DemoServer", "make_server", "ROUTES", "PAGE", "demo_command", "transcode_wav"]

log = logging.getLogger(__name__)

CONTENT_TYPES_REFUSED = ("text/", "image/", "font/", "model/", "multipart/", "application/json", "application/pdf",
                         "application/zip", "application/x-www-form-urlencoded")
"""``Content-Type`` prefixes refused outright; anything else (browsers send ``audio/*``, ``video/ogg``
or nothing at all for audio files) is decoded, which is the real check."""


class DemoServer(http.server.ThreadingHTTPServer):
    """The demo's HTTP server: a bundle, its preprocessing, and the upload limits.

    Parameters
    ----------
    address : (str, int)
        Host and port; port 0 picks a free one (see ``server_address`` afterwards).
    bundle : Bundle
        From :func:`genrelab.models.load_bundle`.
    max_bytes : int > 0
        Largest accepted upload in bytes.
    max_duration_s : float > 0
        Longest accepted recording in seconds.
    top_k : int > 0
        Genres listed first in the answer.
    workers : int > 0
        Predictions (and transcodes) run at the same time; default: the CPU count, at most 4.
    max_pending : int > 0
        Uploads admitted at once (being read, waiting for a worker or running); beyond, 503.
    max_connections : int > 0
        Open connections served at once (one thread each); beyond, 503 and close at once.
    socket_timeout_s : float > 0
        A connection idle (or a client stalled) this long is closed; an upload body must
        arrive within ``upload_timeout_s`` in all.
    upload_timeout_s : float > 0
    queue_timeout_s : float > 0
        Longest wait for a worker before answering 503.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: 5 (the default) reset most of 50 simultaneous uploads

    def __init__(self, address: tuple[str, int], bundle: Bundle, *, max_bytes: int = 20_000_000,
                 max_duration_s: float = 600.0, top_k: int = 3, card_file: str | Path | None = None,
                 workers: int | None = None, max_pending: int = 64, max_connections: int = 256,
                 socket_timeout_s: float = 30.0, upload_timeout_s: float = 300.0,
                 queue_timeout_s: float = 120.0) -> None:
        workers = workers if workers is not None else max(1, min(4, os.cpu_count() or 1))
        if max_bytes <= 0 or max_duration_s <= 0 or top_k < 1:
            raise ValueError(f"max_bytes and max_duration_s must be positive and top_k >= 1, got {max_bytes}, "
                             f"{max_duration_s}, {top_k}")
        if min(workers, max_pending, max_connections) < 1 or min(socket_timeout_s, upload_timeout_s,
                                                                   queue_timeout_s) <= 0:
            raise ValueError("workers, max_pending and max_connections must be at least 1 and the timeouts positive")
        from genrelab.models.card import load_card

        self.bundle = bundle
        self.recipe = bundle_recipe(bundle)  # fails now, not on the first upload, for an unusable bundle
        self.card = load_card(bundle, card_file)
        self.max_bytes = int(max_bytes)
        self.max_duration_s = float(max_duration_s)
        self.top_k = int(top_k)
        self.workers = int(workers)
        self.max_pending = int(max_pending)
        self.max_connections = int(max_connections)
        self.socket_timeout_s = float(socket_timeout_s)
        self.upload_timeout_s = float(upload_timeout_s)
        self.queue_timeout_s = float(queue_timeout_s)
        self.work_slots = threading.BoundedSemaphore(self.workers)
        self._count_lock = threading.Lock()
        self.pending = 0
        self.connections = 0
        super().__init__(address, DemoHandler)

    # -- bounded connections: one thread each, at most max_connections
    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._count_lock:
            full = self.connections >= self.max_connections
            if not full:
                self.connections += 1
        if full:
            self._refuse_connection(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._count_lock:
                self.connections -= 1
            raise

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self.connections -= 1

    def _refuse_connection(self, request: socket.socket) -> None:
        """Answer 503 without a thread and close (the server holds ``max_connections`` already)."""
        body = json.dumps({"error": "the server is busy (too many open connections); try again shortly"}).encode()
        head = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        try:
            request.settimeout(1.0)
            request.sendall(head + body)
        except OSError:
            pass
        self.shutdown_request(request)

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Count one upload in flight; 503 when ``max_pending`` are already."""
        with self._count_lock:
            if self.pending >= self.max_pending:
                raise HTTPError(503, "the server is busy (too many uploads at once); try again shortly",
                                retry_after=5)
            self.pending += 1
        try:
            yield
        finally:
            with self._count_lock:
                self.pending -= 1

    @contextlib.contextmanager
    def worker(self) -> Iterator[None]:
        """Hold one of the ``workers`` prediction slots; 503 after ``queue_timeout_s`` of waiting."""
        if not self.work_slots.acquire(timeout=self.queue_timeout_s):
            raise HTTPError(503, "the server is busy; try again shortly", retry_after=10)
        try:
            yield
        finally:
            self.work_slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def warm_up(self) -> None:
        """Import and compile what the first prediction needs (librosa, numba), so it is not slow."""
        import numpy as np

        length = int(round(self.recipe.slicing.length_s * self.recipe.sample_rate))
        self.recipe.extractor(np.zeros((1, length), dtype=np.float32), self.recipe.sample_rate)

    def info(self) -> dict[str, Any]:
        """What the page shows about the model and enforces before uploading."""
        meta = self.bundle.meta
        params = meta.get("params", {})
        return {
            "model": meta.get("model"), "labels": self.bundle.labels, "variant": self.recipe.variant.name,
            "features": params.get("features", {}).get("name"), "slice_length_s": self.recipe.slicing.length_s,
            "sample_rate": self.recipe.sample_rate, "top_k": self.top_k, "max_bytes": self.max_bytes,
            "max_duration_s": self.max_duration_s, "extensions": list(AUDIO_EXTENSIONS),
            "card": {"line": self.card.line(), "warning": self.card.warning, "synthetic": self.card.synthetic,
                     "missing": self.card.missing, "ood_check": self.bundle.novelty is not None},
        }


def _mb(n: float) -> str:
    return f"{round(n / 1e6, 1):g} MB"


class HTTPError(Exception):
    """An answer other than 200, with the message the page shows."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class DemoHandler(http.server.BaseHTTPRequestHandler):
    """Dispatches requests through :data:`ROUTES`."""

    server: DemoServer
    server_version = "genrelab-demo"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.socket_timeout_s  # StreamRequestHandler sets it on the socket
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.info("%s %s", self.address_string(), format % args)

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        route = ROUTES.get((method, path))
        try:
            if route is None:
                allowed = sorted(m for m, p in ROUTES if p == path)
                if allowed:
                    raise HTTPError(405, f"{method} is not allowed on {path}; use {', '.join(allowed)}")
                raise HTTPError(404, f"no such page: {path}")
            route(self)
        except HTTPError as exc:
            self._send_json({"error": str(exc)}, status=exc.status, retry_after=exc.retry_after)
        except (TimeoutError, ConnectionError) as exc:  # the client stalled or went away mid-request
            log.info("%s %s: %s", method, path, type(exc).__name__)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_json({"error": "the request stalled; send it again"}, status=408)
        except MemoryError:
            self.close_connection = True
            self._send_json({"error": "the server ran out of memory for this file; try a shorter one"}, status=503,
                            retry_after=30)
        except Exception as exc:  # pragma: no cover - a bug; keep serving
            log.exception("%s %s failed", method, path)
            self._send_json({"error": f"internal error: {type(exc).__name__}: {exc}"}, status=500)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    # -- replies
    def _send(self, body: bytes, content_type: str, *, status: int = 200, retry_after: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if retry_after is not None:
            self.send_header("Retry-After", str(int(retry_after)))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy",
                         "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                         "media-src 'self' blob:; img-src 'self' data:")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, obj: Any, *, status: int = 200, retry_after: int | None = None) -> None:
        self._send(json.dumps(obj).encode(), "application/json", status=status, retry_after=retry_after)

    def _drain(self, length: int) -> None:
        """Read and drop a refused body (up to a bound) so the browser sees the answer, not a reset."""
        left = min(length, 4 * self.server.max_bytes)
        deadline = time.monotonic() + min(30.0, self.server.upload_timeout_s)
        with contextlib.suppress(OSError):
            while left > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        self.close_connection = True


def _page(h: DemoHandler) -> None:
    h._send(PAGE.encode(), "text/html; charset=utf-8")


def _info(h: DemoHandler) -> None:
    h._send_json(h.server.info())


@contextlib.contextmanager
def _upload(h: DemoHandler) -> Iterator[tuple[Path, str]]:
    """Check an upload's headers, read its body into a temporary file; yield (file, shown name).

    Every problem with the request is a 4xx with a one-line reason (or 503 when busy).
    """
    server = h.server
    query = parse_qs(urlsplit(h.path).query)
    name = Path((query.get("name") or ["upload"])[0]).name or "upload"  # a label only, never a path here
    if h.headers.get("Transfer-Encoding"):
        h.close_connection = True
        raise HTTPError(411, "chunked uploads are not supported: send the file with a Content-Length header")
    length_text = h.headers.get("Content-Length")
    if length_text is None:
        h.close_connection = True
        raise HTTPError(411, "the upload needs a Content-Length header (send the file as the request body)")
    if not re.fullmatch(r"[0-9]{1,15}", length_text.strip()):
        h.close_connection = True
        raise HTTPError(400, f"bad Content-Length header {length_text[:40]!r}: expected a number of bytes")
    length = int(length_text)
    suffix = Path(name).suffix.lower()
    ctype = (h.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip().lower()
    exts = ", ".join(e.lstrip(".") for e in AUDIO_EXTENSIONS)
    if length > server.max_bytes:
        h._drain(length)
        raise HTTPError(413, f"file too large: {_mb(length)}; the limit is {_mb(server.max_bytes)}")
    if suffix not in AUDIO_EXTENSIONS:
        h._drain(length)
        raise HTTPError(415, f"unsupported file type {suffix or '(no extension)'!r}; upload one of: {exts}")
    if ctype.startswith(CONTENT_TYPES_REFUSED):
        h._drain(length)
        raise HTTPError(415, f"unsupported content type {ctype!r}: send the audio file itself as the request body "
                             f"({exts})")
    if length == 0:
        raise HTTPError(422, "the file is empty")
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(server.admitted())
        except HTTPError:
            h._drain(length)
            raise
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="genrelab-demo-"))
        path = Path(tmp) / f"upload{suffix}"
        deadline = time.monotonic() + server.upload_timeout_s
        with open(path, "wb") as fh:
            left = length
            while left > 0:
                if time.monotonic() > deadline:
                    h.close_connection = True
                    raise HTTPError(408, f"the upload took longer than {server.upload_timeout_s:g} s; try again")
                chunk = h.rfile.read(min(left, 1 << 16))
                if not chunk:
                    h.close_connection = True
                    raise HTTPError(400, f"the upload stopped after {length - left} of {length} bytes; try again")
                fh.write(chunk)
                left -= len(chunk)
        yield path, name


def _predict(h: DemoHandler) -> None:
    server = h.server
    with _upload(h) as (path, name):
        try:
            with server.worker():
                pred = predict_file(server.bundle, path, top_k=server.top_k, max_duration_s=server.max_duration_s,
                                    name=name, recipe=server.recipe)
        except AudioInputError as exc:  # one line saying what is wrong with the file
            raise HTTPError(413 if str(exc).startswith("too long") else 422, str(exc)) from exc
    body = pred.to_dict(slices=True)
    body["labels"] = pred.labels
    h._send_json(body)


def _audio(h: DemoHandler) -> None:
    """The upload as 16-bit WAV (at most 48 kHz, 2 channels), for browsers that cannot play its format."""
    server = h.server
    with _upload(h) as (path, _):
        try:
            with server.worker():
                data = transcode_wav(path, max_duration_s=server.max_duration_s)
        except AudioInputError as exc:
            raise HTTPError(422, str(exc)) from exc
    h._send(data, "audio/wav")


def transcode_wav(path: str | Path, *, max_duration_s: float) -> bytes:
    """Decode ``path`` (validated like every upload) and encode it as 16-bit PCM WAV bytes.

    Parameters
    ----------
    path : path
        Audio file in any format :func:`genrelab.io.load_audio` reads.
    max_duration_s : float
        Only this many seconds are decoded.

    Raises
    ------
    AudioInputError
        If the file is not usable audio (one-line reason).
    """
    import numpy as np
    import soundfile as sf

    from genrelab.io import AudioDecodeError, load_audio, read_audio_info

    try:
        native = read_audio_info(path).sample_rate
        y, sr = load_audio(path, sr=None if native <= 48000 else 48000, mono=False, duration=max_duration_s)
    except AudioDecodeError as exc:
        raise AudioInputError(str(exc).replace(f"{path}: ", "", 1)) from exc
    if y.shape[0] > 2:
        y = y.mean(axis=0, keepdims=True)
    buf = io.BytesIO()
    sf.write(buf, np.clip(y.T, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


ROUTES: dict[tuple[str, str], Callable[[DemoHandler], None]] = {
    ("GET", "/"): _page,
    ("GET", "/index.html"): _page,
    ("GET", "/api/info"): _info,
    ("POST", "/api/predict"): _predict,
    ("POST", "/api/audio"): _audio,
}
"""Request handlers by (method, path)."""


def make_server(bundle: Bundle, *, host: str = "127.0.0.1", port: int = 7860, max_bytes: int = 20_000_000,
                max_duration_s: float = 600.0, top_k: int = 3, card_file: str | Path | None = None,
                **limits: Any) -> DemoServer:
    """Bind the demo server (call ``serve_forever()`` on it; ``port=0`` picks a free port).

    Parameters
    ----------
    bundle : Bundle
    host : str
        Interface to listen on; the default serves this machine only.
    port : int
    max_bytes : int
        Largest upload (bytes).
    max_duration_s : float
        Longest recording (seconds).
    top_k : int
        Genres listed first.
    card_file : path, optional
        The evaluate stage's ``card.json``: its test metrics are shown when it belongs to ``bundle``.
    **limits
        ``workers``, ``max_pending``, ``max_connections``, ``socket_timeout_s``,
        ``upload_timeout_s``, ``queue_timeout_s`` of :class:`DemoServer`.

    Raises
    ------
    genrelab.config.ConfigError
        If the bundle cannot classify new audio.
    OSError
        If the port is taken.
    """
    return DemoServer((host, int(port)), bundle, max_bytes=max_bytes, max_duration_s=max_duration_s, top_k=top_k,
                      card_file=card_file, **limits)


def demo_command(argv: list[str]) -> int:
    """``genrelab demo``: serve the web demo until Ctrl-C."""
    from genrelab.config import ConfigError
    from genrelab.models import UntrustedBundleError, load_bundle

    p = argparse.ArgumentParser(prog="genrelab demo", description="Web demo: upload or record audio, see its genre.")
    p.add_argument("--model", default="data/model", help="model bundle folder (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=7860, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--max-mb", type=float, default=20.0, help="largest upload in MB (default: %(default)s)")
    p.add_argument("--max-minutes", type=float, default=10.0, help="longest recording (default: %(default)s)")
    p.add_argument("--top-k", type=int, default=3, help="genres listed first (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None,
                   help="predictions run at once (default: the CPU count, at most 4); more uploads wait, up to 64, "
                        "then get 503")
    p.add_argument("--trust", action="store_true",
                   help="allow a pickled (scikit-learn) bundle that is not the train stage's own output in the "
                        "repository genrelab runs from")
    p.add_argument("--card", default="data/eval/card.json",
                   help="the evaluate stage's model card, shown when it belongs to the bundle (default: %(default)s)")
    args = p.parse_args(argv)
    if args.max_mb <= 0 or args.max_minutes <= 0 or args.top_k < 1 or (args.workers is not None and args.workers < 1):
        p.error("--max-mb and --max-minutes must be positive and --top-k and --workers at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        bundle = load_bundle(args.model, trust=args.trust)
        server = make_server(bundle, host=args.host, port=args.port, max_bytes=int(args.max_mb * 1e6),
                             max_duration_s=args.max_minutes * 60, top_k=args.top_k, card_file=args.card,
                             workers=args.workers)
    except (ConfigError, FileNotFoundError, UntrustedBundleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port} ({exc}); choose another --port", file=sys.stderr)
        return 2
    server.warm_up()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: serving on {args.host} without authentication; browsers allow the microphone only on "
              "https or localhost", file=sys.stderr)
    print(f"genrelab demo: {bundle.meta.get('model')} from {args.model} at {server.url}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# --------------------------------------------------------------------------------------- page
PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>genrelab · genre demo</title>
<style>
  :root { --fg:#1d2430; --muted:#5b6675; --line:#d8dde5; --accent:#2f6fdf; --bad:#b3261e; --bg:#f6f7f9; }
  * { box-sizing: border-box; }
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
         background: var(--bg); margin: 0; }
  main { max-width: 760px; margin: 0 auto; padding: 20px 16px 40px; }
  h1 { font-size: 22px; margin: 0 0 2px; }
  .muted { color: var(--muted); font-size: 13px; }
  .cards { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin: 16px 0; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px; }
  .card h2 { font-size: 15px; margin: 0 0 8px; }
  button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--accent);
           background: var(--accent); color: #fff; cursor: pointer; }
  button.rec { background: #fff; color: var(--bad); border-color: var(--bad); }
  button.rec.on { background: var(--bad); color: #fff; }
  button:disabled, input:disabled { opacity: .5; cursor: default; }
  #status { min-height: 22px; margin: 4px 0; }
  #error { color: var(--bad); font-weight: 600; min-height: 22px; white-space: pre-wrap; }
  #result { display: none; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px; }
  #card { font-size: 13px; margin: 6px 0 0; }
  .warn { background: #fff4e5; border: 1px solid #f0b35a; border-radius: 6px; padding: 8px 10px; margin: 8px 0;
          color: #6b3d00; font-size: 14px; }
  .warn:empty { display: none; }
  #headline { font-size: 18px; margin: 0 0 6px; }
  #headline b { color: var(--accent); }
  h3 { font-size: 14px; margin: 14px 0 4px; }
  svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
  audio { width: 100%; margin-top: 10px; }
  @media (max-width: 600px) { .cards { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<main>
  <h1>What genre is it?</h1>
  <div class="muted" id="model">loading the model…</div>
  <div class="muted" id="card"></div>
  <div class="warn" id="cardwarning" role="note"></div>
  <div class="cards">
    <section class="card">
      <h2>Upload a file</h2>
      <input type="file" id="file" aria-label="audio file">
      <div class="muted" id="limits"></div>
    </section>
    <section class="card">
      <h2>Record the microphone</h2>
      <button class="rec" id="record" type="button">● Record</button>
      <span id="rectime" class="muted"></span>
      <div class="muted" id="rechint"></div>
    </section>
  </div>
  <div id="status" role="status" aria-live="polite"></div>
  <div id="error" role="alert"></div>
  <section id="result" aria-live="polite">
    <p id="headline"></p>
    <div class="muted" id="details"></div>
    <div class="warn" id="warnings" role="alert"></div>
    <h3>Top genres (mean over slices)</h3>
    <div id="bars"></div>
    <h3>Timeline: probability of each genre per slice</h3>
    <div id="timeline"></div>
    <div class="muted">Darker = more probable; a dot marks each slice's top genre; grey columns are silent
      slices (left out of the mean). Click a slice to play from there.</div>
    <audio id="player" controls></audio>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
let INFO = null, busy = false, rec = null, recTimer = null, playerURL = null;

const fmtS = (s) => s >= 60 ? `${+(s / 60).toFixed(2)} min` : `${+s.toFixed(2)} s`;
const mb = (n) => `${+(n / 1e6).toFixed(1)} MB`;  // as the server words it
const pct = (p) => `${Math.round(100 * p)}%`;

function setStatus(text) { $("status").textContent = text; }
function showError(text) { $("error").textContent = text; setStatus(""); }
function setBusy(on) {
  busy = on; $("file").disabled = on; $("record").disabled = on && !(rec && rec.state === "recording");
}

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function init() {
  try {
    INFO = await (await fetch("api/info")).json();
  } catch (e) { showError(`cannot reach the server: ${e}`); return; }
  $("model").textContent = `Model: ${INFO.model} on ${INFO.features} features (${INFO.variant} variant), ` +
    `${INFO.labels.length} genres, ${INFO.slice_length_s} s slices.`;
  $("card").textContent = INFO.card.line;
  $("cardwarning").textContent = INFO.card.warning ? `Note: ${INFO.card.warning}` : "";
  $("limits").textContent = `${INFO.extensions.map((e) => e.slice(1)).join(", ")}; up to ${mb(INFO.max_bytes)} ` +
    `and ${fmtS(INFO.max_duration_s)}; at least ${INFO.slice_length_s} s.`;
  $("file").accept = INFO.extensions.join(",");
  $("rechint").textContent = `Record at least ${INFO.slice_length_s} s (up to ${fmtS(INFO.max_duration_s)}).`;
}

function check(blob, name) {
  const dot = name.lastIndexOf(".");
  const ext = dot >= 0 ? name.slice(dot).toLowerCase() : "";
  if (!INFO.extensions.includes(ext))
    return `unsupported file type "${ext || "(no extension)"}"; upload one of: ` +
      INFO.extensions.map((e) => e.slice(1)).join(", ");
  if (blob.size > INFO.max_bytes) return `file too large: ${mb(blob.size)}; the limit is ${mb(INFO.max_bytes)}`;
  if (blob.size === 0) return "the file is empty";
  return null;
}

async function send(blob, name) {
  if (busy || !INFO) return;
  $("error").textContent = "";
  const problem = check(blob, name);
  if (problem) { showError(`${name}: ${problem}`); return; }
  setBusy(true);
  setStatus(`Analysing ${name} (${mb(blob.size)})…`);
  try {
    const r = await fetch("api/predict?name=" + encodeURIComponent(name), {
      method: "POST", body: blob, headers: {"Content-Type": blob.type || "application/octet-stream"}});
    const body = await r.json().catch(() => ({error: `the server answered ${r.status} ${r.statusText}`}));
    if (!r.ok) { showError(`${name}: ${body.error}`); return; }
    setStatus(`Done in ${body.seconds.toFixed(2)} s.`);
    show(body, blob);
  } catch (e) {
    showError(`${name}: upload failed (${e.message || e})`);
  } finally { setBusy(false); }
}

function show(res, blob) {
  $("result").style.display = "block";
  const [best, ...rest] = res.top;
  $("headline").innerHTML = "";
  $("headline").append(`${res.path}: `, Object.assign(document.createElement("b"), {textContent: best.genre}),
    ` (${pct(best.probability)})` +
    (rest.length ? ", then " + rest.map((t) => `${t.genre} ${pct(t.probability)}`).join(", ") : ""));
  const silent = res.slices.filter((s) => s.silent).length;
  $("details").textContent = `${res.duration_s.toFixed(1)} s, ${res.n_slices} slice${res.n_slices === 1 ? "" : "s"} ` +
    `of ${res.slice_length_s} s` + (silent ? `, ${silent} silent` : "");
  $("warnings").replaceChildren(...(res.warnings || []).map((w) =>
    Object.assign(document.createElement("div"), {textContent: `⚠ Warning: ${w}`})));
  drawBars(res);
  drawTimeline(res);
  setPlayer(blob, res.path);
}

// The player gets the upload itself when the browser can play its format, else a WAV transcoded
// by the server (browsers play neither .au nor, mostly, .aiff).
const MIME = {".wav": "audio/wav", ".wave": "audio/wav", ".au": "audio/basic", ".snd": "audio/basic",
              ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg; codecs=opus",
              ".flac": "audio/flac", ".aif": "audio/aiff", ".aiff": "audio/aiff", ".aifc": "audio/aiff"};

async function setPlayer(blob, name) {
  const dot = name.lastIndexOf("."), ext = dot >= 0 ? name.slice(dot).toLowerCase() : "";
  const mime = MIME[ext] || blob.type || "";
  let playable = blob;
  if (!mime || !$("player").canPlayType(mime)) {
    try {
      const r = await fetch("api/audio?name=" + encodeURIComponent(name), {
        method: "POST", body: blob, headers: {"Content-Type": "application/octet-stream"}});
      if (r.ok) playable = await r.blob();
    } catch (e) { /* keep the original: the result is shown anyway */ }
  }
  if (playerURL) URL.revokeObjectURL(playerURL);
  playerURL = URL.createObjectURL(playable);
  $("player").src = playerURL;
}

function drawBars(res) {
  const rows = Object.entries(res.probabilities).sort((a, b) => b[1] - a[1]);
  const top = new Set(res.top.map((t) => t.genre));
  const W = 700, L = 90, R = 50, H = 22;
  const svg = el("svg", {id: "bars-svg", width: W, height: rows.length * H + 4,
                         viewBox: `0 0 ${W} ${rows.length * H + 4}`,
                         role: "img", "aria-label": "genre probabilities"});
  rows.forEach(([g, p], i) => {
    const y = i * H + 2, w = Math.max(1, (W - L - R) * p);
    svg.append(el("text", {x: L - 8, y: y + 15, "text-anchor": "end"}, g));
    svg.append(el("rect", {x: L, y: y + 3, width: W - L - R, height: H - 6, fill: "#eef1f5"}));
    const bar = el("rect", {x: L, y: y + 3, width: w, height: H - 6, rx: 2, fill: top.has(g) ? "#2f6fdf" : "#9aa6b8",
                           "data-genre": g});
    bar.append(el("title", {}, `${g}: ${(100 * p).toFixed(1)}%`));
    svg.append(bar);
    svg.append(el("text", {x: L + w + 6, y: y + 15}, `${(100 * p).toFixed(1)}%`));
  });
  $("bars").replaceChildren(svg);
}

function drawTimeline(res) {
  const labels = res.labels, n = res.slices.length;
  const W = 700, L = 90, T = 4, H = 18, B = 26, width = W - L - 24, cw = width / n;
  const svg = el("svg", {id: "timeline-svg", width: W, height: T + labels.length * H + B,
                         viewBox: `0 0 ${W} ${T + labels.length * H + B}`, role: "img",
                         "aria-label": "probability of each genre per slice"});
  labels.forEach((g, r) => svg.append(el("text", {x: L - 8, y: T + r * H + 13, "text-anchor": "end"}, g)));
  res.slices.forEach((s, c) => {
    const x = L + c * cw, best = s.probabilities.indexOf(Math.max(...s.probabilities));
    const col = el("g", {"data-start": s.start_s, style: "cursor:pointer"});
    col.append(el("title", {}, `${fmtS(s.start_s)}–${fmtS(s.start_s + res.slice_length_s)}: ${s.genre} ` +
      `${(100 * s.probabilities[best]).toFixed(0)}%` + (s.silent ? " (silent)" : "")));
    s.probabilities.forEach((p, r) => {
      const fill = s.silent ? "#d9dde3" : `rgba(47, 111, 223, ${(0.06 + 0.94 * p).toFixed(3)})`;
      col.append(el("rect", {x: x, y: T + r * H, width: Math.max(cw - (cw > 4 ? 1 : 0), 0.5), height: H - 1, fill}));
    });
    if (!s.silent && cw >= 5)
      col.append(el("circle", {cx: x + cw / 2, cy: T + best * H + H / 2 - 0.5, r: Math.min(3.5, cw / 4),
                               fill: "#fff"}));
    col.addEventListener("click", () => {
      const a = $("player"); a.currentTime = s.start_s; a.play().catch(() => {});
    });
    svg.append(col);
  });
  const total = n > 0 ? res.slices[n - 1].start_s + res.slice_length_s : 0;
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((v) => total / v <= 8) || 1200;
  for (let t = 0; t <= total + 1e-6; t += step) {
    const x = L + (t / total) * width;
    svg.append(el("line", {x1: x, x2: x, y1: T + labels.length * H, y2: T + labels.length * H + 5, stroke: "#5b6675"}));
    svg.append(el("text", {x, y: T + labels.length * H + 18, "text-anchor": "middle"}, fmtS(t)));
  }
  $("timeline").replaceChildren(svg);
}

// --- microphone: MediaRecorder -> decode -> mono at the model's rate -> 16-bit WAV
function encodeWav(samples, rate) {
  const buf = new ArrayBuffer(44 + samples.length * 2), v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + samples.length * 2, true); str(8, "WAVE"); str(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true); str(36, "data");
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + 2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([buf], {type: "audio/wav"});
}

async function toWav(blob, rate) {
  const ctx = new AudioContext();
  let audio;
  try { audio = await ctx.decodeAudioData(await blob.arrayBuffer()); } finally { ctx.close(); }
  const off = new OfflineAudioContext(1, Math.max(1, Math.ceil(audio.duration * rate)), rate);
  const src = off.createBufferSource();
  src.buffer = audio; src.connect(off.destination); src.start();
  return encodeWav((await off.startRendering()).getChannelData(0), rate);
}

async function toggleRecording() {
  if (rec && rec.state === "recording") { rec.stop(); return; }
  if (busy || !INFO) return;
  $("error").textContent = "";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
    showError("this browser cannot record here: the microphone needs https, or http://localhost / 127.0.0.1");
    return;
  }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({audio: true}); }
  catch (e) { showError(`microphone unavailable: ${e.message || e.name}`); return; }
  const chunks = [];
  rec = new MediaRecorder(stream);
  rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  rec.onstop = async () => {
    stream.getTracks().forEach((t) => t.stop());
    clearInterval(recTimer);
    $("record").textContent = "● Record"; $("record").classList.remove("on");
    setStatus("Converting the recording…");
    let wav;
    try { wav = await toWav(new Blob(chunks, {type: rec.mimeType}), INFO.sample_rate); }
    catch (e) { showError(`could not convert the recording: ${e.message || e}`); return; }
    send(wav, "recording.wav");
  };
  rec.start(250);
  const t0 = performance.now();
  $("record").textContent = "■ Stop"; $("record").classList.add("on");
  setStatus("Recording…");
  recTimer = setInterval(() => {
    const s = (performance.now() - t0) / 1000;
    $("rectime").textContent = `${s.toFixed(1)} s`;
    if (s >= INFO.max_duration_s && rec.state === "recording") rec.stop();
  }, 100);
}

$("file").addEventListener("change", () => {
  const f = $("file").files[0];
  if (f) send(f, f.name);
  $("file").value = "";  // choosing the same file again uploads it again
});
$("record").addEventListener("click", toggleRecording);
init();
</script>
</body>
</html>
"""
