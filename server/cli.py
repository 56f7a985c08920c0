"""The `kerbside` command: demo, serve, invite, db (Alembic) and the other admin tasks."""

from __future__ import annotations

import os
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_babel import gettext as _
from sqlalchemy import MetaData, select

from server import pwa_build
from server.extensions import db


def _create_app():
    from server import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True, add_version_option=False)
def main():
    """Kerbside: street monitoring for Neighbourhood Agreements."""


def drop_all_tables():
    """Empty the database of every table it holds, as they are (for tests and benchmarks).

    The tables are read from the database, not the models, so an older schema's tables and
    constraints go too.
    """
    db.session.remove()
    existing = MetaData()
    existing.reflect(db.engine)
    existing.drop_all(db.engine)


def upgrade_database():
    """Bring the database to the newest migration, then make sure the state rows exist."""
    from flask_migrate import upgrade

    from server import operations

    upgrade()
    operations.init_state()
    db.session.commit()


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Load the demo data and print the details, but do not start the server.")
@with_appcontext
def demo_command(host, port, no_serve):
    """Run Kerbside on SQLite with demo data, and print how to get in."""
    from server.demo import load_demo

    upgrade_database()
    details = load_demo()
    prepare_field_app(current_app)
    base = f"http://{host}:{port}"
    # The demo password is the demo's own, made fresh on each run; print it so a newcomer can sign in.
    click.echo(
        "\nKerbside demo is ready.\n"
        f"  Front page:        {base}/\n"
        f"  Field app:         {base}/app/\n"
        f"  Coordinator:       {base}/coordinator/\n"
        f"  Public page:       {base}/area/{details['area']}\n"
        f"  API docs:          {base}/api/docs\n"
        f"  Coordinator login: {details['email']} / {details['password']}\n"
        f"  Partner login:     {details['partner_email']} / {details['password']}\n"
        f"  Street rep invite: {details['invite']}\n"
        f"  Mystery shopper invite: {details['shopper_invite']}\n"
    )
    # End this command's transaction: on SQLite it would hold the write lock while serving.
    db.session.remove()
    if not no_serve:
        # Flask refuses app.run() inside its own CLI; werkzeug's server is what it would use.
        from werkzeug.serving import run_simple

        run_simple(host, port, current_app._get_current_object(), threaded=True)


def prepare_field_app(app) -> str:
    """Build the field app before serving, if this is a source checkout; returns its version.

    An installed package serves the build its wheel carries and writes nothing.
    """
    from server import pwa

    with app.app_context():
        return pwa.current_build().version


@click.command("build")
@click.option("--source", "source_dir", default=None, help="The app's sources (default: pwa/ of this checkout).")
@click.option("--out", "out_dir", default=None,
              help="Where to write the build (default: where this server serves it from, PWA_BUILD_DIR).")
@with_appcontext
def build_command(source_dir, out_dir):
    """Build the field app (modules, shell, service worker) once, for serving or for a package."""
    from server import pwa

    found_source, found_out = pwa.where(current_app.config, current_app.instance_path)
    source_dir = source_dir or found_source
    if source_dir is None:
        raise click.ClickException(_("This installation has no field app sources; it serves the build it was installed with."))
    info = pwa.build_locked(source_dir, out_dir or found_out, current_app.config["LANGUAGES"])
    pwa_build.compile_translations()
    click.echo(_("Field app version %(version)s built in %(folder)s.", version=info["version"], folder=out_dir or found_out))


@click.command("serve")
@click.option("--bind", default=os.environ.get("KERBSIDE_BIND", "0.0.0.0:8000"), show_default=True)
@click.option("--workers", default=int(os.environ.get("KERBSIDE_WORKERS", (os.cpu_count() or 1) * 2 + 1)),
              show_default="2 x cores + 1", type=int)
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Upgrade the database first.")
def serve_command(bind, workers, migrate):
    """Serve in production with gunicorn (set DATABASE_URL and SECRET_KEY first)."""
    from gunicorn.app.base import BaseApplication

    from server import create_app

    app = create_app()
    if migrate:
        with app.app_context():
            upgrade_database()
    from server import logs, metrics

    if app.config.get("LOG_FORMAT") == "json":
        logs.json_lines()  # the migration's logging.ini replaced the root logger's handlers
    # Once here, before the workers fork, so none of them builds at its first request.
    prepare_field_app(app)

    class Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            # JSON logs write their own line per request, without the query string gunicorn's
            # access log would show (a link may carry a token): one log, not two.
            self.cfg.set("accesslog", None if app.config.get("LOG_FORMAT") == "json" else "-")
            # Metrics across workers (PROMETHEUS_MULTIPROC_DIR): forget a worker's live values when it ends.
            self.cfg.set("child_exit", lambda _server, worker: metrics.worker_ended(worker.pid))

        def load(self):
            return app

    Gunicorn().run()


