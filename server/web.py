"""The front page, and what every page's template is given."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from babel import Locale
from flask import Blueprint, abort, current_app, g, redirect, render_template, request
from flask_babel import get_locale, gettext as _
from sqlalchemy import select

from server import auth, languages
from server.auth import allow
from server.extensions import db
from server.models import Area

bp = Blueprint("web", __name__)


@bp.get("/")
@allow("public")
def index():
    """The front page: each area's public page, the field app, and signing in."""
    areas = db.session.execute(select(Area).order_by(Area.name)).scalars().all()
    return render_template("index.html", areas=areas)


@bp.app_context_processor
def person_in_templates():
    return {"signed_in": getattr(g, "person", None) if not getattr(g, "device", None) else None,
            "has_role": auth.has_role}


# The choice lasts a year; it names a language, nothing about the person.
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def same_site_path(target: str | None) -> str | None:
    """`target` when it is a path on this site (`/area/x?y=1`), else None: no open redirect.

    Refused: absolute and scheme-relative URLs (`https://evil`, `//evil`, `/\\evil`, which some
    browsers read as `//evil`), anything not starting with one `/`, and control characters.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.get("/language")
@allow("public")
def language():
    """Keep the reader's choice of language in a cookie, then go back to the page they were on."""
    chosen = languages.choose(request.args.get("to"), current_app.config["LANGUAGES"])
    if chosen is None:
        abort(400, description=_("That language is not offered here. Choose one from the list at the foot of the page."))
    response = redirect(same_site_path(request.args.get("next")) or "/", code=303)
    response.set_cookie(languages.COOKIE, chosen, max_age=LANGUAGE_COOKIE_SECONDS, secure=request.is_secure,
                        httponly=True, samesite="Lax")
    return response


def language_links() -> list[dict]:
    """The switcher's links, one per shipped language named in itself; empty when only one is shipped."""
    shipped = current_app.config["LANGUAGES"]
    if len(shipped) < 2:
        return []
    here = request.full_path if request.query_string else request.path
    current = str(get_locale() or languages.DEFAULT)
    return [{"tag": languages.html_lang(language), "name": Locale.parse(language).get_language_name() or language,
             "dir": languages.direction(language), "current": language == current,
             "url": "/language?" + urlencode({"to": language, "next": here})}
            for language in shipped]


@bp.app_context_processor
def language_switcher():
    return {"language_links": language_links}
