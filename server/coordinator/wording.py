"""Editing a draft's words without touching its JSON: a coordinator's everyday changes.

A form draft: its title and instructions, each section's theme, each line's label and (for a
graded line) its wording for A to D; a line can be removed, and on a street form a new graded
line added to a section. An agreement draft: its title and summary, each theme's name and
strapline, the text of every promise and service standard (a standard's days, and the street-form
lines it concerns, ticked from the street form's lines); a promise
can be removed, or added to our part or your part. Keys, line types and new sections stay
with the JSON editor beside it.

Both functions take the draft's definition and the posted fields and return a new definition;
`operations` then checks it exactly as it checks one edited as JSON.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping

GRADES = ("A", "B", "C", "D")
PARTS = ("our_part", "your_part")


def new_key(label: str, taken: set[str]) -> str:
    """A line or promise key made from its words: lower case, digits and underscores, unique."""
    base = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40].strip("_") or "line"
    if not base[0].isalpha():
        base = "line_" + base
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


def _set(target: dict, name: str, fields: Mapping[str, str], field: str):
    if field in fields:
        target[name] = fields[field].strip()


def form_with_wording(definition: dict, fields: Mapping[str, str]) -> dict:
    """`definition` with the words posted from the wording editor."""
    new = copy.deepcopy(definition)
    _set(new, "title", fields, "title")
    _set(new, "instructions", fields, "instructions")
    taken = {line.get("key") for section in new.get("sections", []) for line in section.get("lines", [])}
    for index, section in enumerate(new.get("sections", [])):
        _set(section, "theme", fields, f"section-{index}-theme")
        kept = []
        for line in section.get("lines", []):
            prefix = f"line-{line.get('key')}-"
            if fields.get(prefix + "remove"):
                continue
            _set(line, "label", fields, prefix + "label")
            if line.get("type") == "grade":
                for grade in GRADES:
                    _set(line.setdefault("grades", {}), grade, fields, f"{prefix}grade-{grade}")
            kept.append(line)
        section["lines"] = kept
        label = fields.get(f"section-{index}-new-label", "").strip()
        if label and new.get("kind") == "street":
            key = new_key(label, taken)
            taken.add(key)
            section["lines"].append({
                "key": key, "type": "grade", "label": label,
                "grades": {grade: fields.get(f"section-{index}-new-grade-{grade}", "").strip() for grade in GRADES},
            })
    return new


def agreement_with_wording(definition: dict, fields: Mapping[str, str]) -> dict:
    """`definition` with the words posted from the agreement's wording editor."""
    new = copy.deepcopy(definition)
    _set(new, "title", fields, "title")
    _set(new, "summary", fields, "summary")
    for theme in new.get("themes", []):
        _set(theme, "name", fields, f"theme-{theme.get('key')}-name")
        _set(theme, "strapline", fields, f"theme-{theme.get('key')}-strapline")
    for part in PARTS:
        promises = new.get(part, [])
        taken = {promise.get("key") for promise in promises}
        kept = []
        for promise in promises:
            prefix = f"{part}-{promise.get('key')}-"
            if fields.get(prefix + "remove"):
                continue
            _set(promise, "text", fields, prefix + "text")
            kept.append(promise)
        text = fields.get(f"{part}-new-text", "").strip()
        if text:
            kept.append({"key": new_key(text, taken), "text": text})
        new[part] = kept
    for standard in new.get("standards", []):
        prefix = f"standard-{standard.get('key')}-"
        _set(standard, "text", fields, prefix + "text")
        days = fields.get(prefix + "days", "").strip()
        if days:
            # Not a number stays as typed, for the agreement's own check to word the problem.
            # Only plain digits, and few of them: int() refuses other digits ("²") and very long numbers.
            standard["days"] = int(days) if days.isascii() and days.isdigit() and len(days) <= 6 else days
        # The street-form lines the standard concerns, ticked one by one; `…-lines-shown` says the
        # boxes were on the page, so ticking none clears them (an unticked box sends nothing).
        if fields.get(prefix + "lines-shown"):
            ticked = fields.getlist(prefix + "lines") if hasattr(fields, "getlist") else fields.get(prefix + "lines", [])
            ticked = [ticked] if isinstance(ticked, str) else list(ticked)
            if ticked:
                standard["lines"] = list(dict.fromkeys(line.strip() for line in ticked if line.strip()))
            else:
                standard.pop("lines", None)
    return new
