"""Translating a form or agreement version: each text beside its source, in a language the app ships.

A translation is not a new version: a published version keeps its keys, lines and grades, and
gets its texts in another language beside them (see sync/content.py). Saving one writes an audit
entry and, for a version phones hold, its record again to the change log.
"""

from __future__ import annotations

from babel import Locale, UnknownLocaleError
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _

from server import audit, auth, operations
from server.auth import allow
from server.coordinator import bp
from server.coordinator.common import area_or_404
from server.coordinator.manage import _agreement_version_or_404, _form_version_or_404, _may_change
from server.extensions import db
from sync import content
from sync.protocol import GRADES

# Offered besides the languages the app is configured with, until config LANGUAGES lists them.
CONTENT_LANGUAGES = ("cy", "ur")
# Urdu (and any other of these) is written right to left: its fields are too.
RIGHT_TO_LEFT = {"ar", "fa", "he", "ps", "ur", "yi"}
FIELD_PREFIX = "text-"


def translation_choices(source_language: str) -> list[str]:
    """The languages a version may be translated into: the shipped ones, less its own."""
    shipped = [content.primary_language(tag) for tag in current_app.config.get("LANGUAGES", [])]
    source = content.primary_language(source_language)
    return [tag for tag in dict.fromkeys([*shipped, *CONTENT_LANGUAGES]) if tag and tag != source]


def language_name(tag: str) -> str:
    """A language's name in the page's language, with its own name beside it: "Welsh (Cymraeg)"."""
    try:
        locale = Locale.parse(tag)
    except (ValueError, UnknownLocaleError):
        return tag
    here = locale.get_display_name(str(get_locale() or "en")) or tag
    own = locale.get_display_name(tag) or tag
    return here if here == own else f"{here} ({own})"


def _where_form(definition: dict) -> dict[str, str]:
    """What each text of a form is, in words, by text key ("Litter: wording for grade C")."""
    where = {"title": _("Title"), "instructions": _("Instructions")}
    for grade in GRADES:
        where[f"scale.{grade}"] = _("What grade %(grade)s means", grade=grade)
    for index, section in enumerate(definition.get("sections") or []):
        where[f"sections.{index}.theme"] = _("Section %(number)s: its heading", number=index + 1)
        for line in section.get("lines") or []:
            prefix, label = f"lines.{line.get('key')}", line.get("label") or line.get("key")
            where[f"{prefix}.label"] = _("Line “%(line)s”: its label", line=label)
            where[f"{prefix}.help"] = _("Line “%(line)s”: its help", line=label)
            for grade in GRADES:
                where[f"{prefix}.grades.{grade}"] = _("Line “%(line)s”: wording for grade %(grade)s",
                                                      line=label, grade=grade)
            for n, _option in enumerate(line.get("options") or []):
                where[f"{prefix}.options.{n}"] = _("Line “%(line)s”: answer %(number)s", line=label, number=n + 1)
    return where


def _where_agreement(definition: dict) -> dict[str, str]:
    """What each text of an agreement is, in words, by text key."""
    where = {"title": _("Title"), "summary": _("Summary")}
    for theme in definition.get("themes") or []:
        where[f"themes.{theme.get('key')}.name"] = _("Theme “%(theme)s”: its name", theme=theme.get("name"))
        where[f"themes.{theme.get('key')}.strapline"] = _("Theme “%(theme)s”: its strapline", theme=theme.get("name"))
    parts = {"our_part": _("Our part: a promise"), "your_part": _("Your part: a promise"),
             "standards": _("A service standard")}
    for part, said in parts.items():
        for item in definition.get(part) or []:
            where[f"{part}.{item.get('key')}.text"] = said
    return where


def _posted_texts() -> dict[str, str]:
    return {name[len(FIELD_PREFIX):]: value for name, value in request.form.items() if name.startswith(FIELD_PREFIX)}


def _translation_page(kind: str, area, version, here: str, back: str, may_change: bool = True):
    """Show a version's translation into the chosen language; on POST, check and keep it."""
    source_language = version.language or "en"
    choices = translation_choices(source_language)
    language = content.primary_language(request.values.get("lang") or (choices[0] if choices else ""))
    if language not in choices:
        abort(400, description=_("Choose one of the languages offered."))
    errors: dict = {}
    stored = dict((version.translations or {}).get(language) or {})
    shown = stored
    if request.method == "POST":
        texts = _posted_texts()
        try:
            before, after = operations.set_translation(kind, version, language, texts, choices=choices)
            if before != after:
                audit.record(f"{kind}.translate", record_type=f"{kind}_version", record_id=version.sync_id,
                             area_id=area.id, details={"language": language},
                             before=before, after=after)
            db.session.commit()
            flash(_("Translation saved. Phones get it on their next sync.") if version.status != "draft"
                  else _("Translation saved."))
            return redirect(f"{here}?lang={language}")
        except operations.OperationError as problem:
            db.session.rollback()
            errors = problem.errors or {"texts": [problem.message]}
            shown = texts
    source = content.texts_of(kind, version.definition)
    where = _where_agreement(version.definition) if kind == "agreement" else _where_form(version.definition)
    rows = [{"key": key, "field": f"{FIELD_PREFIX}{key}", "source": text, "where": where.get(key, key),
             "value": shown.get(key, ""), "errors": errors.get(f"texts.{key}", [])}
            for key, text in source.items()]
    return render_template(
        "coordinator/translation.html", area=area, version=version, kind=kind, rows=rows, errors=errors,
        language=language, language_label=language_name(language), source_language=source_language,
        source_label=language_name(source_language), choices=[(tag, language_name(tag)) for tag in choices],
        direction="rtl" if language in RIGHT_TO_LEFT else "ltr",
        source_direction="rtl" if content.primary_language(source_language) in RIGHT_TO_LEFT else "ltr",
        translated=sum(1 for row in rows if stored.get(row["key"])), here=here, back=back, may_change=may_change,
    ), (400 if errors else 200)


@bp.route("/<slug>/forms/<form_id>/<int:version>/translation", methods=["GET", "POST"])
@allow("coordinator")
def form_translation(slug, form_id, version):
    """A form version's texts in another language, published or draft; keys and grades stay as they are."""
    area = area_or_404(slug)
    found = _form_version_or_404(area, form_id, version)
    if request.method == "POST":
        _may_change(found.form)  # a shared form is an admin's to translate, as to change
    may_change = not found.form.is_shared or auth.has_role(g.person, "admin")
    here = url_for("coordinator.form_translation", slug=slug, form_id=form_id, version=version)
    back = url_for("coordinator.form_version", slug=slug, form_id=form_id, version=version)
    return _translation_page("form", area, found, here, back, may_change)


@bp.route("/<slug>/agreement/<agreement_id>/<int:version>/translation", methods=["GET", "POST"])
@allow("coordinator")
def agreement_translation(slug, agreement_id, version):
    """An agreement version's texts in another language, published or draft."""
    area = area_or_404(slug)
    found = _agreement_version_or_404(area, agreement_id, version)
    here = url_for("coordinator.agreement_translation", slug=slug, agreement_id=agreement_id, version=version)
    back = url_for("coordinator.agreement_version", slug=slug, agreement_id=agreement_id, version=version)
    return _translation_page("agreement", area, found, here, back)
