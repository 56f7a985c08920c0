"""Form definitions and the answers filled against them.

`compile_form` turns one immutable form version into a validator once; the server keeps
it for the life of the process, so a batch of a hundred visits costs a dictionary look-up
per answer, not a schema build per submission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sync.protocol import (
    EARLIEST_YEAR,
    FORM_KINDS,
    GRADES,
    KEPT_VALUES,
    LATEST_YEAR,
    LINE_TYPES,
    MAX_DATA_DEPTH,
    MAX_SAFE_INTEGER,
)

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
KEY = re.compile(r"^[a-z0-9_]{1,64}$")
MAX_NOTE = 2000
MAX_TEXT = 4000
MAX_PHOTOS = 10
# What an answer may hold besides its note and photos: a grade line's letter, any other line's value.
ANSWER_KEYS = {"grade": frozenset({"grade", "note", "photos"})}
OTHER_ANSWER_KEYS = frozenset({"value", "note", "photos"})

# Control characters other than tab and the line breaks (a form posted from a browser ends its
# lines with CR LF), and UTF-16 surrogates without their pair. Nobody types them; PostgreSQL
# refuses NUL in text, and a lone surrogate has no UTF-8 form at all.
UNREADABLE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _identity(message: str) -> str:
    return message


@dataclass(frozen=True)
class Line:
    key: str
    type: str
    label: str
    theme: str
    optional: bool
    options: tuple = ()


def parse_datetime(value) -> datetime | None:
    """An aware datetime from ISO 8601 text with an offset, in the years the protocol accepts, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Inside these years the moment can always be put into UTC: at the ends of the calendar
    # (0001-01-01T00:00+05:00) the conversion itself overflows.
    if moment.tzinfo is None or not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        return None
    return moment


def readable_text(text: str) -> bool:
    """Whether `text` holds only what a person types: no control character but tab and line breaks, no lone surrogate."""
    return UNREADABLE_TEXT.search(text) is None


@dataclass(frozen=True)
class ContentProblem:
    """Why a JSON value cannot be kept, and where: `code` is too_deep, invalid_text or out_of_range."""

    code: str
    path: str


def content_problem(value, prefix: str = "") -> ContentProblem | None:
    """The first part of a JSON value the server could not keep, or None when all of it can be.

    Refused: containers nested deeper than MAX_DATA_DEPTH (the value itself is the first
    level), text (keys too) with control characters or lone surrogates, and numbers beyond
    MAX_SAFE_INTEGER either way or not finite. That holds for floats too: a parser may read
    an integer too large for 64 bits as a float, and no number a visit holds comes near it.
    `path` names the place as field errors do ("answers.litter.note"), after `prefix`.
    """
    code = _problem_code(value)
    if code is None:
        return None
    return ContentProblem(code, _locate(value, code, prefix) or prefix or "data")


def _scalar_problem(value) -> str | None:
    kind = type(value)
    if kind is str:
        return None if UNREADABLE_TEXT.search(value) is None else "invalid_text"
    if kind is int or kind is float:
        # NaN compares false with everything, so it is out of range too.
        return None if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else "out_of_range"
    return None


def _problem_code(value) -> str | None:
    # Level by level, without recursion (a body may nest a thousand deep) and without building
    # paths: this runs on every item of every push, and almost every item is fine.
    if type(value) not in (dict, list):
        return _scalar_problem(value)
    level, depth, texts = [value], 0, []
    while level:
        depth += 1
        if depth > MAX_DATA_DEPTH:
            return "too_deep"
        below = []
        for node in level:
            if type(node) is dict:
                texts.extend(node)
                children = node.values()
            else:
                children = node
            for child in children:
                kind = type(child)
                if kind is str:
                    texts.append(child)
                elif kind is dict or kind is list:
                    below.append(child)
                elif kind is int or kind is float:
                    if not -MAX_SAFE_INTEGER <= child <= MAX_SAFE_INTEGER:
                        return "out_of_range"
        level = below
    if texts and UNREADABLE_TEXT.search("\n".join(texts)) is not None:
        return "invalid_text"
    return None


def _locate(value, code: str, prefix: str) -> str | None:
    """The path of the first part of `value` with problem `code` (the slow walk, for a refused item only)."""
    stack = [(value, 1, prefix)]
    while stack:
        node, depth, path = stack.pop()
        if type(node) not in (dict, list):
            if _scalar_problem(node) == code:
                return path
            continue
        if depth > MAX_DATA_DEPTH:
            if code == "too_deep":
                return path
            continue
        pairs = node.items() if type(node) is dict else enumerate(node)
        found = []
        for key, child in pairs:
            # The path goes back to the client and into the mutation log: never with the bad text in it.
            name = UNREADABLE_TEXT.sub("\ufffd", key)[:64] if type(key) is str else str(key)
            where = f"{path}.{name}" if path else name
            if code == "invalid_text" and type(key) is str and UNREADABLE_TEXT.search(key) is not None:
                return where
            found.append((child, depth + 1, where))
        stack.extend(reversed(found))
    return None


