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

from flask import g
from flask_compress import Compress

# Flask-Compress's list, plus what Kerbside streams out: CSV and GeoJSON exports.
EXTRA_MIMETYPES = ("text/csv", "application/geo+json")


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
        response = super().after_request(response)
        if "Content-Encoding" in response.headers:
            # Ranges would count the compressed bytes, which werkzeug does not serve.
            response.headers.pop("Accept-Ranges", None)
        return response


compress = KerbsideCompress()
