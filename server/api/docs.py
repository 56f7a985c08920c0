"""A readable page of the OpenAPI document, rendered on the server (no CDN, no scripts)."""

from __future__ import annotations

from flask import Blueprint, render_template

from server.auth import allow
from server.extensions import smorest

bp = Blueprint("api_docs", __name__)


@bp.get("/api/docs")
@allow("public")
def docs():
    """The API's endpoints, their parameters, answers and schemas."""
    spec = smorest.spec.to_dict()
    return render_template("api_docs.html", spec=spec)
