"""Headers every answer gets for being on the internet: HSTS on HTTPS, and no caching of private pages.

A page that only a signed-in person or a device may see, an export, and any sync answer
is `Cache-Control: no-store`: a shared council computer or a proxy must not keep a copy
after the person has gone. A public page is left to its view, unless it was made for one
reader (someone is signed in, or it holds a form token).
"""

from __future__ import annotations

from flask import g, request

from server.auth import access_rule

HSTS = "max-age=31536000; includeSubDomains"

# Private routes whose answers are a library's files, the same for everyone.
SHARED_FILES = frozenset({"coordinator.leaflet"})


def strict_transport(response):
    """after_request: tell browsers to come back only over HTTPS, when this answer came over it."""
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def no_store_when_private(response):
    """after_request: `Cache-Control: no-store` on every answer that is not the same for everyone."""
    if request.endpoint in SHARED_FILES:
        return response
    rule = access_rule(request.endpoint) if request.endpoint else None
    public = rule is not None and "public" in rule
    personal = g.get("person") is not None or g.get("device") is not None or g.get("csrf_in_page", False)
    if not public or (personal and "Cache-Control" not in response.headers):
        response.headers["Cache-Control"] = "no-store"
    return response
