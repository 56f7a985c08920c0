"""Answers compressed on the wire: Brotli where the client asks for it, else gzip (Flask-Compress).

A volunteer on one bar of signal pays for every byte of a first sync and of the field
app's bundles; JSON, HTML, CSS, JavaScript and the CSV/GeoJSON exports shrink five to
seven times. What is left alone, and why:

- photos (JPEG, PNG, WebP): already compressed; their type is not in COMPRESS_MIMETYPES;
- partial answers (206, a `Content-Range`): a range counts bytes of the uncompressed file,
  so compressing one would hand the client bytes that fit nowhere;
- answers that are not 2xx (304 has no body; errors are small), and HEAD bodies (none is sent);
- pages that carry this reader's form token (`g.csrf_in_page`): the token is the same on
  every page of a session, and a page that also shows what a stranger typed into a link
  would let them guess it from the compressed length (the BREACH attack). Those pages are
  small; the shell, bundles and sync answers carry no such token.

Streamed answers (exports) stay streamed: each chunk goes through the compressor as the
generator yields it, so no export is held whole in memory. `KERBSIDE_COMPRESSION=off`
leaves it all to a proxy in front (docs/deployment.md).
"""

from __future__ import annotations

import gzip
import threading
from functools import lru_cache

import brotli
from flask import g, request
from flask_compress import Compress
from flask_compress import flask_compress as _library

_library_choice = _library._choose_algorithm


@lru_cache(maxsize=128)
def _choose_algorithm(algorithms: tuple[str, ...], accept_encoding: str):
    """Flask-Compress's choice, without the codings the client refuses with `q=0`.

    Flask-Compress 1.25 ranks `br;q=0` as a choice of lowest preference, and sends Brotli
    to a client that said it cannot read it; RFC 9110 (12.5.3) says q=0 means "not acceptable".
    """
    kept = []
    for part in accept_encoding.split(","):
        name, _, params = part.partition(";")
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                if float(quality[2:]) <= 0:
                    continue
            except ValueError:
                pass
        kept.append(part)
    return _library_choice(algorithms, ",".join(kept))


_library._choose_algorithm = _choose_algorithm  # looked up by name when each answer is compressed

# Flask-Compress's list, plus what Kerbside streams out: CSV and GeoJSON exports.
EXTRA_MIMETYPES = ("text/csv", "application/geo+json")
# Files up to this size are read into memory to be compressed whole (the bundles are ~100 KB).
MAX_FILE_IN_MEMORY = 4 * 1024 * 1024
# Content-hashed bundles never change under their name: each is compressed once per process at
# the best levels (Brotli 11 makes the JavaScript 17% smaller than quality 4, in 260 ms once),
# and kept; a few builds' worth at most.
IMMUTABLE_ENDPOINTS = frozenset({"pwa.asset"})
BEST = {"br": lambda data: brotli.compress(data, quality=11), "gzip": lambda data: gzip.compress(data, 9)}
KEPT_BUNDLES = 32


class KerbsideCompress(Compress):
    def init_app(self, app):
        if not app.config.get("COMPRESSION", True):
            return
        super().init_app(app)
        self.compress_mimetypes_set |= set(EXTRA_MIMETYPES)

    def after_request(self, response):
        if response.status_code == 206 or "Content-Range" in response.headers:
            return response
        if g.get("csrf_in_page") and response.mimetype == "text/html":
            return response
        if (response.direct_passthrough and response.content_length is not None
                and response.content_length <= MAX_FILE_IN_MEMORY and response.mimetype in self.compress_mimetypes_set):
            # A file (a bundle, Leaflet's script): read it whole, so it is compressed once with
            # its length known and its ETag answered with 304, rather than as a stream.
            response.direct_passthrough = False
            response.make_sequence()
        if (request.endpoint in IMMUTABLE_ENDPOINTS and response.status_code == 200 and not response.is_streamed
                and response.mimetype in self.compress_mimetypes_set):
            return self._bundle(response)
        original = response.response
        response = super().after_request(response)
        if response.response is not original and hasattr(original, "close"):
            # The compressing stream wraps the view's iterable: close it (a file, a database
            # cursor) when the answer is done, even if the client went away half-way.
            response.call_on_close(original.close)
        if "Content-Encoding" in response.headers:
            # Ranges would count the compressed bytes, which werkzeug does not serve.
            response.headers.pop("Accept-Ranges", None)
        return response

    _best: dict = {}
    _best_lock = threading.Lock()

    def _bundle(self, response):
        """A content-hashed bundle, compressed once at the best level; its ETag and 304 as Flask-Compress does."""
        vary = response.headers.get("Vary")
        if not vary:
            response.headers["Vary"] = "Accept-Encoding"
        elif "accept-encoding" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Accept-Encoding"
        algorithm = _choose_algorithm(self.enabled_algorithms, request.headers.get("Accept-Encoding", ""))
        if algorithm not in BEST:
            return response
        etag, weak = response.get_etag()
        key = (algorithm, request.path, etag)
        body = self._best.get(key)
        if body is None:
            body = BEST[algorithm](response.get_data())
            with self._best_lock:
                while len(self._best) >= KEPT_BUNDLES:
                    self._best.pop(next(iter(self._best)))
                self._best[key] = body
        response.set_data(body)
        response.headers["Content-Encoding"] = algorithm
        response.headers.pop("Accept-Ranges", None)
        if etag and not weak:
            response.set_etag(f"{etag}:{algorithm}")
        response.make_conditional(request)
        return response


compress = KerbsideCompress()
