"""The front page, and what every page's template is given."""

from __future__ import annotations

from flask import Blueprint, g, render_template
from sqlalchemy import select

from server import auth
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
