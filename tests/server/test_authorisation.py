"""Every route states who may use it, and the rule is enforced."""

from __future__ import annotations

from server.auth import AUDIENCES, access_rule


def test_every_route_states_its_audience(app):
    missing = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            audiences = access_rule(rule.endpoint)
            if not audiences or not set(audiences) <= AUDIENCES:
                missing.append(rule.rule)
    assert missing == []


def test_a_route_without_a_rule_is_refused(app, client):
    """Deny by default: a view added without @allow cannot be reached."""

    @app.get("/unguarded-for-test")
    def unguarded():
        return "should never be seen"

    response = client.get("/unguarded-for-test")
    assert response.status_code == 403
    assert b"should never be seen" not in response.data


def _sample_path(rule):
    """A URL for `rule` with made-up arguments of the right kind."""
    from werkzeug.routing import IntegerConverter

    values = {}
    for name in rule.arguments:
        if isinstance(rule._converters[name], IntegerConverter):
            values[name] = 987654
        else:
            values[name] = "x" * 64 if name == "sha256" else "nothing-here"
    return rule.build(values)[1]


def test_non_public_api_routes_need_a_device_token(app, client):
    for rule in app.url_map.iter_rules():
        with app.test_request_context():
            audiences = access_rule(rule.endpoint)
        if "public" in audiences or not rule.rule.startswith("/api/"):
            continue
        method = sorted(rule.methods - {"OPTIONS", "HEAD"})[0] if rule.methods - {"OPTIONS", "HEAD"} else "HEAD"
        response = client.open(_sample_path(rule), method=method, json={"protocol": 1})
        assert response.status_code == 401, rule.rule
        if method == "HEAD":  # a HEAD answer has no body: the challenge header says it
            assert response.headers["WWW-Authenticate"] == "Bearer", rule.rule
        else:
            assert response.get_json()["code"] == "token_missing"


def test_signed_in_pages_send_strangers_to_sign_in(app, client):
    for rule in app.url_map.iter_rules():
        with app.test_request_context():
            audiences = access_rule(rule.endpoint)
        if "public" in audiences or "device" in audiences or "GET" not in rule.methods:
            continue
        response = client.get(_sample_path(rule))
        assert response.status_code == 302 and "/login" in response.headers["Location"], rule.rule


# -- the walk: every route, every role, this area's, another area's and shared records -------------
#
# ROUTES says, for each endpoint, how to address a record of this area ("here"), one of another
# area reached through this area's address ("other"), and a shared record ("shared", where the
# route has any). The expected answer for each role is derived from the route's @allow rule and
# area ownership by `expected()`; the table only says what the route's records are. A route
# added without an entry here fails `test_every_route_is_in_the_walk`.

import re  # noqa: E402
import struct  # noqa: E402
import zlib  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from hashlib import sha256 as _sha256  # noqa: E402

import pytest  # noqa: E402

from server import operations  # noqa: E402
from server.extensions import db  # noqa: E402
from server.models import SiteEdit  # noqa: E402
from sqlalchemy import select  # noqa: E402
from server.seed_content import AGREEMENT, STREET_FORM  # noqa: E402
from tests.conftest import mutation, sign_in, street_answers, visit  # noqa: E402

PASSWORD = "correct horse battery"
HERE, OTHER = "alpha", "beta"
ORGANISATION = "Street cleansing"


def _png(shade: int) -> bytes:
    """A real one-pixel PNG, so whatever the server does to photos it can read it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"\x00" + bytes((shade, shade, shade))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass(frozen=True)
class Principal:
    name: str
    kind: str  # "anonymous", "device" or "web"
    roles: tuple = ()  # the web roles held, and in which area ("alpha", "beta" or None for every area)


PRINCIPALS = (
    Principal("anonymous", "anonymous"),
    Principal("street_rep", "device"),
    Principal("mystery_shopper", "device"),
    Principal("partner", "web", (("partner", HERE),)),
    Principal("coordinator_here", "web", (("coordinator", HERE),)),
    Principal("coordinator_other", "web", (("coordinator", OTHER),)),
    Principal("admin", "web", (("admin", None),)),
)


@dataclass(frozen=True)
class Route:
    """How to reach an endpoint's records: `scopes` maps "here"/"other"/"shared" to URL arguments."""

    scopes: dict
    area_roles: tuple | None = None  # roles that open the area's pages; None: the route has no area
    shared_writes: bool = False  # only an admin may change the shared record
    shared_only: bool = False  # the route acts on shared records only (copying one)
    # Statuses that are the route's own answer to the walk's request, not a refusal (the
    # sign-in form answers 401 to a wrong password).
    answers: tuple = ()


