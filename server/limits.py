"""What a request may carry: body sizes and readable text.

Rate limits are counted where every worker and host sees them, in server/throttle.py.
"""

from __future__ import annotations

from flask import abort, current_app, request
from flask_babel import gettext as _

from server.auth import is_api_request
from sync.validation import readable_text


def body_limit(max_bytes: int):
    """Let one route take larger request bodies than the app's MAX_CONTENT_LENGTH."""

    def mark(view):
        view.kerbside_max_bytes = max_bytes
        return view

    return mark


def apply_body_limit():
    """before_request, ahead of anything that reads the body (the CSRF check reads the form)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    max_bytes = getattr(view, "kerbside_max_bytes", None)
    if max_bytes:
        request.max_content_length = max_bytes


def refuse_unreadable_text():
    """before_request: a path, query or form field holding control characters is refused with a 400.

    Nobody types a NUL into an address or a form, and PostgreSQL refuses one in any query
    that would carry it on (a slug, an id, an email), so it is refused here, once, for every
    page. The sync API's bodies are never read here, whatever their Content-Type says: a
    push judges each of its items alone, and a photo is raw bytes (urllib labels any PUT
    body a form, and reading it as one here would leave the photo empty).
    """
    fields = [request.path, *request.args.keys(), *request.args.values()]
    if request.method not in ("GET", "HEAD", "OPTIONS") and not is_api_request() and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        fields += [*request.form.keys(), *request.form.values()]
    if not all(readable_text(text) for text in fields):
        abort(400, description=_("The address or the form has a hidden or broken character, so Kerbside cannot read it. "
                                 "Go back and type it again."))