def definition_errors(definition: dict, _=_identity) -> dict:
    """What is wrong with a form definition before it may be published."""
    errors: dict = {}
    if definition.get("kind") not in FORM_KINDS:
        errors["kind"] = [_("Choose street, checklist or mystery_shop.")]
    if not str(definition.get("title") or "").strip():
        errors["title"] = [_("Give the form a title.")]
    sections = definition.get("sections")
    if not isinstance(sections, list) or not sections:
        errors["sections"] = [_("A form needs at least one section with lines.")]
        return errors
    seen = set()
    for s_index, section in enumerate(sections):
        lines = section.get("lines") if isinstance(section, dict) else None
        if not isinstance(lines, list) or not lines:
            errors[f"sections.{s_index}"] = [_("Each section needs at least one line.")]
            continue
        for l_index, line in enumerate(lines):
            where = f"sections.{s_index}.lines.{l_index}"
            problems = _line_problems(line, definition.get("kind"), _)
            key = line.get("key") if isinstance(line, dict) else None
            if key in seen:
                problems.append(_("Two lines share this key."))
            seen.add(key)
            if problems:
                errors[where] = problems
    return errors


def _line_problems(line, kind, _) -> list:
    if not isinstance(line, dict):
        return [_("A line must be an object.")]
    problems = []
    if not KEY.match(str(line.get("key", ""))):
        problems.append(_("A line key uses lower-case letters, digits and underscores."))
    if not str(line.get("label") or "").strip():
        problems.append(_("Every line needs a label."))
    line_type = line.get("type")
    if line_type not in LINE_TYPES:
        problems.append(_("Unknown line type."))
    if line_type == "grade":
        grades = line.get("grades")
        if not isinstance(grades, dict) or set(grades) != set(GRADES) or not all(
            str(text).strip() for text in grades.values()
        ):
            problems.append(_("A graded line needs its own wording for each of A, B, C and D."))
        if kind == "street" and line.get("optional"):
            problems.append(_("Every graded line of a street form is required."))
    if line_type == "choice":
        options = line.get("options")
        if not isinstance(options, list) or len(options) < 2:
            problems.append(_("A choice line needs at least two options."))
    return problems


class FormValidator:
    """Checks answers against one form version."""

    def __init__(self, definition: dict):
        self.kind = definition["kind"]
        self.lines: dict[str, Line] = {}
        for section in definition["sections"]:
            theme = section.get("theme") or ""
            for line in section["lines"]:
                self.lines[line["key"]] = Line(
                    key=line["key"],
                    type=line["type"],
                    label=line.get("label", line["key"]),
                    theme=theme,
                    optional=bool(line.get("optional")) and not (self.kind == "street" and line["type"] == "grade"),
                    options=tuple(line.get("options") or ()),
                )

    def validate(self, answers, _=_identity) -> dict:
        """Field errors keyed `answers.<line key>`; empty when the answers are good."""
        if not isinstance(answers, dict):
            return {"answers": [_("Kerbside could not read the answers. Update the app, then fill in the visit again.")]}
        errors: dict = {}
        for key in answers:
            if key not in self.lines:
                errors[f"answers.{key}"] = [_("This question is not on the form you used.")]
        if not any(answer is not None for answer in answers.values()):
            # A visit with nothing answered says nothing; it is most likely a form sent by mistake.
            errors.setdefault("answers", []).append(_("Answer at least one line."))
        for key, line in self.lines.items():
            answer = answers.get(key)
            if answer is None:
                if not line.optional:
                    errors[f"answers.{key}"] = [_("This line needs an answer.")]
                continue
            problems = self._answer_problems(line, answer, _)
            if problems:
                errors[f"answers.{key}"] = problems
        return errors

    def _answer_problems(self, line: Line, answer, _) -> list:
        if not isinstance(answer, dict):
            return [_("Kerbside could not read this answer. Update the app, then fill in the visit again.")]
        problems = []
        if not answer.keys() <= ANSWER_KEYS.get(line.type, OTHER_ANSWER_KEYS):
            problems.append(_("This answer can only have a grade, a note and photos.")
                            if line.type == "grade" else
                            _("This answer can only have the answer itself, a note and photos."))
        if line.type == "grade":
            if answer.get("grade") not in GRADES:
                problems.append(_("Choose exactly one grade: A, B, C or D."))
        elif line.type == "kept":
            if answer.get("value") not in KEPT_VALUES:
                problems.append(_("Choose kept, partly kept, not kept or can't tell."))
        elif line.type == "choice":
            if answer.get("value") not in line.options:
                problems.append(_("Choose one of the options given."))
        elif line.type == "text":
            value = answer.get("value")
            if not isinstance(value, str) or (not value.strip() and not line.optional):
                problems.append(_("Write an answer."))
            elif len(value) > MAX_TEXT:
                problems.append(_("This answer is too long. Make it shorter."))
        elif line.type == "datetime":
            if parse_datetime(answer.get("value")) is None:
                problems.append(_("Give a date and time with its time zone, like 2026-11-20T14:05:00+00:00, "
                                  "between the years 2000 and 2100."))
        note = answer.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
            problems.append(_("Keep the note to 2000 characters or fewer."))
        photos = answer.get("photos")
        if photos is not None:
            if not isinstance(photos, list) or len(photos) > MAX_PHOTOS or not all(
                isinstance(p, str) and SHA256_HEX.match(p) for p in photos
            ):
                problems.append(_("Add no more than 10 photos, taken in the Kerbside app."))
        return problems

    def photos(self, answers: dict) -> set:
        """Every photo hash the answers refer to."""
        return {p for answer in answers.values() if isinstance(answer, dict) for p in answer.get("photos") or ()}


def compile_form(definition: dict) -> FormValidator:
    """Build the validator for one form version (call once per version)."""
    return FormValidator(definition)
