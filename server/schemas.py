"""marshmallow schemas: every input is loaded through one, every answer dumped by one."""

from __future__ import annotations

import math
import re

from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from server import schema_messages
from server.schema_messages import N_, Message
from sync.protocol import (
    DEFAULT_PULL_LIMIT,
    MAX_MUTATIONS_PER_REQUEST,
    MAX_PULL_LIMIT,
    MAX_SAFE_INTEGER,
    MUTATION_TYPES,
    SUPPORTED_PROTOCOLS,
)
from sync.validation import parse_datetime

# Before any field below is built: each copies its class's messages when it is made.
schema_messages.install()

UUID_LIKE = re.compile(r"^[0-9A-Za-z_-]{8,64}$")
# A visit's own id is kept in a 36-character column: a UUID, as every client makes it.
VISIT_ID = re.compile(r"^[0-9A-Za-z_-]{8,36}$")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class IdString(fields.String):
    def __init__(self, pattern=UUID_LIKE, **kwargs):
        super().__init__(validate=validate.Regexp(pattern, error=Message(N_("Use a UUID (letters, digits and dashes)."))), **kwargs)


class ClampedInteger(fields.Integer):
    """A whole number forced into its range, never refused: anything else means the default."""

    def __init__(self, *, low: int, high: int, default: int, **kwargs):
        metadata = {"minimum": low, "maximum": high, **kwargs.pop("metadata", {})}
        super().__init__(load_default=default, metadata=metadata, **kwargs)
        self.low, self.high, self.default = low, high, default

    def deserialize(self, value, attr=None, data=None, **kwargs):
        # Not Field.deserialize: it would refuse null and wrong types before any clamping.
        if type(value) is float and math.isfinite(value):
            value = int(value)
        if type(value) is not int:
            return self.default
        return min(max(value, self.low), self.high)


