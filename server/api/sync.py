"""`/api/sync/v1`: enrolment, the sync round trip and blobs (sync protocol v1)."""

from __future__ import annotations

import hashlib
import io
import re
import time

from flask import current_app, g, jsonify, make_response, request
from flask_babel import gettext as _
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server import audit, blobs, jsonio, metrics, operations, people, photo_location, pull, push, schemas, throttle
from server.auth import accepts_signed_out_devices, allow
from server.errors import ApiError
from server.extensions import db
from server.models import Area, Blob, ServerState, utcnow
from sync.validation import readable_text
from sync.protocol import (
    MAX_BLOB_BYTES,
    MAX_MUTATIONS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    PROTOCOL_VERSION,
    SUPPORTED_PROTOCOLS,
)

blp = Blueprint("sync", __name__, url_prefix="/api/sync/v1", description="Sync protocol v1 for field devices.")

# How a device proves who it is: the token enrolment gave it (see `security_schemes`).
DEVICE = [{"deviceToken": []}]
ERROR = schemas.ErrorEnvelopeSchema
# Answers any operation can give before its own code runs: an address holding characters no
# one can type (400), a body over the app's limit (413), a database too busy to answer (503).
UNREADABLE = "An address or query holding control characters, or a body that is not a JSON object."
BUSY = "The server, its database, its photo store or the shared store of its limits (Redis) is busy or out of reach; see Retry-After."
# Every operation a device makes counts against its one rate, in the store all hosts share.
TOO_MANY = "Too many requests from this device, counted across every server; see Retry-After."


def security_schemes(spec):
    """Register the bearer scheme devices use; called once the API extension is bound."""
    spec.components.security_scheme("deviceToken", {
        "type": "http", "scheme": "bearer",
        "description": "The device token from enrolment (`kbd_…`), sent as `Authorization: Bearer <token>`.",
    })
blp.ARGUMENTS_PARSER = jsonio.CachedJSONParser()

SHA256 = re.compile(r"^[0-9a-f]{64}$")
RETRY_AFTER_CONFLICT_S = 1


def stamp(body: dict, epoch: str | None = None) -> dict:
    """Every sync response carries the protocol, the server epoch and the server's clock."""
    return {
        "protocol": PROTOCOL_VERSION,
        "server_epoch": epoch or operations.server_state().epoch,
        "server_time": utcnow().isoformat(),
        **body,
    }


@blp.before_request
def check_envelope():
    """Size and protocol come before anything else is read."""
    if request.method != "POST":
        return None
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        raise ApiError(413, "too_large", _("This is too much to send at once. Your phone will send it in smaller parts by itself."),
                       extra={"max_bytes": MAX_REQUEST_BYTES, "max_mutations": MAX_MUTATIONS_PER_REQUEST})
    request.max_content_length = MAX_REQUEST_BYTES
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", _("Kerbside could not read what your phone sent. Update the app, then try again."))
    if body.get("protocol") not in SUPPORTED_PROTOCOLS:
        raise ApiError(426, "protocol_unsupported",
                       _("This version of the app cannot talk to Kerbside. Update the app. Nothing on your phone is lost."),
                       extra={"supported": list(SUPPORTED_PROTOCOLS)})
    mutations = body.get("mutations")
    if isinstance(mutations, list) and len(mutations) > MAX_MUTATIONS_PER_REQUEST:
        raise ApiError(413, "too_many_mutations", _("These are too many changes to send at once. Your phone will send them in smaller parts by itself."),
                       extra={"max_bytes": MAX_REQUEST_BYTES, "max_mutations": MAX_MUTATIONS_PER_REQUEST})
    return None


@blp.after_request
def stamp_errors(response):
    """Error envelopes on sync paths carry the epoch and clock too."""
    if response.status_code >= 400 and response.is_json:
        body = response.get_json()
        if isinstance(body, dict) and "server_epoch" not in body:
            try:
                response.set_data(jsonify(stamp(body)).get_data())
            except Exception:  # a broken database must not hide the original error
                db.session.rollback()
    return response


@blp.route("/enrol", methods=["POST"])
@blp.doc(security=[])
@blp.arguments(schemas.EnrolRequestSchema)
@blp.response(201, schemas.EnrolResponseSchema)
@blp.alt_response(400, schema=ERROR, description="Wrong, used-up or expired invite code, wrong re-join code, a "
                                                 "deactivated volunteer, unreadable text, or a body that is not a "
                                                 "JSON object.")
@blp.alt_response(413, schema=ERROR, description="More than 2 MB.")
@blp.alt_response(426, schema=ERROR, description="Protocol not supported.")
@blp.alt_response(429, schema=ERROR, description="Too many enrolments, or wrong codes, from this address, or too "
                                                 "many wrong tries of one person's re-join code; see Retry-After.")