def _area(**extra):
    return {"here": {"slug": HERE, **extra}}


def _records(**names):
    """Arguments for this area's record, another area's record under this area's address, and shared ones."""
    scopes = {"here": {"slug": HERE}, "other": {"slug": HERE}}
    for argument, key in names.items():
        scopes["here"][argument] = ("here", key)
        scopes["other"][argument] = ("other", key)
    return scopes


FORM = _records(form_id="form_id", version="version") | {"shared": {"slug": HERE, "form_id": ("shared", "form_id"),
                                                                     "version": ("shared", "version")}}
FORM_ONLY = {scope: {k: v for k, v in args.items() if k != "version"} for scope, args in FORM.items()}
COORDINATING = ("coordinator", "admin")
PARTNERING = ("coordinator", "admin", "partner")

ROUTES = {
    "static": Route({"here": {"filename": "kerbside.css"}}),
    "api-docs.openapi_json": Route({"here": {}}),
    "api_docs.docs": Route({"here": {}}),
    "sync.enrol": Route({"here": {}}),
    "sync.sync": Route({"here": {}}),
    "sync.blob": Route({"here": {"sha256": ("here", "upload_sha")}}),
    # Walked last for each device (see the walk's order): it signs the device out.
    "sync.device_sign_out": Route({"here": {}}),
    # A photo not uploaded yet: HEAD's own answer is 404 ("not here yet").
    "sync.blob_head": Route({"here": {"sha256": ("here", "missing_sha")}}, answers=(404,)),
    "web.index": Route({"here": {}}),
    # The language switcher: public; with no `to` it refuses (400), as it must for an unknown language.
    "web.language": Route({"here": {}}, answers=(400,)),
    "signin.login": Route({"here": {}}, answers=(401,)),
    "signin.logout": Route({"here": {}}),
    "pwa.shell": Route({"here": {}}),
    # Health and metrics are for probes and Prometheus, not people: public. Metrics are off
    # unless KERBSIDE_METRICS is on, so the walk's answer there is 404 (test_operable.py turns them on).
    "ops.healthz": Route({"here": {}}),
    "ops.readyz": Route({"here": {}}),
    "ops.metrics_page": Route({"here": {}}, answers=(404,)),
    "pwa.service_worker": Route({"here": {}}),
    "pwa.web_manifest": Route({"here": {}}),
    "pwa.asset": Route({"here": {"name": ("here", "asset")}}),
    "pwa.icon": Route({"here": {"name": ("here", "icon")}}),
    "public.area": Route({"here": {"slug": HERE}}),
    "imports.upload": Route({"here": {}}),
    "coordinator.index": Route({"here": {}}),
    "coordinator.leaflet": Route({"here": {"filename": "leaflet.js"}}),
    "coordinator.actions_board": Route(_area(), PARTNERING),
    "coordinator.new_action": Route(_area(), COORDINATING),
    "coordinator.action": Route(_records(action_id="action_id"), PARTNERING),
    "coordinator.action_comment": Route(_records(action_id="action_id"), PARTNERING),
    "coordinator.exports": Route(_area(), COORDINATING),
    "coordinator.export_submissions": Route(_area(), COORDINATING),
    "coordinator.export_actions": Route(_area(), COORDINATING),
    "coordinator.export_sites": Route(_area(), COORDINATING),
    "coordinator.export_mystery_shops": Route(_area(), COORDINATING),
    "coordinator.export_checklists": Route(_area(), COORDINATING),
    "coordinator.export_workbook": Route(_area(), COORDINATING),
    "coordinator.checklist_results": Route(_area(), COORDINATING),
    "coordinator.forms": Route(_area(), COORDINATING),
    "coordinator.new_form_draft": Route(FORM_ONLY, COORDINATING, shared_writes=True),
    "coordinator.copy_form": Route(FORM_ONLY, COORDINATING, shared_only=True),
    "coordinator.form_version": Route(FORM, COORDINATING, shared_writes=True),
    "coordinator.publish_form": Route(FORM, COORDINATING, shared_writes=True),
    "coordinator.retire_form": Route(FORM, COORDINATING, shared_writes=True),
    "coordinator.confirm_retire_form": Route(FORM, COORDINATING, shared_writes=True),
    # The walk posts no texts: a version of the area's own answers 400 ("does not match its texts").
    "coordinator.form_translation": Route(FORM, COORDINATING, shared_writes=True),
    "coordinator.agreements": Route(_area(), COORDINATING),
    "coordinator.new_agreement_draft": Route(_records(agreement_id="agreement_id"), COORDINATING),
    "coordinator.agreement_version": Route(_records(agreement_id="agreement_id", version="version"), COORDINATING),
    "coordinator.publish_agreement": Route(_records(agreement_id="agreement_id", version="version"), COORDINATING),
    "coordinator.agreement_translation": Route(_records(agreement_id="agreement_id", version="version"),
                                               COORDINATING),
    "coordinator.people": Route(_area(), COORDINATING),
    "coordinator.area_settings": Route(_area(), COORDINATING),
    "coordinator.invite_qr": Route(_area(key=("session", "invite_key")), COORDINATING),
    "coordinator.revoke_device": Route(_records(device_id="victim_device"), COORDINATING),
    "coordinator.reinvite": Route(_records(person_id="victim_person"), COORDINATING),
    "coordinator.person": Route(_records(person_id="victim_person"), COORDINATING),
    "coordinator.rename_person": Route(_records(person_id="victim_person"), COORDINATING),
    "coordinator.deactivate_person": Route(_records(person_id="victim_person"), COORDINATING),
    "coordinator.reactivate_person": Route(_records(person_id="victim_person"), COORDINATING),
    "coordinator.reset_rejoin_code": Route(_records(person_id="victim_person"), COORDINATING),
    # The walk sends no second person, so the page answers with the person's own page.
    "coordinator.merge_person": Route(_records(person_id="victim_person"), COORDINATING),
    "coordinator.dashboard": Route(_area(), COORDINATING),
    "coordinator.priorities": Route(_area(), COORDINATING),
    "coordinator.trends": Route(_area(), COORDINATING),
    "coordinator.site": Route(_records(site_id="site_id"), COORDINATING),
    "coordinator.map_view": Route(_area(), COORDINATING),
    "coordinator.sites_waiting": Route(_area(), COORDINATING),
    # The walk posts no decision: a site or edit of the area's own is answered 400 ("choose one").
    "coordinator.decide_site": Route(_records(site_id="site_id"), COORDINATING),
    "coordinator.decide_site_edit": Route(_records(edit_id="site_edit_id"), COORDINATING),
    "coordinator.coverage": Route(_area(), COORDINATING),
    "coordinator.mystery_shops": Route(_area(), COORDINATING),
    "coordinator.submissions": Route(_area(), COORDINATING),
    "coordinator.submission": Route(_records(submission_id="submission_id"), COORDINATING),
    "coordinator.accept_selected": Route(_area(), COORDINATING),
    "coordinator.accept_matching": Route(_area(), COORDINATING),
    "coordinator.photo": Route(_records(sha256="photo_sha"), COORDINATING),
    "account.password": Route({"here": {}}),
    # People are not an area's records: only the admin's rule applies.
    "admin_people.people": Route({"here": {}}),
    "admin_people.one_time_password": Route({"here": {"person_id": ("here", "web_victim")}}),
    "admin_people.sign_out_everywhere": Route({"here": {"person_id": ("here", "web_victim")}}),
    "admin_audit.entries": Route({"here": {}}),
    "admin_audit.entries_csv": Route({"here": {}}),
    "admin_privacy.people": Route({"here": {}}),
    # The walk posts no confirmation, so the erase page answers without erasing anyone.
    "admin_privacy.person": Route({"here": {"person_id": ("here", "web_victim")}}),
    "admin_privacy.export": Route({"here": {"person_id": ("here", "web_victim")}}),
    "admin_privacy.erase": Route({"here": {"person_id": ("here", "web_victim")}}),
}


