"""Every page with the Content-Security-Policy in force, in a real Chromium: no violation.

The server sends a strict CSP (no inline scripts or styles, nothing from other origins).
A page that breaks it still loads, but part of it silently stops working, so each page is
loaded with a recorder in place before its own scripts run: it keeps every
`securitypolicyviolation` event, and Chromium's console errors about the policy are kept
too. The pages are the URL map's HTML pages (public, the coordinators' pages as a
coordinator, the partners' as a partner, all of them again as an admin) and the field
app's screens; a page added to the URL map must be added here or the test fails.
A negative control serves a real page with an inline style and script added, under the
server's own policy, and the recorder must catch both.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from e2e.conftest import DEMO_PASSWORD
from e2e.test_pwa_field import SYNC_TIMEOUT_MS, join, new_volunteer
from server import operations
from server.extensions import db
from server.models import Action, AgreementVersion, Area, Device, Form, FormVersion, Person, Role, Site, Submission

ADMIN_EMAIL = "csp-admin@example.org"

RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push({directive: event.violatedDirective, blocked: event.blockedURI,
                               source: event.sourceFile, line: event.lineNumber, sample: event.sample});
}, true);
"""

# GET routes that answer something other than an HTML page (files, images, data, scripts).
NOT_PAGES = {
    "static", "web.language", "api-docs.openapi_json", "pwa.service_worker", "pwa.web_manifest", "pwa.asset", "pwa.icon",
    "coordinator.leaflet", "coordinator.export_submissions", "coordinator.export_actions",
    "coordinator.export_sites", "coordinator.photo", "coordinator.invite_qr", "admin_audit.entries_csv",
    "admin_privacy.export", "coordinator.export_mystery_shops", "coordinator.export_checklists",
    "coordinator.export_workbook",
    # Probes and Prometheus: JSON and plain text, not pages.
    "ops.healthz", "ops.readyz", "ops.metrics_page",
}
# The field app's screens, by the address the app routes on (pwa.shell is the page they share).
FIELD_SCREENS = ("#/", "#/deal", "#/mine", "#/settings", "#/attention")


