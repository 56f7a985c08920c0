"""Emails to partners about their actions: assigned to them, or commented on by a coordinator.

Sent with `smtplib` after the change is committed, so a mail server that is slow, down or
refusing never loses the change: the page and the audit log say the email was not sent,
and the coordinator tells the partner another way. Each step with the server waits at
most MAIL_TIMEOUT seconds. With no MAIL_SERVER nothing is sent at all.

The email says only what the partner already sees on the action's page (its title, site
and issue, and the comment), plain text, in the server's default language (the partner's
own is not known), with a link to the action. Addresses and the password are never logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from flask import current_app, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from server.extensions import db
from server.models import Action, Area, Person, Role, Site

log = logging.getLogger(__name__)

TLS_MODES = ("starttls", "ssl", "off")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "off": 25}


def check_settings(config) -> None:
    """Refuse to start with mail settings that could only fail later, one email at a time."""
    if not config.get("MAIL_SERVER"):
        return
    if config.get("MAIL_TLS") not in TLS_MODES:
        raise RuntimeError("KERBSIDE_MAIL_TLS must be starttls, ssl or off.")
    if not config.get("MAIL_FROM"):
        raise RuntimeError("KERBSIDE_MAIL_FROM must be set when KERBSIDE_MAIL_SERVER is.")
    if config.get("MAIL_PASSWORD") and not config.get("MAIL_USERNAME"):
        raise RuntimeError("KERBSIDE_MAIL_PASSWORD is set without KERBSIDE_MAIL_USERNAME.")
    if not config.get("MAIL_TIMEOUT") or config["MAIL_TIMEOUT"] <= 0:
        raise RuntimeError("KERBSIDE_MAIL_TIMEOUT must be a number of seconds above 0.")


def is_set_up() -> bool:
    """Whether this server has a mail server to send through."""
    return bool(current_app.config.get("MAIL_SERVER"))


@dataclass
class Outcome:
    """What became of one notice: not set up, nobody to send to, sent, partly sent, or failed."""

    status: str
    organisation: str
    recipients: int = 0
    sent: int = 0
    problem: str | None = None
    about: str = ""

    def audit_details(self) -> dict:
        """For the audit log: counts and the kind of failure, never the addresses."""
        found = {"about": self.about, "outcome": self.status, "recipients": self.recipients, "sent": self.sent}
        if self.problem:
            found["problem"] = self.problem
        return found

    def message(self) -> str:
        """What the coordinator is told on the page."""
        if self.status == "not_set_up":
            return _("Email is not set up: tell the partner yourself.")
        if self.status == "nobody":
            return _("Nobody at %(organisation)s has an email address here: tell them yourself.",
                     organisation=self.organisation)
        if self.status == "sent":
            return ngettext("Email sent to %(organisation)s (%(num)s person).",
                            "Email sent to %(organisation)s (%(num)s people).", self.sent, organisation=self.organisation)
        if self.status == "partly":
            return _("The email reached %(sent)s of %(n)s people at %(organisation)s: tell the others yourself.",
                     sent=self.sent, n=self.recipients, organisation=self.organisation)
        return _("The email to %(organisation)s could not be sent: tell them yourself.",
                 organisation=self.organisation)


@dataclass
class Letter:
    """One email before it is addressed: its subject and text."""

    subject: str
    text: str
    to: list[str] = field(default_factory=list)


def partner_addresses(action: Action) -> list[str]:
    """The email addresses of the partners of this area who work for the organisation the action is assigned to."""
    if not action.assigned_to:
        return []
    query = (select(Person.email).join(Role, Role.person_id == Person.id)
             .where(Role.role == "partner", Role.area_id == action.area_id,
                    Person.organisation == action.assigned_to, Person.email.is_not(None))
             .distinct().order_by(Person.email))
    return [email for email in db.session.execute(query).scalars() if email]


def action_link(area: Area, action: Action) -> str:
    """The action's address for a partner: KERBSIDE_BASE_URL when set, else the address this request came to."""
    path = url_for("coordinator.action", slug=area.slug, action_id=action.id)
    base = current_app.config.get("BASE_URL") or request.host_url
    return base.rstrip("/") + "/" + path.lstrip("/")


def _one_line(text: str) -> str:
    """Header text on one line: a title or name with a line break must not add headers."""
    return " ".join((text or "").split())


def _about(area: Area, action: Action) -> list[str]:
    lines = [_("Action: %(title)s", title=_one_line(action.title))]
    site = db.session.get(Site, action.site_id) if action.site_id else None
    if site is not None:
        lines.append(_("Site: %(site)s", site=_one_line(site.name)))
    lines.append(_("Area: %(area)s", area=_one_line(area.name)))
    return lines