def _holds(principal: Principal, roles, area: str | None = None) -> bool:
    """Whether the principal holds one of `roles` (in `area`, when given); an admin counts as a coordinator."""
    wanted = set(roles) | ({"admin"} if "coordinator" in roles else set())
    return any(role in wanted and (area is None or where in (None, area)) for role, where in principal.roles)


def expected(audiences, route: Route, principal: Principal, scope: str, method: str):
    """The answer `principal` must get: "in" (let through), "sign_in", or the refusal's status."""
    if "public" in audiences:
        return "in"
    if "device" in audiences:
        return "in" if principal.kind == "device" else 401
    if principal.kind != "web":
        return "sign_in"
    if not _holds(principal, audiences):
        return 403
    if route.area_roles is not None and not _holds(principal, route.area_roles, HERE):
        return 404
    if scope == "other":
        return 404
    if route.shared_only and scope != "shared":
        return 404
    if scope == "shared" and route.shared_writes and method == "POST" and not _holds(principal, ("admin",)):
        return 403
    return "in"


def outcome(response, route: Route):
    """What the principal got, in `expected`'s words; a 5xx is always a failure."""
    status = response.status_code
    assert status < 500, response.get_data(as_text=True)[:300]
    if status in (301, 302, 303, 307) and "/login" in response.headers.get("Location", ""):
        return "sign_in"
    return status if status in (401, 403, 404) and status not in route.answers else "in"