@click.command("invite")
@click.option("--area", "area_slug", required=True, help="The area's slug, e.g. millbrook.")
@click.option("--role", type=click.Choice(["street_rep", "mystery_shopper"]), required=True)
@click.option("--name", default=None, help="The volunteer's name, as coordinators will see it.")
@with_appcontext
def invite_command(area_slug, role, name):
    """Print a one-time invite code for a new volunteer."""
    from server import operations
    from server.models import Area

    area = db.session.execute(select(Area).where(Area.slug == area_slug)).scalar_one_or_none()
    if area is None:
        raise click.ClickException(f"No area with slug {area_slug!r}.")
    code = operations.issue_invite(area, role, display_name=name)
    db.session.commit()
    click.echo(code)


@click.command("add-coordinator")
@click.option("--area", "area_slug", required=True)
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.password_option()
@with_appcontext
def add_coordinator_command(area_slug, email, name, password):
    """Create a coordinator who signs in with email and password."""
    from server import operations
    from server.models import Area

    area = db.session.execute(select(Area).where(Area.slug == area_slug)).scalar_one_or_none()
    if area is None:
        raise click.ClickException(f"No area with slug {area_slug!r}.")
    _check_password(password)
    operations.create_person(name, email=email, password=password, roles=[("coordinator", area)])
    db.session.commit()
    click.echo(f"Coordinator {email} added to {area.name}.")


@click.command("add-admin")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.password_option()
@with_appcontext
def add_admin_command(email, name, password):
    """Create an admin (every area, shared forms, people who sign in) with email and password."""
    from server import operations
    from server.auth import person_by_email

    if person_by_email(email) is not None:
        raise click.ClickException(f"Someone already signs in as {email}.")
    _check_password(password)
    operations.create_person(name, email=email, password=password, roles=[("admin", None)])
    db.session.commit()
    click.echo(f"Admin {email} added.")


@click.command("one-time-password")
@click.option("--email", required=True)
@with_appcontext
def one_time_password_command(email):
    """Print a one-time password for a person who signs in; they must change it at sign-in.

    It is printed here once, for you to give them; it is not emailed, logged or kept.
    Every session they had ends.
    """
    from server import passwords

    person = _web_person(email)
    password = passwords.set_one_time_password(person)
    db.session.commit()
    click.echo(password)


@click.command("sign-out-everywhere")
@click.option("--email", required=True)
@with_appcontext
def sign_out_everywhere_command(email):
    """End every web session of a person who signs in (their devices stay signed in)."""
    from server import sessions

    person = _web_person(email)
    ended = sessions.end_all(person.id)
    db.session.commit()
    click.echo(f"{email} is signed out everywhere ({ended} sessions ended).")


def _web_person(email):
    from server.auth import person_by_email

    person = person_by_email(email)
    if person is None:
        raise click.ClickException(f"Nobody signs in as {email}.")
    return person


def _check_password(password):
    from server import passwords

    try:
        passwords.check_new_password(password, password)
    except passwords.PasswordError as error:
        raise click.ClickException(error.message) from None


@click.command("new-epoch")
@with_appcontext
def new_epoch_command():
    """Run after restoring the database from a backup: devices re-send what they sent lately."""
    from server import operations

    epoch = operations.start_new_epoch()
    click.echo(f"New server epoch {epoch}: devices will push their last 30 days again (duplicates are harmless).")


@click.group("audit")
def audit_group():
    """The audit log of coordinators', partners' and admins' actions."""


@audit_group.command("verify")
@with_appcontext
def audit_verify_command():
    """Walk the audit log's hash chain; exit 1 naming the first entry edited, removed or moved."""
    from server import audit

    verdict = audit.verify()
    db.session.rollback()  # it only read: end the transaction (on SQLite it holds the write lock)
    if not verdict.intact:
        click.echo(f"The audit log is broken at entry {verdict.broken_at}: {verdict.problem}. "
                   f"{verdict.entries} entries before it are intact.", err=True)
        sys.exit(1)
    click.echo(f"The audit log is intact: {verdict.entries} entries.")


@click.group("person")
def person_group():
    """A person's data, for UK GDPR: export it (a subject access request) or erase it."""