class AwareDateTime(fields.String):
    """ISO 8601 text that must carry a UTC offset; kept as the volunteer wrote it."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if parse_datetime(text) is None:
            raise ValidationError(str(_l("Give a date and time with its time zone, like 2026-11-20T14:05:00+00:00, "
                                         "between the years 2000 and 2100.")))
        return text


# -- the sync envelope -------------------------------------------------------------------


class MutationSchema(Strict):
    mid = IdString(required=True, metadata={"description": "Client-made UUID of this mutation."})
    seq = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_SAFE_INTEGER),
                         metadata={"description": "The device's own counter."})
    type = fields.String(required=True, validate=validate.OneOf(MUTATION_TYPES))
    payload_hash = fields.String(required=True, validate=validate.Regexp(r"^sha256:[0-9a-f]{64}$"))
    data = fields.Dict(required=True, metadata={"description": "The mutation's data; see the record shapes."})


class SyncRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a newer client may send hints an older server ignores

    # An unsupported protocol is answered 426 before this schema is used; the enum documents it.
    protocol = fields.Integer(required=True, validate=validate.OneOf(SUPPORTED_PROTOCOLS))
    # Whatever a device sends here, it gets an answer: a cursor the server did not issue
    # means `reset`, and a limit out of range is brought into it, so no device stalls itself.
    cursor = fields.Raw(load_default=None, allow_none=True,
                        metadata={"type": "string", "description": "Opaque; from the last response, or null."})
    limit = ClampedInteger(low=1, high=MAX_PULL_LIMIT, default=DEFAULT_PULL_LIMIT,
                           metadata={"description": "Changes wanted at most; brought into 1..1000."})
    # Items are checked one by one (each stands alone), so the envelope only takes them as objects.
    # The document shows each item as a Mutation, which is what a device should send; the
    # server takes any JSON there, so that an item it cannot read is refused alone.
    mutations = fields.List(fields.Raw(allow_none=True, metadata={"allOf": [{"$ref": "#/components/schemas/Mutation"}]}),
                            load_default=list, validate=validate.Length(max=MAX_MUTATIONS_PER_REQUEST))
    # A hint for the server's metrics, never a reason to refuse the sync: a value that is not a
    # plausible number of seconds is ignored (server/metrics.py).
    oldest_unsent_age_s = fields.Raw(load_default=None, allow_none=True, metadata={
        "type": "number", "minimum": 0, "nullable": True,
        "description": "Seconds the oldest item still in the device's outbox has waited (before this push); "
                       "null or absent when the outbox is empty. Optional; used only for the server's metrics."})


class ResultSchema(Schema):
    mid = fields.String(allow_none=True)
    status = fields.String(required=True)
    change_seq = fields.Integer(allow_none=True)
    code = fields.String()
    message = fields.String()
    errors = fields.Dict()
    entity_version = fields.Integer()
    server_value = fields.Dict()
    retry_after_s = fields.Integer()
    missing = fields.List(fields.String())
    first = fields.Dict()
    # An applied `site.update` by a street rep: held for a coordinator, not yet on the site.
    pending_review = fields.Boolean()


class ChangeSchema(Schema):
    collection = fields.String(required=True)
    id = fields.String(required=True)
    op = fields.String(required=True)
    seq = fields.Integer(required=True)
    data = fields.Dict(allow_none=True)


class SyncResponseSchema(Schema):
    protocol = fields.Integer(required=True)
    server_epoch = fields.String(required=True)
    server_time = fields.String(required=True)
    results = fields.List(fields.Nested(ResultSchema))
    changes = fields.List(fields.Nested(ChangeSchema))
    cursor = fields.String(required=True)
    has_more = fields.Boolean(required=True)
    reset = fields.Boolean(required=True)


# -- mutation data ------------------------------------------------------------------------


class FormRefSchema(Strict):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    version = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SAFE_INTEGER))


class NewSiteSchema(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-90, max=90))
    lng = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-180, max=180))


class LocationSchema(Strict):
    lat = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    lng = fields.Float(required=True, validate=validate.Range(min=-180, max=180))
    accuracy_m = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0))


class SubmissionCreateSchema(Strict):
    id = IdString(pattern=VISIT_ID, required=True)
    form = fields.Nested(FormRefSchema, required=True)
    site_id = fields.String(load_default=None, allow_none=True)
    new_site = fields.Nested(NewSiteSchema, load_default=None, allow_none=True)
    area_id = fields.String(load_default=None, allow_none=True)
    observed_at = AwareDateTime(required=True)
    answers = fields.Dict(required=True, keys=fields.String(), values=fields.Raw())
    notes = fields.String(load_default="", validate=validate.Length(max=4000))
    location = fields.Nested(LocationSchema, load_default=None, allow_none=True)

    @validates_schema
    def one_site(self, data, **kwargs):
        if bool(data.get("site_id")) == bool(data.get("new_site")):
            raise ValidationError(str(_l("Give either site_id or new_site, not both.")) if data.get("site_id")
                                  else str(_l("Choose a site, or name a new one.")), "site_id")


class SubmissionCorrectSchema(SubmissionCreateSchema):
    """A correction of a flagged visit: a whole new visit, and the id of the visit it supersedes."""

    supersedes = IdString(pattern=VISIT_ID, required=True,
                          metadata={"description": "The id of the volunteer's flagged visit this one replaces."})


class SitePatchSchema(Strict):
    name = fields.String(validate=validate.Length(min=1, max=200))
    lat = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90))
    lng = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180))
    notes = fields.String(validate=validate.Length(max=4000))


class ActionPatchSchema(Strict):
    status = fields.String(validate=validate.OneOf(("open", "acknowledged", "in_progress", "done", "not_doing")))
    reason = fields.String(allow_none=True, validate=validate.Length(max=4000))
    public_note = fields.String(validate=validate.Length(max=4000))
    assigned_to = fields.String(allow_none=True, validate=validate.Length(max=200))


class _UpdateSchema(Strict):
    id = fields.String(required=True)
    base_version = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SAFE_INTEGER))

    @validates_schema
    def patch_not_empty(self, data, **kwargs):
        if not data.get("patch"):
            raise ValidationError(str(_l("Say what to change.")), "patch")


class SiteUpdateSchema(_UpdateSchema):
    patch = fields.Nested(SitePatchSchema, required=True)


class ActionUpdateSchema(_UpdateSchema):
    patch = fields.Nested(ActionPatchSchema, required=True)


# -- enrolment -------------------------------------------------------------------------------


class EnrolRequestSchema(Strict):
    protocol = fields.Integer(required=True, validate=validate.OneOf(SUPPORTED_PROTOCOLS))
    code = fields.String(required=True, validate=validate.Length(min=4, max=64))
    device_name = fields.String(load_default="", validate=validate.Length(max=200))
    display_name = fields.String(load_default="", validate=validate.Length(max=200), metadata={
        "description": "The volunteer's name, used only when the invite gave none."})


class DeviceSignOutSchema(Strict):
    protocol = fields.Integer(required=True, validate=validate.OneOf(SUPPORTED_PROTOCOLS))


class DeviceSignedOutSchema(Schema):
    protocol = fields.Integer()
    server_epoch = fields.String()
    server_time = fields.String()
    device_id = fields.String()
    signed_out_at = fields.String(metadata={"description": "When the device was signed out (the first time, on a retry)."})


class EnrolPersonSchema(Schema):
    id = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.Dict())


class EnrolResponseSchema(Schema):
    protocol = fields.Integer()
    server_epoch = fields.String()
    server_time = fields.String()
    device_id = fields.String()
    device_name = fields.String(metadata={"description": "The name given, or one the server made: \"Android phone, joined 3 Dec\"."})
    token = fields.String(metadata={"description": "Shown once; store it, it cannot be shown again."})
    person = fields.Nested(EnrolPersonSchema)
    areas = fields.List(fields.Dict())


class ErrorEnvelopeSchema(Schema):
    """Every error on an /api/ path (server/errors.py): a machine code, a message, field errors.

    On sync paths it also carries the protocol, epoch and clock; some refusals say more
    (413: the limits to split by; 426: the protocols this server speaks).
    """

    code = fields.String(required=True, metadata={"description": "A machine code such as `token_revoked`."})
    message = fields.String(required=True, metadata={"description": "Plain words for the person holding the device."})
    errors = fields.Dict(required=True, keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "Field name to its problems; empty when none."})
    protocol = fields.Integer()
    server_epoch = fields.String()
    server_time = fields.String()
    max_bytes = fields.Integer(metadata={"description": "413: the most one request may carry."})
    max_mutations = fields.Integer(metadata={"description": "413: the most mutations one request may carry."})
    supported = fields.List(fields.Integer(), metadata={"description": "426: the protocols this server speaks."})


class BlobStoredSchema(Schema):
    protocol = fields.Integer(required=True)
    server_epoch = fields.String(required=True)
    server_time = fields.String(required=True)
    sha256 = fields.String(required=True)
    size = fields.Integer(required=True)
    content_type = fields.String(required=True)