@pytest.fixture
def walk_world(app, client, make_area, make_site, publish_forms, enrol, sync):
    """Two areas, each with its own records, the shared forms, and one person or device per role."""
    from server.pwa import ICONS, current_build

    publish_forms()  # shared by every area
    world = {"here": {}, "other": {}, "shared": {"form_id": "street", "version": 1}, "devices": {}}
    for scope, slug in (("here", HERE), ("other", OTHER)):
        area = make_area(slug, slug.title())
        own = operations.draft_form_version(f"{slug}-street", STREET_FORM, area_id=area.id)
        operations.publish_form_version(own)
        operations.publish_agreement_version(operations.draft_agreement_version(f"{slug}-deal", area, AGREEMENT))
        db.session.commit()
        site = make_site(area, f"{slug.title()} Street")
        token, _ = enrol(area, name=f"{slug} rep")
        photo = _png(10 if scope == "here" else 20)
        photo_sha = _sha256(photo).hexdigest()
        assert client.put(f"/api/sync/v1/blobs/{photo_sha}", data=photo, content_type="image/png",
                          headers={"Authorization": f"Bearer {token}"}).status_code < 300
        data = visit(site, answers=street_answers("D", litter={"grade": "D", "photos": [photo_sha]}))
        assert sync(token, [mutation(data)]).get_json()["results"][0]["status"] == "applied"
        edit = mutation({"id": site.id, "base_version": 1, "patch": {"notes": "Gate"}}, kind="site.update", seq=2)
        assert sync(token, [edit]).get_json()["results"][0]["pending_review"] is True
        action = operations.raise_action(area, "Sweep it", site=site, line_key="litter", assigned_to=ORGANISATION)
        db.session.commit()
        _victim_token, victim = enrol(area, name=f"{slug} victim")
        world[scope] = {"area": area, "form_id": own.form_id, "version": 1, "agreement_id": f"{slug}-deal",
                        "site_id": site.id, "submission_id": data["id"], "action_id": action.id,
                        "photo_sha": photo_sha, "victim_device": victim["device_id"],
                        "victim_person": victim["person"]["id"],
                        "site_edit_id": db.session.execute(select(SiteEdit.id).where(SiteEdit.site_id == site.id))
                        .scalar_one()}
        if scope == "here":
            world["devices"]["street_rep"] = token
            world["devices"]["mystery_shopper"] = enrol(area, "mystery_shopper", name="shopper")[0]
    upload = _png(30)
    world["upload"] = upload
    world["here"].update(upload_sha=_sha256(upload).hexdigest(), missing_sha="0" * 64, asset=current_build().js, icon=ICONS[0]["file"])
    areas = {HERE: world["here"]["area"], OTHER: world["other"]["area"], None: None}
    for principal in PRINCIPALS:
        if principal.kind == "web":
            operations.create_person(principal.name, email=f"{principal.name}@example.org", password=PASSWORD,
                                     organisation=ORGANISATION if principal.name == "partner" else None,
                                     roles=[(role, areas[where]) for role, where in principal.roles])
    # The admin pages act on a person who is not walking (a one-time password ends their sessions).
    world["here"]["web_victim"] = operations.create_person(
        "web victim", email="victim@example.org", password=PASSWORD, roles=[("coordinator", areas[HERE])]).id
    db.session.commit()
    return world


def _client_for(app, principal: Principal, world):
    """A client acting as `principal`, and the CSRF token its posts carry."""
    client = app.test_client()
    if principal.kind != "web":
        return client, ""
    csrf = sign_in(client, f"{principal.name}@example.org", PASSWORD)
    if _holds(principal, COORDINATING, HERE):
        # An invite shown in this session, so its QR image is there to fetch.
        page = client.post(f"/coordinator/{HERE}/people",
                           data={"csrf_token": csrf, "role": "street_rep", "display_name": "QR"}).get_data(as_text=True)
        world.setdefault("session", {})[principal.name] = re.search(r"/people/invites/([^/\"]+)\.svg", page).group(1)
    return client, csrf