@blp.alt_response(503, schema=ERROR, description=BUSY)
@allow("public")
def enrol(body):
    """Turn an invite code, or a volunteer's personal re-join code, into a device token (shown once).

    A re-join code (16 characters; an invite code has 12) adds a device for its person: how the
    next volunteer takes over a shared phone.
    """
    # Counted in the store every worker shares (server/throttle.py), per client address.
    address = request.remote_addr or ""
    attempts = (current_app.config["ENROL_LIMIT_ADDRESS"], "enrol-address", address)
    failures = (current_app.config["ENROL_FAILURE_LIMIT_ADDRESS"], "enrol-failed-address", address)
    wait = throttle.hit(*attempts) or throttle.wait(*failures)
    if wait:
        raise ApiError(429, "too_many_requests",
                       _("Too many tries to join from this network. Wait %(wait)s, then try again.",
                         wait=throttle.describe_wait(wait)),
                       headers={"Retry-After": wait})
    device_name = body.get("device_name", "")
    if not readable_text(device_name) or not readable_text(body["code"]):
        field = "device_name" if not readable_text(device_name) else "code"
        raise ApiError(400, "text_unreadable",
                       _("The phone's name or the code has a hidden or broken character, so Kerbside cannot save it. "
                         "Type them again."),
                       {field: [_("Has a hidden or broken character.")]})
    display_name = body.get("display_name", "")
    if not readable_text(display_name):
        raise ApiError(400, "text_unreadable", _("Your name has a hidden or broken character, so Kerbside cannot save "
                                                 "it. Type it again."),
                       {"display_name": [_("Has a hidden or broken character.")]})
    rejoin = people.is_rejoin_code(body["code"])
    if rejoin:
        # A personal code is also counted against its person, wherever the tries come from.
        handle, _secret = people.split_rejoin_code(body["code"])
        person_failures = (current_app.config["REJOIN_FAILURE_LIMIT_PERSON"], "rejoin-failed-person", handle)
        wait = throttle.wait(*person_failures)
        if wait:
            raise ApiError(429, "too_many_requests",
                           _("This re-join code was typed wrongly too many times. Wait %(wait)s, then try again.",
                             wait=throttle.describe_wait(wait)),
                           headers={"Retry-After": wait})
    try:
        device, token = operations.enrol_device(body["code"], device_name, display_name=display_name,
                                                user_agent=request.headers.get("User-Agent", ""))
    except operations.OperationError as exc:
        db.session.rollback()
        throttle.hit(*failures)
        if rejoin:
            throttle.hit(*person_failures)
        raise ApiError(400, exc.code, exc.message, {"code": [exc.message]}) from None
    person = device.person
    areas, _roles = operations.device_scope(person)
    area_rows = [db.session.get(Area, area_id).to_sync() for area_id in areas]
    result = {
        "device_id": device.id,
        "device_name": device.name,
        "token": token,
        "person": {
            "id": person.id,
            # No placeholder on the phone: it greets a volunteer who gave no name with just "Hello".
            "display_name": person.display_name if person.name_given else "",
            "roles": [{"role": r.role, "area_id": r.area_id} for r in person.roles],
        },
        "areas": area_rows,
    }
    # A device signing in for the first time; the entry names the device and person by id only.
    audit.record("device.enrol", record_type="device", record_id=device.id, area_id=areas[0] if len(areas) == 1 else None,
                 person_id=person.id, device_id=device.id, details={"by": "rejoin_code" if rejoin else "invite"})
    db.session.commit()
    return stamp(result)


@blp.route("", methods=["POST"])
@blp.doc(security=DEVICE)
@blp.arguments(schemas.SyncRequestSchema)
@blp.response(200, schemas.SyncResponseSchema)
@blp.alt_response(400, schema=ERROR, description=UNREADABLE)
@blp.alt_response(401, schema=ERROR, description="Token missing, unknown or revoked.")
@blp.alt_response(413, schema=ERROR, description="More than 200 mutations or 2 MB.")
@blp.alt_response(426, schema=ERROR, description="Protocol not supported.")
@blp.alt_response(429, schema=ERROR, description=TOO_MANY)
@blp.alt_response(503, schema=ERROR, description=BUSY)
@allow("device")
def sync(body):
    """Push the device's outbox, then pull the changes it may see, in one round trip."""
    _limit_device()
    # Every key the round trip answers with is declared in SyncResponseSchema, so dumping
    # through it would copy the page unchanged; for a push of 100 visits with its pulled
    # changes that copy costs more than the SQL. The schema still documents the response.
    epoch, answer = _sync_round_trip(body)
    return jsonify(stamp(answer, epoch))