def assigned_letter(area: Area, action: Action) -> Letter:
    """The email telling a partner an action is now theirs."""
    organisation = _one_line(action.assigned_to)
    text = "\n".join([
        _("Hello,"), "",
        _("A coordinator has given %(organisation)s an action.", organisation=organisation), "",
        *_about(area, action), "",
        _("Open it to see the details and to say what is being done:"),
        action_link(area, action), "",
        _("Kerbside sent this email. Nobody reads replies to it, so use the link above."),
    ])
    return Letter(_("Action assigned to %(organisation)s: %(title)s", organisation=organisation,
                    title=_one_line(action.title)), text)


def comment_letter(area: Area, action: Action, comment_text: str, author: Person | None) -> Letter:
    """The email passing on a coordinator's comment on an action."""
    who = _one_line(author.display_name) if author is not None else _("A coordinator")
    text = "\n".join([
        _("Hello,"), "",
        _("%(name)s commented on an action assigned to %(organisation)s:", name=who,
          organisation=_one_line(action.assigned_to)), "",
        comment_text.strip(), "",
        *_about(area, action), "",
        _("Open it to reply or to say what is being done:"),
        action_link(area, action), "",
        _("Kerbside sent this email. Nobody reads replies to it, so use the link above."),
    ])
    return Letter(_("Comment on an action: %(title)s", title=_one_line(action.title)), text)


def notify_assigned(area: Area, action: Action) -> Outcome:
    """Email the partners an action has just been assigned to."""
    return _notify(area, action, "assigned", lambda: assigned_letter(area, action))


def notify_comment(area: Area, action: Action, comment_text: str, author: Person | None) -> Outcome:
    """Email the partners of an action a coordinator has just commented on."""
    return _notify(area, action, "comment", lambda: comment_letter(area, action, comment_text, author))


def _notify(area: Area, action: Action, about: str, letter) -> Outcome:
    organisation = action.assigned_to or ""
    if not is_set_up():
        return Outcome("not_set_up", organisation, about=about)
    addresses = partner_addresses(action)
    if not addresses:
        return Outcome("nobody", organisation, about=about)
    # The partner's language is not known: the server's own, not the coordinator's browser's.
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "en")):
        written = letter()
    written.to = addresses
    # Nothing is held while the mail server is waited for: on SQLite a posted page's
    # transaction holds the write lock, which would keep every device's sync waiting.
    db.session.commit()
    sent, problem = send(written)
    status = "sent" if sent == len(addresses) else ("partly" if sent else "failed")
    return Outcome(status, organisation, recipients=len(addresses), sent=sent, problem=problem, about=about)


def _message(letter: Letter, to: str) -> EmailMessage:
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = letter.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=parseaddr(config["MAIL_FROM"])[1].rpartition("@")[2] or None)
    # Tells mail servers and people's rules that no one typed it (RFC 3834): no auto-replies.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(letter.text)
    return message


def send(letter: Letter) -> tuple[int, str | None]:
    """Send one message to each address over one connection; returns how many were accepted, and why not."""
    config = current_app.config
    tls = config["MAIL_TLS"]
    host, timeout = config["MAIL_SERVER"], config["MAIL_TIMEOUT"]
    port = config.get("MAIL_PORT") or DEFAULT_PORTS[tls]
    sent, problem = 0, None
    try:
        if tls == "ssl":
            connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            connection = smtplib.SMTP(host, port, timeout=timeout)
        with connection:
            if tls == "starttls":
                connection.starttls(context=ssl.create_default_context())
            if config.get("MAIL_USERNAME"):
                connection.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            for address in letter.to:
                try:
                    connection.send_message(_message(letter, address))
                    sent += 1
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
                        smtplib.SMTPNotSupportedError, UnicodeError) as refused:
                    # One refused address (or one the server cannot take, such as non-ASCII
                    # without SMTPUTF8) does not stop the others.
                    problem = type(refused).__name__
    except (OSError, smtplib.SMTPException) as failure:
        # OSError covers refused connections, timeouts and TLS failures. Only the kind of
        # failure is kept: a server's reply to a login can echo what was sent.
        problem = type(failure).__name__
    except Exception as failure:  # noqa: BLE001
        # The change is already saved: whatever else goes wrong in sending, the page must say
        # "not sent" rather than become an error page that hides the saved change.
        problem = type(failure).__name__
    if problem:
        log.warning("Email to partners: %s of %s sent through %s:%s (%s)", sent, len(letter.to), host, port, problem)
    return sent, problem
