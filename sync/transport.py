"""How the reference client talks to a server: one small callable, so tests can plug in their own.

A transport is any callable
`transport(method, path, *, json=None, body=None, headers=None) -> Response`.
It returns a `Response` for every HTTP answer, errors included, and raises
`TransportError` only when no answer arrived (no network, timeout, connection reset):
the client treats those two cases differently, and must never guess which happened.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field


class TransportError(Exception):
    """No HTTP answer arrived: the request may or may not have reached the server.

    `timed_out` tells a slow link (the answer did not come in time) from a connection that
    was refused, reset or cut: only the second can be evidence against what was sent.
    """

    def __init__(self, message: str = "", *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


@dataclass
class Response:
    status: int
    headers: dict = field(default_factory=dict)
    json: dict | None = None

    def header(self, name: str) -> str | None:
        """A header's value, whatever the case of its name."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    def retry_after(self) -> float | None:
        """Seconds from a `Retry-After` header given in seconds, or None."""
        value = self.header("Retry-After")
        try:
            seconds = float(value) if value is not None else None
        except ValueError:
            return None  # an HTTP date: the client's own backoff is good enough
        return max(0.0, seconds) if seconds is not None else None


def parse_json(raw: bytes) -> dict | None:
    """The JSON object in a body, or None when it is empty or not JSON."""
    if not raw:
        return None
    try:
        value = jsonlib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class UrllibTransport:
    """A transport over the standard library's urllib, against `base_url`."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        # Only a web server: urllib would also open file: and other schemes (bandit B310).
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"the server's address must start with http:// or https://, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __call__(self, method: str, path: str, *, json=None, body: bytes | None = None, headers=None) -> Response:
        """Send one request; every HTTP status is a Response, only a missing answer raises."""
        headers = dict(headers or {})
        data = body
        if json is not None:
            data = jsonlib.dumps(json, ensure_ascii=False).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        elif data is not None:
            # Without it urllib labels a photo's bytes a form (application/x-www-form-urlencoded).
            headers.setdefault("Content-Type", "application/octet-stream")
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            # B310 (bandit) is answered: __init__ accepts only an http(s) base URL, and `path` is appended to it.
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # nosec B310
                return Response(answer.status, dict(answer.headers.items()), parse_json(answer.read()))
        except urllib.error.HTTPError as error:
            with error:
                raw = error.read() if error.fp is not None else b""
            return Response(error.code, dict(error.headers.items()) if error.headers else {}, parse_json(raw))
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            # An answer cut part-way (IncompleteRead, RemoteDisconnected) is no answer either.
            reason = getattr(error, "reason", error)
            raise TransportError(str(error), timed_out=isinstance(reason, TimeoutError)) from error