def _request(app, client, principal, world, rule, method, scope, csrf):
    route = ROUTES[rule.endpoint]
    values = {}
    for name, spec in route.scopes[scope].items():
        if isinstance(spec, tuple):
            where, key = spec
            values[name] = world.get("session", {}).get(principal.name, "nothing-here") if where == "session" \
                else world[where][key]
        else:
            values[name] = spec
    with app.test_request_context():
        path = rule.build(values)[1]
    headers = {}
    if principal.kind == "device":
        headers["Authorization"] = f"Bearer {world['devices'][principal.name]}"
    if rule.endpoint == "sync.blob":
        return client.open(path, method=method, data=world["upload"], content_type="image/png", headers=headers)
    if rule.rule.startswith("/api/"):
        body = {"protocol": 1, "cursor": None, "limit": 10, "mutations": []}
        if rule.endpoint == "sync.enrol":
            body = {"protocol": 1, "code": "NOT-A-REAL-CODE", "device_name": "walk"}
        return client.open(path, method=method, json=body, headers=headers)
    return client.open(path, method=method, data={"csrf_token": csrf} if method == "POST" else None,
                       headers=headers)


def _methods(rule):
    """The methods a route is walked with: HEAD only where it is the route's own (not GET's twin)."""
    return sorted(rule.methods - {"HEAD", "OPTIONS"}) or ["HEAD"]


def test_every_route_is_in_the_walk(app):
    """A new route must say, in ROUTES, what its records are before the walk lets it pass."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - set(ROUTES) == set(), "add these routes to ROUTES"
    assert set(ROUTES) - endpoints == set(), "these ROUTES entries name no route"


def test_every_role_gets_the_expected_answer_on_every_route(app, walk_world):
    """Each role on each route, for this area's, another area's and shared records."""
    # Signing out (on the web, or a device) comes last: what follows it would be refused.
    rules = sorted(app.url_map.iter_rules(),
                   key=lambda r: (r.endpoint in ("signin.logout", "sync.device_sign_out"), r.endpoint))
    wrong, tried, walked = [], 0, set()
    for principal in PRINCIPALS:
        client, csrf = _client_for(app, principal, walk_world)
        for rule in rules:
            with app.test_request_context():
                audiences = access_rule(rule.endpoint)
            route = ROUTES[rule.endpoint]
            for method in _methods(rule):
                for scope in route.scopes:
                    response = _request(app, client, principal, walk_world, rule, method, scope, csrf)
                    got = outcome(response, route)
                    response.close()  # file responses (static, icons) hold their file open until closed
                    want = expected(audiences, route, principal, scope, method)
                    tried += 1
                    walked.add(rule.endpoint)
                    if got != want:
                        wrong.append((principal.name, method, rule.rule, scope, f"got {got}, expected {want}"))
    assert wrong == [], "\n".join(map(str, wrong))
    assert walked == set(ROUTES)
    assert tried >= len(PRINCIPALS) * len(ROUTES)


def test_the_walk_catches_a_coordinator_changing_a_shared_form(app, walk_world, monkeypatch):
    """Negative control: with the shared-form rule removed, the walk reports coordinators getting in."""
    from server.coordinator import manage

    monkeypatch.setattr(manage, "_may_change", lambda form: None)
    principal = PRINCIPALS[4]
    client, csrf = _client_for(app, principal, walk_world)
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == "coordinator.retire_form")
    got = outcome(_request(app, client, principal, walk_world, rule, "POST", "shared", csrf), ROUTES[rule.endpoint])
    assert got != expected(("coordinator",), ROUTES[rule.endpoint], principal, "shared", "POST")


def test_the_walk_catches_a_coordinator_reaching_another_area(app, walk_world, monkeypatch):
    """Negative control: with area ownership unchecked, the other area's coordinator gets in."""
    from server import auth

    monkeypatch.setattr(auth, "area_ids_for", lambda person, roles: None)
    principal = PRINCIPALS[5]
    client, csrf = _client_for(app, principal, walk_world)
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == "coordinator.dashboard")
    with app.test_request_context():
        audiences = access_rule(rule.endpoint)
    route = ROUTES[rule.endpoint]
    assert expected(audiences, route, principal, "here", "GET") == 404
    assert outcome(_request(app, client, principal, walk_world, rule, "GET", "here", csrf), route) == "in"