def _sync_round_trip(body: dict) -> tuple[str, dict]:
    """The push's results and the pulled page, and the epoch the page's cursor belongs to."""
    device, person = g.device, g.person
    person_id = person.id  # read now: the push's commit expires the loaded records
    area_ids, roles = operations.device_scope(person)
    operations.note_sync(device, utcnow())
    metrics.oldest_unsent_reported(body.get("oldest_unsent_age_s"))
    started = time.perf_counter()
    try:
        results = push.push(device, person, body["mutations"], set(area_ids), operations.roles_by_area(person))
    except IntegrityError:
        # Two pushes raced on one record (say, one visit id under two mids): nothing was
        # stored; the device sends again and the second attempt sees the first.
        db.session.rollback()
        raise ApiError(503, "retry", _("Kerbside was saving the same thing from somewhere else at that moment. Your phone will try again by itself."),
                       headers={"Retry-After": RETRY_AFTER_CONFLICT_S}) from None
    metrics.PUSH_SECONDS.observe(time.perf_counter() - started)
    metrics.items_answered(body["mutations"], results)
    started = time.perf_counter()
    epoch, kept_from = db.session.execute(
        select(ServerState.epoch, ServerState.changes_kept_from).where(ServerState.id == 1)
    ).one()
    page = pull.pull(
        cursor_text=body.get("cursor"), limit=body["limit"], epoch=epoch,
        kept_from=kept_from, person_id=person_id, area_ids=area_ids, roles=roles,
    )
    db.session.rollback()  # the pull only read
    metrics.PULL_SECONDS.observe(time.perf_counter() - started)
    return epoch, {"results": results, **page}


@blp.route("/device/sign-out", methods=["POST"])
@blp.doc(security=DEVICE)
@blp.arguments(schemas.DeviceSignOutSchema)
@blp.response(200, schemas.DeviceSignedOutSchema)
@blp.alt_response(400, schema=ERROR, description=UNREADABLE)
@blp.alt_response(401, schema=ERROR, description="Token missing or unknown.")
@blp.alt_response(413, schema=ERROR, description="More than 2 MB.")
@blp.alt_response(426, schema=ERROR, description="Protocol not supported.")
@blp.alt_response(429, schema=ERROR, description=TOO_MANY)
@blp.alt_response(503, schema=ERROR, description=BUSY)
@allow("device")
@accepts_signed_out_devices
def device_sign_out(body):
    """The volunteer signed out on the phone: its token stops working. Idempotent.

    A phone that was already signed out (by itself, or by a coordinator) is answered 200 too,
    so a retry after a lost answer is not an error.
    """
    _limit_device()
    device = g.device
    if people.revoke_device(device):
        audit.record("device.signed_out", record_type="device", record_id=device.id, person_id=device.person_id,
                     device_id=device.id)
        db.session.commit()
    return stamp({"device_id": device.id, "signed_out_at": device.revoked_at.isoformat()})


