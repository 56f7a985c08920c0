"""The coordinator's workspace: priorities, trends, map, coverage, review, actions, forms, people, exports.

Server-rendered pages under /coordinator/, for a desk screen and a phone alike. Every
view states its audience with `@allow` and then checks the area is one the signed-in
person may see (404 otherwise); partners reach only the actions assigned to them.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator")

from server.coordinator import actions, checklists, exports, manage, people, sites, translate, views  # noqa: E402,F401  (routes register on import)
