"""Partners hear about their actions: emails through a real SMTP server on loopback, started by the test."""

from __future__ import annotations

import logging
import re
import socket
import time
from email import message_from_bytes
from email.policy import default as email_policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from server import create_app, mail, operations
from server.extensions import db
from server.models import Action, ActionComment, AuditEntry
from tests.conftest import sign_in

PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps every message it is given; `refuse` turns away every recipient (True) or some."""

    def __init__(self, refuse=False):
        self.messages = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse is True or address in (self.refuse or ()):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=email_policy)))
        return "250 Message accepted"


@pytest.fixture
def smtp(app):
    """A real SMTP server on a free loopback port, and the app set up to send through it."""
    started = []

    def start(refuse=False):
        inbox = Inbox(refuse=refuse)
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
        controller.start()
        started.append(controller)
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port, MAIL_TLS="off",
                          MAIL_FROM="kerbside@council.example", MAIL_TIMEOUT=5)
        return inbox

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def world(client, make_area, make_site):
    area = make_area("millbrook", "Millbrook")
    other = make_area("eastside", "Eastside")
    canal = make_site(area, "Canal Street")
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD,
                             roles=[("coordinator", area)])
    operations.create_person("Cleansing Team", email="clean@example.org", password=PASSWORD,
                             organisation="Street cleansing", roles=[("partner", area)])
    operations.create_person("Cleansing Night Shift", email="night@example.org",
                             organisation="Street cleansing", roles=[("partner", area)])
    # Same organisation, another area: not a partner of Millbrook's actions.
    operations.create_person("Eastside Cleansing", email="east-clean@example.org",
                             organisation="Street cleansing", roles=[("partner", other)])
    operations.create_person("Police Contact", email="police@example.org", password=PASSWORD,
                             organisation="Police", roles=[("partner", area)])
    db.session.commit()
    return {"area": area, "canal": canal}


def raise_assigned(client, csrf, world, title="Clear the fly-tipping", assigned_to="Street cleansing"):
    response = client.post("/coordinator/millbrook/actions/new", data={
        "csrf_token": csrf, "site_id": world["canal"].id, "title": title, "assigned_to": assigned_to})
    assert response.status_code == 302, response.text
    return db.session.execute(select(Action).order_by(Action.created_at.desc())).scalars().first()


def text_of(message) -> str:
    """The plain text as written (SMTP carries it with CRLF line ends)."""
    return message.get_content().replace("\r\n", "\n")


def email_audits():
    return [e.details for e in db.session.execute(
        select(AuditEntry).where(AuditEntry.action == "action.email").order_by(AuditEntry.seq)).scalars()]


def test_assigning_an_action_emails_the_partners_of_that_organisation_in_the_area(client, world, smtp,
                                                                                  no_server_errors):
    inbox = smtp()
    csrf = sign_in(client, "cora@example.org")
    assert "Email is not set up" not in client.get("/coordinator/millbrook/actions/new").text
    action = raise_assigned(client, csrf, world)
    assert sorted(to for to, _message in inbox.messages) == [["clean@example.org"], ["night@example.org"]]
    recipients, message = inbox.messages[0]
    assert message["To"] == "clean@example.org"
    assert message["From"] == "kerbside@council.example"
    assert message["Subject"] == "Action assigned to Street cleansing: Clear the fly-tipping"
    assert message["Auto-Submitted"] == "auto-generated"
    body = text_of(message)
    assert message.get_content_type() == "text/plain"
    assert f"http://localhost/coordinator/millbrook/actions/{action.id}" in body
    assert "Canal Street" in body
    # Nothing about anyone else: the other partners' addresses and the coordinator stay out of it.
    assert "night@example.org" not in body and "cora@example.org" not in message.as_string()
    page = client.get(f"/coordinator/millbrook/actions/{action.id}").text
    assert "Email sent to Street cleansing (2 people)." in page
    assert "Email is not set up" not in page
    assert email_audits() == [{"about": "assigned", "outcome": "sent", "recipients": 2, "sent": 2}]


def test_the_link_uses_the_base_url_setting(client, world, smtp, app):
    inbox = smtp()
    app.config.update(BASE_URL="https://kerbside.council.example/", MAIL_FROM="Kerbside <kerbside@council.example>")
    csrf = sign_in(client, "cora@example.org")
    action = raise_assigned(client, csrf, world)
    body = text_of(inbox.messages[0][1])
    assert f"https://kerbside.council.example/coordinator/millbrook/actions/{action.id}\n" in body
    message = inbox.messages[0][1]
    assert message["From"] == "Kerbside <kerbside@council.example>"
    assert message["Message-ID"].endswith("@council.example>")


def test_reassigning_emails_the_new_partner_and_other_changes_email_no_one(client, world, smtp):
    inbox = smtp()
    csrf = sign_in(client, "cora@example.org")
    action = raise_assigned(client, csrf, world)
    inbox.messages.clear()
    path = f"/coordinator/millbrook/actions/{action.id}"
    response = client.post(path, data={"csrf_token": csrf, "status": "acknowledged", "assigned_to": "Street cleansing"})
    assert response.status_code == 302
    assert inbox.messages == []
    response = client.post(path, data={"csrf_token": csrf, "status": "acknowledged", "assigned_to": "Police"})
    assert response.status_code == 302
    assert [to for to, _message in inbox.messages] == [["police@example.org"]]
    assert db.session.get(Action, action.id).assigned_to == "Police"


def test_a_coordinators_comment_is_emailed_and_a_partners_reply_is_not(client, world, smtp, no_server_errors):
    inbox = smtp()
    csrf = sign_in(client, "cora@example.org")
    action = raise_assigned(client, csrf, world, assigned_to="Police")
    inbox.messages.clear()
    path = f"/coordinator/millbrook/actions/{action.id}"
    response = client.post(path + "/comments", data={"csrf_token": csrf, "comment": "Could you look on Friday?\nThanks"})
    assert response.status_code == 302
    ((to, message),) = inbox.messages
    assert to == ["police@example.org"]
    assert message["Subject"] == "Comment on an action: Clear the fly-tipping"
    body = text_of(message)
    assert "Cora Coordinator commented on an action assigned to Police:" in body
    assert "Could you look on Friday?\nThanks" in body
    assert f"http://localhost{path}" in body
    client.post("/logout", data={"csrf_token": csrf})
    partner_csrf = sign_in(client, "police@example.org")
    page = client.get(path).text
    assert "Could you look on Friday?" in page and "Cora Coordinator" in page
    response = client.post(path + "/comments", data={"csrf_token": partner_csrf, "comment": "Friday is fine."})
    assert response.status_code == 302
    assert len(inbox.messages) == 1
    assert [c.body for c in db.session.execute(select(ActionComment).order_by(ActionComment.created_at)).scalars()] \
        == ["Could you look on Friday?\nThanks", "Friday is fine."]


def test_a_partner_cannot_comment_on_another_organisations_action(client, world, smtp):
    inbox = smtp()
    csrf = sign_in(client, "cora@example.org")
    action = raise_assigned(client, csrf, world, assigned_to="Police")
    client.post("/logout", data={"csrf_token": csrf})
    partner_csrf = sign_in(client, "clean@example.org")
    response = client.post(f"/coordinator/millbrook/actions/{action.id}/comments",
                           data={"csrf_token": partner_csrf, "comment": "Not ours"})
    assert response.status_code == 404
    assert db.session.execute(select(ActionComment)).first() is None
    assert len(inbox.messages) == 1  # only the assignment's


def test_an_empty_comment_is_refused_with_the_reason(client, world):
    csrf = sign_in(client, "cora@example.org")
    action = operations.raise_action(world["area"], "Fix the lights", assigned_to="Police")
    db.session.commit()
    response = client.post(f"/coordinator/millbrook/actions/{action.id}/comments", data={"csrf_token": csrf,
                                                                                      "comment": "   "})
    assert response.status_code == 400
    assert "Write the comment first." in response.text
    assert db.session.execute(select(ActionComment)).first() is None


def test_without_a_mail_server_nothing_is_sent_and_the_page_says_so(client, world, app):
    assert app.config["MAIL_SERVER"] is None
    csrf = sign_in(client, "cora@example.org")
    assert "Email is not set up: tell the partner yourself." in client.get("/coordinator/millbrook/actions/new").text
    action = raise_assigned(client, csrf, world)
    page = client.get(f"/coordinator/millbrook/actions/{action.id}").text
    assert "Email is not set up: tell the partner yourself." in page
    response = client.post(f"/coordinator/millbrook/actions/{action.id}/comments",
                           data={"csrf_token": csrf, "comment": "Any news?"})
    assert response.status_code == 302
    assert email_audits() == []


def test_with_the_mail_server_down_the_action_is_saved_and_the_page_says_not_sent(client, world, app,
                                                                                   no_server_errors):
    # Nothing listens on this port: the connection is refused.
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_TLS="off",
                      MAIL_FROM="kerbside@council.example", MAIL_TIMEOUT=5)
    csrf = sign_in(client, "cora@example.org")
    action = raise_assigned(client, csrf, world)
    assert db.session.get(Action, action.id).assigned_to == "Street cleansing"
    page = client.get(f"/coordinator/millbrook/actions/{action.id}").text
    assert "The email to Street cleansing could not be sent: tell them yourself." in page
    assert email_audits() == [{"about": "assigned", "outcome": "failed", "recipients": 2, "sent": 0,
                               "problem": "ConnectionRefusedError"}]
    response = client.post(f"/coordinator/millbrook/actions/{action.id}/comments",
                           data={"csrf_token": csrf, "comment": "Any news?"}, follow_redirects=True)
    assert response.status_code == 200
    assert "could not be sent" in response.text
    assert db.session.execute(select(ActionComment.body)).scalar_one() == "Any news?"


def test_a_server_that_refuses_the_recipients_is_reported_as_not_sent(client, world, smtp):
    inbox = smtp(refuse=True)
    csrf = sign_in(client, "cora@example.org")
    action = raise_assigned(client, csrf, world)
    assert inbox.messages == []
    page = client.get(f"/coordinator/millbrook/actions/{action.id}").text
    assert "could not be sent" in page
    assert email_audits()[0]["problem"] == "SMTPRecipientsRefused"


def test_a_server_that_never_answers_is_given_up_on_after_the_timeout(client, world, app):
    # Listening but never accepting: the connection opens, the greeting never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=silent.getsockname()[1], MAIL_TLS="off",
                          MAIL_FROM="kerbside@council.example", MAIL_TIMEOUT=0.5)
        csrf = sign_in(client, "cora@example.org")
        started = time.monotonic()
        action = raise_assigned(client, csrf, world, assigned_to="Police")
        assert time.monotonic() - started < 4
    assert db.session.get(Action, action.id) is not None
    assert email_audits()[0]["outcome"] == "failed"


def test_the_password_is_never_logged(client, world, smtp, app, caplog):
    smtp()
    # The test server offers no AUTH, so signing in to it fails: the failure is logged without the password.
    app.config.update(MAIL_USERNAME="kerbside", MAIL_PASSWORD="s3cret-mail-password")
    csrf = sign_in(client, "cora@example.org")
    with caplog.at_level(logging.DEBUG):
        action = raise_assigned(client, csrf, world)
    assert "SMTPNotSupportedError" in caplog.text
    assert "s3cret-mail-password" not in caplog.text
    assert "clean@example.org" not in caplog.text
    assert "s3cret-mail-password" not in str(email_audits())
    assert db.session.get(Action, action.id) is not None


def test_a_title_with_a_line_break_stays_in_the_subject(client, world, smtp):
    inbox = smtp()
    csrf = sign_in(client, "cora@example.org")
    raise_assigned(client, csrf, world, title="Bins\r\nBcc: someone@example.net")
    ((_to, message), _second) = inbox.messages
    assert message["Bcc"] is None
    assert message["Subject"] == "Action assigned to Street cleansing: Bins Bcc: someone@example.net"


def test_the_email_is_in_the_servers_language_whatever_the_coordinators_browser(client, world, smtp):
    inbox = smtp()
    csrf = sign_in(client, "cora@example.org")
    client.post("/coordinator/millbrook/actions/new", headers={"Accept-Language": "cy"}, data={
        "csrf_token": csrf, "title": "Paint", "assigned_to": "Police"})
    assert re.match(r"Action assigned to Police", inbox.messages[0][1]["Subject"])


@pytest.mark.parametrize("settings, problem", [
    ({"MAIL_SERVER": "smtp.example", "MAIL_FROM": None}, "KERBSIDE_MAIL_FROM"),
    ({"MAIL_SERVER": "smtp.example", "MAIL_FROM": "k@example", "MAIL_TLS": "yes please"}, "KERBSIDE_MAIL_TLS"),
    ({"MAIL_SERVER": "smtp.example", "MAIL_FROM": "k@example", "MAIL_PASSWORD": "x"}, "KERBSIDE_MAIL_USERNAME"),
])
def test_mail_settings_that_cannot_work_stop_the_start(tmp_path, settings, problem):
    with pytest.raises(RuntimeError, match=problem):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}", "SECRET_KEY": "t",
                    "MAIL_TLS": "starttls", **settings})


def test_outcome_messages_for_the_coordinator(app):
    with app.test_request_context():
        assert mail.Outcome("sent", "Police", 1, 1).message() == "Email sent to Police (1 person)."
        assert "reached 1 of 2" in mail.Outcome("partly", "Police", 2, 1).message()
        assert "Nobody at Police" in mail.Outcome("nobody", "Police").message()


def test_erasing_a_commenter_keeps_the_comment_and_forgets_who_wrote_it(client, world, app):
    from server import privacy
    from server.models import Person

    csrf = sign_in(client, "cora@example.org")
    action = raise_assigned(client, csrf, world, assigned_to="Police")
    client.post(f"/coordinator/millbrook/actions/{action.id}/comments", data={"csrf_token": csrf, "comment": "Noted."})
    cora = db.session.execute(select(Person).where(Person.email == "cora@example.org")).scalar_one()
    exported = privacy.export_person(cora.id)
    assert [c["text"] for c in exported["comments_they_wrote"]] == ["Noted."]
    report = privacy.erase_person(cora.id)
    db.session.commit()
    assert report.counts["comments_unattributed"] == 1
    comment = db.session.execute(select(ActionComment)).scalar_one()
    assert (comment.body, comment.author_id) == ("Noted.", None)
    client.post("/logout", data={"csrf_token": csrf})
    sign_in(client, "police@example.org")
    page = client.get(f"/coordinator/millbrook/actions/{action.id}").text
    assert "Noted." in page and "Someone no longer here" in page and "Cora" not in page


def test_one_refused_address_does_not_stop_the_others(client, world, smtp):
    inbox = smtp(refuse={"night@example.org"})
    csrf = sign_in(client, "cora@example.org")
    action = raise_assigned(client, csrf, world)
    assert [to for to, _message in inbox.messages] == [["clean@example.org"]]
    page = client.get(f"/coordinator/millbrook/actions/{action.id}").text
    assert "The email reached 1 of 2 people at Street cleansing: tell the others yourself." in page
    assert email_audits()[0] == {"about": "assigned", "outcome": "partly", "recipients": 2, "sent": 1,
                                 "problem": "SMTPRecipientsRefused"}


def test_no_transaction_is_open_while_the_mail_server_is_waited_for(client, world, smtp, monkeypatch):
    """On SQLite a posted page's transaction holds the write lock: devices would wait on a slow mail server."""
    smtp()
    held = []
    real_send = mail.send

    def watching(letter):
        held.append(db.session().in_transaction())
        return real_send(letter)

    monkeypatch.setattr(mail, "send", watching)
    csrf = sign_in(client, "cora@example.org")
    action = raise_assigned(client, csrf, world)
    client.post(f"/coordinator/millbrook/actions/{action.id}/comments", data={"csrf_token": csrf, "comment": "Soon?"})
    assert held == [False, False]
