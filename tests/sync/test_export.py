"""The "Export unsent" file format: its schema, and how a bad file is described."""

from __future__ import annotations

import json
import os
import re

import jsonschema
import pytest

from sync import export
from sync.protocol import payload_hash

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = {"id": "7d7a8a3e-5b8e-4f57-9d3c-1f9d5f7a0c11", "form": {"id": "street", "version": 1},
        "site_id": "site-1", "observed_at": "2026-11-20T14:05:00+00:00", "answers": {"litter": {"grade": "B"}}}


def a_file(**changes) -> dict:
    document = {
        "format": "kerbside-unsent",
        "format_version": 1,
        "exported_at": "2026-11-22T10:00:00.000Z",
        "device_id": "device-1",
        "person": {"id": "person-1", "display_name": "Amira"},
        "outbox": [{"mid": "m-1", "seq": 1, "type": "submission.create", "payload_hash": payload_hash(DATA),
                    "data": DATA, "queued_at": 1795000000000}],
        "attention": [{"mutation": {"mid": "m-0", "seq": 0, "type": "submission.create",
                                    "payload_hash": payload_hash(DATA), "data": DATA},
                       "result": {"status": "rejected", "code": "validation_failed", "message": "No."}}],
        "drafts": [{"id": "d-1", "form": {"id": "street", "version": 1}, "kind": "street",
                    "site": {"mode": "list", "site_id": None, "site_name": "", "new_name": ""},
                    "observed_local": "2026-11-22T09:30", "answers": {}, "notes": "", "location": None,
                    "created_at": 1795000000000, "updated_at": 1795000000000}],
        "photos": {},
    }
    document.update(changes)
    return document


def test_the_schema_is_a_valid_json_schema_and_names_one_version_field():
    jsonschema.Draft202012Validator.check_schema(export.schema())
    assert export.schema()["properties"]["format_version"] == {"const": export.FORMAT_VERSION}
    assert "version" not in export.schema()["properties"]


def test_a_good_file_reads_back_as_it_was():
    document = a_file()
    assert export.read_export(json.dumps(document).encode()) == document


def test_an_outbox_entry_is_pushed_without_its_queued_time():
    (entry,) = a_file()["outbox"]
    assert export.pushable(entry) == {key: entry[key] for key in ("mid", "seq", "type", "payload_hash", "data")}


@pytest.mark.parametrize("raw, reason", [
    (b"\xff not utf-8", "not_json"),
    (b"{not json", "not_json"),
    (json.dumps([1, 2]).encode(), "not_export"),
    (json.dumps(a_file(format="something-else")).encode(), "not_export"),
    (json.dumps(a_file(format_version=2)).encode(), "newer_version"),
    # The reference client's old files said "version", which no reader knew.
    (json.dumps({k: v for k, v in a_file(version=1).items() if k != "format_version"}).encode(), "unknown_version"),
])
def test_a_file_that_is_not_this_format_says_why(raw, reason):
    with pytest.raises(export.ExportFileError) as refused:
        export.read_export(raw)
    assert refused.value.reason == reason


def test_a_damaged_file_names_the_first_bad_part():
    document = a_file()
    document["outbox"][0]["payload_hash"] = "md5:abc"
    with pytest.raises(export.ExportFileError) as refused:
        export.check_export(document)
    assert refused.value.reason == "damaged" and refused.value.where == "outbox[0].payload_hash"
    assert "does not match" in refused.value.detail


@pytest.mark.parametrize("change, where", [
    (lambda d: d.pop("person"), "(the file)"),
    (lambda d: d["person"].update(id=None), "person.id"),
    (lambda d: d["photos"].update({"not-a-hash": {"type": "image/png", "base64": ""}}), "photos"),
    (lambda d: d["drafts"][0].pop("answers"), "drafts[0]"),
    (lambda d: d["attention"][0]["result"].pop("status"), "attention[0].result"),
])
def test_a_file_missing_what_readers_need_is_damaged(change, where):
    document = a_file()
    change(document)
    with pytest.raises(export.ExportFileError) as refused:
        export.check_export(document)
    assert (refused.value.reason, refused.value.where) == ("damaged", where)


def test_photo_entries_name_the_image_type_from_the_bytes():
    assert export.photo_entry(b"\xff\xd8\xff\xe0rest")["type"] == "image/jpeg"
    assert export.photo_entry(b"RIFF\x00\x00\x00\x00WEBPVP8 ")["type"] == "image/webp"
    assert export.photo_entry(b"plain text")["type"] == "application/octet-stream"


def test_the_field_app_writes_the_format_name_and_version_the_schema_defines():
    """The field app cannot load the schema at run time, so its two constants are checked here."""
    with open(os.path.join(ROOT, "pwa", "js", "outbox.js"), encoding="utf-8") as handle:
        source = handle.read()
    name = re.search(r'^export const EXPORT_FORMAT = "([^"]+)";$', source, re.M).group(1)
    version = re.search(r"^export const EXPORT_FORMAT_VERSION = (\d+);$", source, re.M).group(1)
    assert name == export.schema()["properties"]["format"]["const"] == export.FORMAT
    assert int(version) == export.schema()["properties"]["format_version"]["const"] == export.FORMAT_VERSION
    assert "format_version: EXPORT_FORMAT_VERSION" in source and "format: EXPORT_FORMAT," in source


def test_the_file_names_every_mutation_type_the_protocol_has():
    """A phone's queued correction (submission.correct) must pass the coordinator's import check."""
    from sync.protocol import MUTATION_TYPES

    assert export.schema()["$defs"]["mutation"]["properties"]["type"]["enum"] == list(MUTATION_TYPES)
    correction = {**DATA, "id": "8e8b9b4f-6c9f-4068-8e4d-2a0e6a8b1d22", "supersedes": DATA["id"]}
    document = a_file(outbox=[{"mid": "m-2", "seq": 2, "type": "submission.correct", "payload_hash": payload_hash(correction),
                               "data": correction, "queued_at": 1795000000000}])
    assert export.check_export(document)["outbox"][0]["type"] == "submission.correct"