class Recorder:
    """Collects CSP violations and CSP console errors of one page, per address visited."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORDER)
        page.on("console", self._console)

    def _console(self, message):
        if message.type == "error" and "Content Security Policy" in message.text:
            self.console.append(message.text)

    def visit(self, url: str) -> list:
        """Load `url` and give back what broke the policy on it."""
        self.console.clear()
        response = self.page.goto(url)
        assert response is None or response.status < 400, (url, response.status)
        return self.found(url)

    def found(self, where: str) -> list:
        self.page.wait_for_load_state("load")
        # Violations are reported as a task after the blocked load or run: give them a moment.
        self.page.wait_for_timeout(150)
        events = self.page.evaluate("window.__cspViolations || []")
        return [(where, event) for event in events] + [(where, text) for text in self.console]


def _page_endpoints(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and rule.endpoint not in NOT_PAGES}


def _real_addresses(live) -> dict[str, str]:
    """An address with real ids for each HTML page of the demo area."""

    def work():
        area = db.session.execute(select(Area).where(Area.slug == live.details["area"])).scalar_one()
        site = db.session.execute(select(Site).where(Site.area_id == area.id)).scalars().first()
        submission = db.session.execute(select(Submission).where(Submission.area_id == area.id)).scalars().first()
        action = db.session.execute(select(Action).where(Action.area_id == area.id)).scalars().first()
        form = db.session.execute(select(FormVersion).join(Form)).scalars().first()
        agreement = db.session.execute(select(AgreementVersion)).scalars().first()
        if db.session.execute(select(Person).where(Person.email == ADMIN_EMAIL)).first() is None:
            operations.create_person("CSP Admin", email=ADMIN_EMAIL, password=DEMO_PASSWORD, roles=[("admin", None)])
            db.session.commit()
        volunteer = db.session.execute(select(Person).where(Person.email.is_(None))).scalars().first()
        reps = db.session.execute(select(Person).join(Role).where(Role.area_id == area.id, Role.role == "street_rep")
                                  .order_by(Person.display_name)).scalars().all()
        device = db.session.execute(select(Device).where(Device.person_id == reps[0].id)).scalars().first()
        slug = area.slug
        return {
            "web.index": "/", "signin.login": "/login", "api_docs.docs": "/api/docs", "pwa.shell": "/app/",
            "public.area": f"/area/{slug}",
            "imports.upload": "/coordinator/import",
            "coordinator.index": "/coordinator/",
            "coordinator.dashboard": f"/coordinator/{slug}/",
            "coordinator.priorities": f"/coordinator/{slug}/priorities",
            "coordinator.trends": f"/coordinator/{slug}/trends",
            "coordinator.map_view": f"/coordinator/{slug}/map",
            "coordinator.coverage": f"/coordinator/{slug}/coverage",
            "coordinator.sites_waiting": f"/coordinator/{slug}/sites-waiting",
            "coordinator.mystery_shops": f"/coordinator/{slug}/mystery-shops",
            "coordinator.checklist_results": f"/coordinator/{slug}/checklists",
            "coordinator.submissions": f"/coordinator/{slug}/submissions",
            "coordinator.submission": f"/coordinator/{slug}/submissions/{submission.id}",
            "coordinator.accept_matching": f"/coordinator/{slug}/submissions/accept-all",
            "coordinator.site": f"/coordinator/{slug}/sites/{site.id}",
            "coordinator.actions_board": f"/coordinator/{slug}/actions",
            "coordinator.new_action": f"/coordinator/{slug}/actions/new",
            "coordinator.action": f"/coordinator/{slug}/actions/{action.id}",
            "coordinator.exports": f"/coordinator/{slug}/exports",
            "coordinator.forms": f"/coordinator/{slug}/forms",
            "coordinator.form_version": f"/coordinator/{slug}/forms/{form.form_id}/{form.version}",
            "coordinator.confirm_retire_form": f"/coordinator/{slug}/forms/{form.form_id}/{form.version}/retire",
            "coordinator.agreements": f"/coordinator/{slug}/agreement",
            "coordinator.agreement_version":
                f"/coordinator/{slug}/agreement/{agreement.agreement_id}/{agreement.version}",
            "coordinator.form_translation":
                f"/coordinator/{slug}/forms/{form.form_id}/{form.version}/translation?lang=cy",
            "coordinator.agreement_translation":
                f"/coordinator/{slug}/agreement/{agreement.agreement_id}/{agreement.version}/translation?lang=ur",
            "coordinator.people": f"/coordinator/{slug}/people",
            "coordinator.person": f"/coordinator/{slug}/people/{reps[0].id}",
            "coordinator.merge_person": f"/coordinator/{slug}/people/{reps[0].id}/merge?with={reps[1].id}",
            "coordinator.revoke_device": f"/coordinator/{slug}/devices/{device.id}/revoke",
            "coordinator.area_settings": f"/coordinator/{slug}/settings",
            "account.password": "/account/password",
            "admin_people.people": "/admin/people",
            "admin_audit.entries": "/admin/audit",
            "admin_privacy.people": "/admin/privacy",
            "admin_privacy.person": f"/admin/privacy/{volunteer.id}",
            "admin_privacy.erase": f"/admin/privacy/{volunteer.id}/erase",
        }

    return live.run(work)


def _sign_in(page, url: str, email: str):
    page.goto(url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # "Sign out (name)": an admin lands on the people page, where "Sign out everywhere" buttons are too.
    expect(page.get_by_role("button", name=re.compile(r"^Sign out \("))).to_be_visible()


def test_every_page_is_named_here(live_server):
    """A new HTML page must be given an address in _real_addresses before this test passes."""
    assert _page_endpoints(live_server.app) - set(_real_addresses(live_server)) == set()


@pytest.mark.parametrize("who", ["anonymous", "coordinator", "partner", "admin"])
def test_no_page_breaks_the_content_security_policy(browser, live_server, who):
    addresses = _real_addresses(live_server)
    context = browser.new_context()
    page = context.new_page()
    recorder = Recorder(page)
    email = {"coordinator": live_server.details["email"], "partner": live_server.details["partner_email"],
             "admin": ADMIN_EMAIL}.get(who)
    if email:
        _sign_in(page, live_server.url, email)
    public = {"web.index", "signin.login", "api_docs.docs", "public.area"}
    # A partner's pages: the action board, and (below) an action of their own reached from it.
    partner_pages = {"coordinator.index", "coordinator.actions_board"}
    admin_pages = {endpoint for endpoint in addresses if endpoint.startswith("admin_")}
    wanted = {"anonymous": public, "partner": public | partner_pages,
              "coordinator": set(addresses) - {"pwa.shell"} - admin_pages}.get(who, set(addresses) - {"pwa.shell"})
    found = []
    for endpoint in sorted(wanted):
        found += recorder.visit(live_server.url + addresses[endpoint])
    if who == "partner":
        page.goto(live_server.url + addresses["coordinator.actions_board"])
        page.locator("main a[href*='/actions/']").first.click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        found += recorder.found("a partner's own action")
    context.close()
    assert found == []


def test_no_field_app_screen_breaks_the_content_security_policy(browser, live_server):
    context = browser.new_context()
    page = context.new_page()
    recorder = Recorder(page)
    found = recorder.visit(live_server.url + "/app/#/join")
    expect(page.get_by_role("heading", name="Join")).to_be_visible()
    join(page, live_server, new_volunteer(live_server, "CSP Rep"))
    found += recorder.found("after joining")
    for screen in FIELD_SCREENS:
        page.evaluate("(hash) => { location.hash = hash; }", screen)
        found += recorder.found(screen)
    page.evaluate("() => { location.hash = '#/'; }")
    page.get_by_role("link", name="Street monitoring visit").click()
    expect(page.get_by_role("button", name="Save and send")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    found += recorder.found("a street visit's form")
    page.evaluate("() => { location.hash = '#/'; }")
    page.get_by_role("link", name="Mystery shop").click()
    expect(page.get_by_role("button", name="Save and send")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    found += recorder.found("a mystery shop's form")
    context.close()
    assert found == []


def test_the_recorder_catches_an_inline_style_and_script(browser, live_server):
    """Negative control: a real page, under the server's own policy, with an inline style and script added."""
    context = browser.new_context()
    page = context.new_page()
    recorder = Recorder(page)

    def tamper(route):
        response = route.fetch()
        assert "script-src 'self'" in response.headers["content-security-policy"]
        body = response.text().replace(
            "</body>", '<p style="color: red">inline style</p><script>document.title = "ran";</script></body>')
        route.fulfill(response=response, body=body)

    page.route(re.compile(r".*/area/[^/]+$"), tamper)
    found = recorder.visit(f"{live_server.url}/area/{live_server.details['area']}")
    context.close()
    directives = {event["directive"] for _where, event in found if isinstance(event, dict)}
    assert {"script-src-elem", "style-src-attr"} <= directives, found
