"""The "Export unsent" file: one format, defined by `export_format.schema.json` beside this module.

Both clients write it (the field app's `exportUnsent`, `sync.client.Client.export_unsent`)
and the coordinator's import reads it. This module loads the schema, checks a file against
it and says what is wrong in words a caller can turn into a message. Like the rest of
`sync/`, it knows nothing of Flask or the database.
"""

from __future__ import annotations

import base64
import functools
import json
import os

import jsonschema

FORMAT = "kerbside-unsent"
FORMAT_VERSION = 1
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "export_format.schema.json")
# The five fields a mutation is pushed with; an outbox entry in the file may carry more.
MUTATION_FIELDS = ("mid", "seq", "type", "payload_hash", "data")

_IMAGE_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


class ExportFileError(ValueError):
    """A file that is not a readable export of this format.

    `reason` is one of "not_json", "not_export", "newer_version", "unknown_version" and
    "damaged"; for "damaged", `where` is the path of the first bad part (e.g.
    "outbox[0].payload_hash") and `detail` what the schema expected there.
    """

    def __init__(self, reason: str, where: str = "", detail: str = ""):
        super().__init__(f"{reason}: {where} {detail}".strip())
        self.reason = reason
        self.where = where
        self.detail = detail


@functools.cache
def schema() -> dict:
    """The format's JSON Schema document."""
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return json.load(handle)


@functools.cache
def _validator():
    document = schema()
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def _path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def check_export(document) -> dict:
    """`document` itself when it is an export file of this format; otherwise ExportFileError."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExportFileError("not_export")
    version = document.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ExportFileError("newer_version")
    if version != FORMAT_VERSION:
        # Written before the format was one (the reference client once wrote "version").
        raise ExportFileError("unknown_version")
    # The error nearest the root is the one a person can act on.
    errors = _validator().iter_errors(document)
    error = min(errors, key=lambda e: (len(e.absolute_path), str(list(e.absolute_path))), default=None)
    if error is not None:
        raise ExportFileError("damaged", _path(error.absolute_path) or "(the file)", error.message[:200])
    return document


def read_export(raw: bytes) -> dict:
    """Parse and check an export file's bytes; ExportFileError when it cannot be used."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ExportFileError("not_json") from None
    return check_export(document)


def pushable(entry: dict) -> dict:
    """An outbox entry of the file as the protocol pushes it (the mutation's five fields)."""
    return {key: entry[key] for key in MUTATION_FIELDS}


def image_type(data: bytes) -> str:
    """The image type of photo bytes, as a file's `photos` entry names it."""
    for signature, content_type in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def photo_entry(data: bytes) -> dict:
    """A `photos` entry for the bytes of one photo."""
    return {"type": image_type(data), "base64": base64.b64encode(data).decode("ascii")}


def new_export(*, exported_at: str, device_id: str | None, person: dict, outbox: list, attention: list,
               drafts: list, photos: dict) -> dict:
    """An export document, checked against the schema before anyone is given it."""
    return check_export({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": exported_at,
        "device_id": device_id,
        "person": person,
        "outbox": outbox,
        "attention": attention,
        "drafts": drafts,
        "photos": photos,
    })