@person_group.command("export")
@click.argument("person_id")
@with_appcontext
def person_export_command(person_id):
    """Print everything held about a person as JSON."""
    import json

    from server import audit, privacy

    try:
        document = privacy.export_person(person_id)
    except privacy.NoSuchPerson:
        raise click.ClickException(f"No person with id {person_id!r}.") from None
    audit.record("person.export", record_type="person", record_id=person_id, details={"via": "cli"})
    db.session.commit()
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@person_group.command("erase")
@click.argument("person_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def person_erase_command(person_id, yes):
    """Erase a person: their identity and devices go; their visits stay, de-identified."""
    from server import privacy

    if not yes:
        click.confirm(f"Erase person {person_id}? Their name, email, password and devices are removed for good; "
                      "their visits stay, without their name, device or position.", abort=True)
    try:
        report = privacy.erase_person(person_id, via="cli")
    except privacy.NoSuchPerson:
        raise click.ClickException(f"No person with id {person_id!r}.") from None
    db.session.commit()
    click.echo(f"Erased person {person_id}: {report.summary()}.")


@click.command("retention")
@click.option("--dry-run", is_flag=True, help="Count what would be removed, and remove nothing.")
@with_appcontext
def retention_command(dry_run):
    """Remove what is past its retention period (run daily; see docs/retention.md)."""
    from server import retention

    periods = retention.RetentionPeriods.from_config(current_app.config)
    report = retention.apply_retention(periods, dry_run=dry_run)
    # Counts only: never a name, a device or a place.
    lines = [
        (_retention_label("Unreferenced photos", dry_run), report.unreferenced_photos,
         periods.unreferenced_photo_days),
        (_retention_label("Photo files", dry_run), report.photo_files, periods.unreferenced_photo_days),
        (_retention_label("Revoked devices blanked", dry_run), report.revoked_devices_blanked,
         periods.revoked_device_days),
        (_retention_label("Revoked devices removed", dry_run), report.revoked_devices_removed,
         periods.revoked_device_days),
        (_retention_label("Rejected payloads", dry_run), report.rejected_payloads, periods.rejected_payload_days),
        (_retention_label("Visit GPS positions", dry_run), report.gps_positions, periods.gps_days),
    ]
    click.echo("Dry run: nothing was removed." if dry_run else "Retention done.")
    for label, count, days in lines:
        click.echo(f"  {label}: {count} (kept {days} days)")
    click.echo(f"  {_retention_label('Ended web sessions', dry_run)}: {report.ended_sessions}")
    click.echo(f"  {_retention_label('Throttle windows that are over', dry_run)}: {report.throttle_windows}")


@click.command("compact")
@click.option("--keep-days", type=click.IntRange(min=0), default=None,
              help="Days of the change log to keep whole (default: KERBSIDE_CHANGES_KEEP_DAYS, 30).")
@with_appcontext
def compact_command(keep_days):
    """Remove the changes no phone can need any more (run daily; see docs/sync-protocol.md)."""
    from server import compaction

    days = current_app.config["CHANGES_KEEP_DAYS"] if keep_days is None else keep_days
    report = compaction.compact(days)
    click.echo(f"Change log compacted (kept {days} days whole).")
    click.echo(f"  Changes a later one replaced: {report.replaced}")
    click.echo(f"  Changes of deleted records: {report.deleted_records}")
    click.echo(f"  Kept from seq: {report.kept_from_before} -> {report.kept_from}")
    click.echo(f"  Changes remaining: {report.remaining}")


@click.group("grade-counts")
def grade_counts_group():
    """The street grades kept counted for the trends page and the dashboard."""


@grade_counts_group.command("rebuild")
@click.option("--area", "area_slug", default=None, help="Only this area (its slug); every area when left out.")
@with_appcontext
def grade_counts_rebuild_command(area_slug):
    """Count the kept street grade counts again from the visits' answers (after a restore or a bulk load)."""
    from server import grade_counts
    from server.models import Area

    area_id = None
    if area_slug:
        area_id = db.session.execute(select(Area.id).where(Area.slug == area_slug)).scalar()
        if area_id is None:
            raise click.ClickException(_("No area called %(slug)s.", slug=area_slug))
    rows = grade_counts.rebuild(db.session, area_id)
    db.session.commit()
    click.echo(_("Street grade counts rebuilt: %(rows)s rows.", rows=rows))


def _retention_label(label: str, dry_run: bool) -> str:
    return f"{label} (would go)" if dry_run else label


def register(app):
    for command in (demo_command, build_command, serve_command, invite_command, add_coordinator_command, add_admin_command,
                    one_time_password_command, sign_out_everywhere_command, new_epoch_command, retention_command, compact_command,
                    audit_group, person_group, grade_counts_group):
        app.cli.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