# A photo is named by the SHA-256 of its bytes; PUT carries the bytes, HEAD asks whether they are here.
BLOB_NAME = {"in": "path", "name": "sha256", "required": True, "description": "Lower-case SHA-256 of the bytes.",
             "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}
BLOB_BODY = {"required": True, "description": "The photo's bytes: a JPEG, PNG or WebP image of at most 8 MB.",
             "content": {media: {"schema": {"type": "string", "format": "binary"}}
                         for media in ("image/jpeg", "image/png", "image/webp", "application/octet-stream")}}


@blp.route("/blobs/<sha256>", methods=["PUT"], parameters=[BLOB_NAME])
@blp.doc(security=DEVICE, requestBody=BLOB_BODY)
@blp.response(201, schemas.BlobStoredSchema, description="Stored.")
@blp.alt_response(200, schema=schemas.BlobStoredSchema, description="It was already here.")
@blp.alt_response(400, schema=ERROR, description="The bytes do not match the name, or the address is unreadable.")
@blp.alt_response(401, schema=ERROR, description="Token missing, unknown or revoked.")
@blp.alt_response(403, schema=ERROR,
                  description="`photo_quota_exceeded`: the device has sent its quota of photos for the period.")
@blp.alt_response(404, schema=ERROR, description="Not a photo's name.")
@blp.alt_response(413, schema=ERROR, description="More than 8 MB.")
@blp.alt_response(415, schema=ERROR, description="Not a JPEG, PNG or WebP image, or its location cannot be taken out.")
@blp.alt_response(429, schema=ERROR, description=TOO_MANY + " Or too many new photos a minute.")
@blp.alt_response(503, schema=ERROR, description=BUSY)
@allow("device")
def blob(sha256):
    """Upload a photo by the SHA-256 of its bytes (idempotent)."""
    _limit_device()  # before the name is looked up or 8 MB are read
    exists = _blob_exists(sha256)
    # A row whose bytes are gone from the store is mended by this upload, not counted again.
    counted = exists or db.session.get(Blob, sha256) is not None
    if request.content_length is not None and request.content_length > MAX_BLOB_BYTES:
        raise ApiError(413, "too_large", _("This photo is bigger than 8 MB, so Kerbside cannot take it. Take the photo again in the Kerbside app."))
    if not counted and request.content_length is not None:
        _check_photo_limits(request.content_length)  # before 8 MB are read for nothing
    request.max_content_length = MAX_BLOB_BYTES
    data, actual = _read_photo()
    if actual != sha256:
        raise ApiError(400, "hash_mismatch", _("The photo was damaged on the way. Your phone will send it again by itself."),
                       {"sha256": [_("The photo was damaged on the way.")]})
    content_type = blobs.image_type(data)
    if content_type is None:
        raise ApiError(415, "not_an_image", _("This file is not a photo Kerbside can use. Take the photo again in the Kerbside app."),
                       {"body": [_("Not a JPEG, PNG or WebP photo.")]})
    status = 200 if exists else 201
    if not exists:
        if not counted and request.content_length is None:  # a chunked body: its size is known only now
            _check_photo_limits(len(data))
        try:
            # Only now, its hash checked, does the photo reach the store and get its row.
            kept = blobs.keep(sha256, data, content_type, g.device.id, keep_location=blobs.keeps_location(g.person.id))
        except photo_location.LocationNotRemovable:
            raise ApiError(415, "location_not_removable",
                           _("Kerbside could not remove the place the photo was taken from it, so it did not keep the photo. "
                             "Take the photo again in the Kerbside app."),
                           {"body": [_("Holds a location that cannot be removed.")]}) from None
        db.session.commit()
        if kept:
            metrics.blob_stored(db.session.get(Blob, sha256).size)  # the bytes stored (location taken out)
    return make_response(jsonify(stamp({"sha256": sha256, "size": len(data), "content_type": content_type})), status)


def _read_photo() -> tuple[bytes, str]:
    """The request body and its SHA-256, hashed chunk by chunk as it arrives.

    The body is held once, in memory: a photo is at most 8 MB (the stream stops a longer
    one with 413), and taking its location out needs its bytes whole. BytesIO hands its
    buffer over without a copy, so no second copy is made on the way to the store.
    """
    digest, body = hashlib.sha256(), io.BytesIO()
    stream = request.stream
    while chunk := stream.read(blobs.CHUNK_BYTES):
        digest.update(chunk)
        body.write(chunk)
    return body.getvalue(), digest.hexdigest()


@blp.route("/blobs/<sha256>", methods=["HEAD"], parameters=[BLOB_NAME], endpoint="blob_head")
@blp.doc(security=DEVICE, responses={
    "200": {"description": "The photo is here: no need to send it."},
    "400": {"description": "The address is unreadable (no body: HEAD answers carry none)."},
    "401": {"description": "Token missing, unknown or revoked (no body)."},
    "404": {"description": "Not here yet, or not a photo's name (no body)."},
    "429": {"description": "Too many requests from this device; see Retry-After (no body)."},
    "503": {"description": "The server, its database, its photo store or its limits' Redis is busy or out of reach; see Retry-After (no body)."},
})
@allow("device")
def blob_head(sha256):
    """Whether the server already has a photo, so the device need not send it again."""
    _limit_device()
    return make_response("", 200 if _blob_exists(sha256) else 404)


def _blob_exists(sha256: str) -> bool:
    """Whether the photo is stored; a name that is not a SHA-256 is answered 404."""
    if not SHA256.match(sha256):
        raise ApiError(404, "not_found", _("There is no photo at this address. Check the address."))
    # The row alone is not enough: the bytes must really be in the store, or the device sends them again.
    return blobs.stored(sha256)


def _check_photo_limits(size: int):
    """429 with Retry-After past the device's photo rate; 403 `photo_quota_exceeded` past its quota."""
    try:
        blobs.check_upload_allowed(g.device.id, size)
    except blobs.PhotoRefused as refused:
        db.session.rollback()
        if refused.retry_after is not None:
            raise ApiError(429, refused.code, refused.message, headers={"Retry-After": refused.retry_after}) from None
        raise ApiError(403, refused.code, refused.message) from None


# -- overload helpers --------------------------------------------------------------------


def _limit_device():
    """429 with Retry-After once the device has made its minute's sync requests, on any host or worker."""
    wait = throttle.hit_device(current_app.config["SYNC_RATE_PER_MINUTE"], g.device.id)
    if wait:
        raise ApiError(429, "too_many_requests", _("Your phone sent too much at once. It will wait, then try again by itself."),
                       headers={"Retry-After": wait})
