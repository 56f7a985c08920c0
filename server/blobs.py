"""Photo storage behind one small interface: a local folder (the embedded default) or S3-compatible
object storage, chosen by KERBSIDE_BLOB_URL; plus the checks every upload passes before it is kept."""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import BinaryIO, Protocol

from flask import current_app

from server import photo_location

IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def image_type(data: bytes) -> str | None:
    """The image type the bytes really are (never what the client claims), or None."""
    for signature, content_type in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


CHUNK_BYTES = 64 * 1024


class BlobMissing(FileNotFoundError):
    """No bytes are stored under this name (a FileNotFoundError, so callers of either store catch one thing)."""


class BlobCorrupt(ValueError):
    """The bytes offered do not hash to the name they were offered under; nothing was stored."""


class BlobStoreUnavailable(Exception):
    """The store cannot be reached or refuses us (a server-side fault: answered 503, never the client's)."""


class BlobUrlInvalid(ValueError):
    """KERBSIDE_BLOB_URL cannot be used; raised when the app is made, so a bad setting stops the start."""


class BlobReader:
    """A stored blob's bytes as an iterator of chunks, its size known up front; closes what it opened.

    Werkzeug closes a response's iterable when the answer is sent (or abandoned), so a
    streamed photo never leaves a file or an HTTP connection open.
    """

    def __init__(self, size: int, chunks: Iterator[bytes], close: Callable[[], None]):
        self.size, self._chunks, self._close = size, chunks, close

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self._close()

    def read_all(self) -> bytes:
        try:
            return b"".join(self)
        finally:
            self.close()


Source = bytes | BinaryIO


class BlobStore(Protocol):
    """Bytes named by the SHA-256 of their content. `put` refuses bytes that do not match their name."""

    def exists(self, sha256: str) -> bool: ...
    def exists_many(self, names: Iterable[str]) -> set[str]: ...
    def put(self, sha256: str, data: Source) -> None: ...
    def get(self, sha256: str) -> bytes: ...
    def stream(self, sha256: str, chunk_size: int = CHUNK_BYTES) -> BlobReader: ...
    def delete(self, sha256: str) -> None: ...
    def ping(self) -> None: ...


def _chunks_of(data: Source, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Bytes or a binary file, a chunk at a time: a file is never read whole."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), chunk_size):
            yield view[start:start + chunk_size]
        return
    while chunk := data.read(chunk_size):
        yield chunk


def _hash_of_file(handle: BinaryIO) -> str:
    """The SHA-256 of a seekable file from where it stands, read in chunks; the file is put back there."""
    start = handle.tell()
    digest = hashlib.sha256()
    for chunk in _chunks_of(handle):
        digest.update(chunk)
    handle.seek(start)
    return digest.hexdigest()


class LocalBlobStore:
    """Files named by hash under one folder, written atomically (temp file, then rename)."""

    def __init__(self, root: str):
        self.root = root

    def __repr__(self) -> str:
        return f"LocalBlobStore({self.root!r})"

    def path(self, sha256: str) -> str:
        return os.path.join(self.root, sha256[:2], sha256[2:4], sha256)

    def exists(self, sha256: str) -> bool:
        return os.path.exists(self.path(sha256))

    def exists_many(self, names: Iterable[str]) -> set[str]:
        return {name for name in names if self.exists(name)}

    def put(self, sha256: str, data: Source) -> None:
        """Copy in chunks to a temporary file, hashing as it goes; only matching bytes get the name."""
        target = self.path(sha256)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".upload-")
        except OSError as error:
            raise BlobStoreUnavailable(f"blob folder cannot be written: {error.strerror}") from None
        try:
            digest = hashlib.sha256()
            with os.fdopen(handle, "wb") as out:
                for chunk in _chunks_of(data):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise BlobCorrupt(sha256)
            os.replace(temporary, target)
        except BaseException as error:
            if os.path.exists(temporary):
                os.unlink(temporary)
            if isinstance(error, OSError):  # a full or read-only disk: the server's fault, not the client's
                raise BlobStoreUnavailable(f"blob folder cannot be written: {error.strerror}") from None
            raise

    def get(self, sha256: str) -> bytes:
        return self.stream(sha256).read_all()

    def stream(self, sha256: str, chunk_size: int = CHUNK_BYTES) -> BlobReader:
        # Opened now, not at the first chunk: a missing photo is a 404 before any answer starts.
        try:
            handle = open(self.path(sha256), "rb")  # noqa: SIM115 - the reader closes it
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        except OSError as error:
            raise BlobStoreUnavailable(f"blob folder cannot be read: {error.strerror}") from None
        size = os.fstat(handle.fileno()).st_size
        return BlobReader(size, _chunks_of(handle, chunk_size), handle.close)

    def delete(self, sha256: str) -> None:
        """Remove the bytes; a name that is not here is no error (retention may run twice)."""
        try:
            os.unlink(self.path(sha256))
        except FileNotFoundError:
            pass

    def ping(self) -> None:
        """Raise BlobStoreUnavailable unless the folder is there (or can be made) and writable."""
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as error:
            raise BlobStoreUnavailable(f"blob folder cannot be made: {error.strerror}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BlobStoreUnavailable("blob folder is not writable")


class S3BlobStore:
    """Objects named `<prefix><sha256>` in one bucket of S3 or an S3-compatible store (MinIO, Ceph, R2...).

    Credentials and region come the usual AWS ways (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION, a profile or an instance role): boto3 finds them, Kerbside never reads
    or logs them. `endpoint_url` names a store that is not AWS.
    """

    # HEADs asked at once when a push checks its visits' photos: a push naming 40 photos
    # waits for a few round trips, not 40.
    PARALLEL_CHECKS = 8

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, client=None):
        self.bucket, self.prefix, self.endpoint_url = bucket, prefix, endpoint_url
        # Short connection waits and few retries: a device's request should fail over to 503 and
        # come back, not hang its worker while the store is down.
        self.client = client or self._client(connect_timeout=5, read_timeout=30, attempts=3)
        self._ping_client = client

    def _client(self, *, connect_timeout: float, read_timeout: float, attempts: int):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, config=Config(
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            retries={"total_max_attempts": attempts, "mode": "standard"}))

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix})"

    def key(self, sha256: str) -> str:
        return self.prefix + sha256

    def _fault(self, error: Exception) -> BlobStoreUnavailable:
        # The error's class and the store's code say what went wrong; no request details, no keys.
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        return BlobStoreUnavailable(f"object store s3://{self.bucket}: {type(error).__name__} {code}".strip())

    @staticmethod
    def _is_missing(error: Exception) -> bool:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as error:
            if self._is_missing(error):
                return False
            raise self._fault(error) from None
        except BotoCoreError as error:
            raise self._fault(error) from None
        return True

    def exists_many(self, names: Iterable[str]) -> set[str]:
        from concurrent.futures import ThreadPoolExecutor

        names = list(names)
        if len(names) <= 1:
            return {name for name in names if self.exists(name)}
        # boto3 clients are safe to share between threads.
        with ThreadPoolExecutor(max_workers=min(self.PARALLEL_CHECKS, len(names))) as pool:
            found = list(pool.map(self.exists, names))
        return {name for name, here in zip(names, found) if here}

    def put(self, sha256: str, data: Source) -> None:
        """One PutObject, after checking the bytes hash to their name; nothing is sent that does not.

        The SHA-256 goes with it as the object's checksum, so S3 (and the stores that follow it
        there) checks the bytes it received too. A file is hashed first (read in chunks, then
        rewound) and streamed from disk by boto3; bytes are sent from where they lie. Photos are
        at most 8 MB: one PutObject each, no multipart.
        """
        import base64

        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(data, (bytes, bytearray, memoryview)):
            actual = hashlib.sha256(data).hexdigest()
            body = io.BytesIO(data) if not isinstance(data, bytes) else data
        else:
            actual, body = _hash_of_file(data), data
        if actual != sha256:
            raise BlobCorrupt(sha256)
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(sha256), Body=body, ChecksumSHA256=checksum)
        except (ClientError, BotoCoreError) as error:
            raise self._fault(error) from None

    def get(self, sha256: str) -> bytes:
        return self.stream(sha256).read_all()

    def stream(self, sha256: str, chunk_size: int = CHUNK_BYTES) -> BlobReader:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as error:
            if self._is_missing(error):
                raise BlobMissing(sha256) from None
            raise self._fault(error) from None
        except BotoCoreError as error:
            raise self._fault(error) from None
        body = answer["Body"]
        return BlobReader(answer["ContentLength"], body.iter_chunks(chunk_size), body.close)

    def delete(self, sha256: str) -> None:
        """Remove the object; S3 answers a delete of a missing key as done, as retention wants."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))
        except (ClientError, BotoCoreError) as error:
            raise self._fault(error) from None

    def ping(self) -> None:
        """One HeadBucket: raises BlobStoreUnavailable when the store is unreachable or the bucket is not ours.

        Asked once, with two-second waits and no retries: a readiness probe wants a quick answer,
        and the next probe is the retry.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if self._ping_client is None:
            self._ping_client = self._client(connect_timeout=2, read_timeout=2, attempts=1)
        try:
            self._ping_client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as error:
            raise self._fault(error) from None


def from_url(url: str, *, endpoint_url: str | None = None) -> BlobStore:
    """The store KERBSIDE_BLOB_URL names: `file:///absolute/folder` or `s3://bucket/optional/prefix`."""
    from urllib.parse import unquote, urlsplit

    expected = "KERBSIDE_BLOB_URL must be file:///absolute/folder or s3://bucket/prefix"
    parts = urlsplit(url.strip())
    if parts.username or parts.password:
        # Never echo the URL: it holds a secret. Keys belong in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
        raise BlobUrlInvalid(f"{expected}; it must not hold credentials (use the AWS_* variables)")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BlobUrlInvalid(f"{expected}; a file URL needs an absolute path (three slashes), got {url!r}")
        return LocalBlobStore(unquote(parts.path))
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
            raise BlobUrlInvalid(f"{expected}; {bucket!r} is not a bucket name (3-63 lower-case letters, "
                                 "digits, dots and hyphens)")
        if parts.query or parts.fragment:
            raise BlobUrlInvalid(f"{expected}; an s3 URL takes no query or fragment")
        prefix = unquote(parts.path).strip("/")
        return S3BlobStore(bucket, prefix + "/" if prefix else "", endpoint_url=endpoint_url)
    raise BlobUrlInvalid(f"{expected}; got the scheme {parts.scheme or '(none)'!r}")


def init_app(app) -> None:
    """Make the app's store from its settings now, so a bad KERBSIDE_BLOB_URL stops the start."""
    url = app.config.get("BLOB_URL")
    if url:
        made = from_url(url, endpoint_url=app.config.get("BLOB_ENDPOINT_URL"))
    else:
        made = LocalBlobStore(app.config["BLOB_DIR"])
    app.extensions["kerbside_blobs"] = made
    app.register_error_handler(BlobStoreUnavailable, _store_unavailable)


def _store_unavailable(error: BlobStoreUnavailable):
    """The store is down or refusing us: the client did nothing wrong, so 503 and come back."""
    from flask import render_template

    from server import errors
    from server.auth import is_api_request

    from server.extensions import db

    db.session.rollback()  # a push stopped half-way checks nothing in
    current_app.logger.warning("Blob store unavailable: %s", error)
    if is_api_request():
        return errors.envelope(503, "unavailable", errors.messages()[503],
                               headers={"Retry-After": errors.RETRY_AFTER_BUSY_S})
    return render_template("error.html", status=503, message=errors.messages()[503]), 503


class PhotoRefused(Exception):
    """An upload this device may not make now: too fast (`retry_after` seconds) or over its quota."""

    def __init__(self, code: str, message: str, retry_after: int | None = None):
        super().__init__(code)
        self.code, self.message, self.retry_after = code, message, retry_after


def check_upload_allowed(device_id: str, size: int, now: datetime | None = None) -> None:
    """Raise PhotoRefused when a new photo of `size` bytes would break the device's rate or quota.

    Counted from the blob rows (each knows its device and time), so the limits hold across
    workers and hosts. Two uploads racing in the same instant may both pass: the limits are
    there to stop a runaway phone or a stolen token, not to count to the last photo.
    """
    from flask_babel import gettext as _
    from sqlalchemy import func, select

    from server.extensions import db
    from server.models import Blob, utcnow

    config = current_app.config
    now = now or utcnow()
    minute_ago = now - timedelta(minutes=1)
    recent = db.session.execute(
        select(func.count(), func.min(Blob.created_at))
        .where(Blob.device_id == device_id, Blob.created_at > minute_ago)
    ).one()
    if recent[0] >= config["PHOTO_RATE_PER_MINUTE"]:
        wait = max(1, math.ceil((recent[1] + timedelta(minutes=1) - now).total_seconds()))
        raise PhotoRefused("too_many_requests", _("Too many photos at once. Your phone will wait, then send the rest by itself."),
                           retry_after=wait)
    count, total = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Blob.size), 0))
        .where(Blob.device_id == device_id, Blob.created_at > now - timedelta(days=config["PHOTO_QUOTA_DAYS"]))
    ).one()
    if count >= config["PHOTO_QUOTA_COUNT"] or total + size > config["PHOTO_QUOTA_BYTES"]:
        raise PhotoRefused("photo_quota_exceeded", _(
            "This phone has sent all the photos it may send in %(days)s days (%(count)s photos or %(megabytes)s MB). "
            "The visit is kept on the phone. Send it again later from “Needs attention”, or ask your coordinator.",
            days=config["PHOTO_QUOTA_DAYS"], count=config["PHOTO_QUOTA_COUNT"],
            megabytes=config["PHOTO_QUOTA_BYTES"] // (1024 * 1024)))


def keeps_location(person_id: str) -> bool:
    """Whether a person's photos keep where they were taken: only if every area they work in says so."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import Area, Role

    kept = db.session.execute(
        select(Area.keep_photo_location).join(Role, Role.area_id == Area.id).where(Role.person_id == person_id)
    ).scalars().all()
    return bool(kept) and all(kept)


def keep(sha256: str, data: bytes, content_type: str, device_id: str | None, *, keep_location: bool = False) -> bool:
    """Store a checked photo and its row, bytes first so a row never points at nothing; False if already here.

    Unless `keep_location`, the bytes stored are the photo without its location, under their
    own hash; the row keeps the device's name for them (photo_location.LocationNotRemovable
    when a position cannot be taken out). A row whose bytes are gone from the store (lost,
    or a store that was swapped) is mended by the upload that brings them again.
    """
    from server import bulk
    from server.extensions import db
    from server.models import Blob, utcnow

    row = db.session.get(Blob, sha256)
    if row is not None and store().exists(row.stored_as):
        return False
    # Stripping needs the whole photo in memory (photo_location walks a JPEG's segments as
    # bytes); a photo is at most 8 MB and `data` is the one copy the upload read. The store
    # is given these bytes as they are, never a second copy.
    stored = data if keep_location else photo_location.strip_location(data, content_type)
    stored_sha256 = sha256 if stored is data or stored == data else hashlib.sha256(stored).hexdigest()
    if not store().exists(stored_sha256):
        store().put(stored_sha256, stored)
    if row is not None:
        row.stored_sha256 = None if stored_sha256 == sha256 else stored_sha256
        row.size = len(stored)
        return True
    row = {"sha256": sha256, "content_type": content_type, "size": len(stored), "device_id": device_id,
           "stored_sha256": None if stored_sha256 == sha256 else stored_sha256, "created_at": utcnow()}
    bulk.insert_new(db.session, Blob.__table__, [row], "sha256")
    return True


def stored(sha256: str) -> bool:
    """Whether a photo's row is here and its bytes really are in the store (a row alone is not enough)."""
    from server.extensions import db
    from server.models import Blob

    row = db.session.get(Blob, sha256)
    return row is not None and store().exists(row.stored_as)


def stored_of(names: set[str]) -> set[str]:
    """Those of `names` whose row is here and whose bytes are in the store."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import Blob

    if not names:
        return set()
    rows = db.session.execute(select(Blob.sha256, Blob.stored_sha256).where(Blob.sha256.in_(names))).all()
    kept_as = {row.sha256: row.stored_sha256 or row.sha256 for row in rows}
    in_store = store().exists_many(set(kept_as.values()))
    return {name for name, key in kept_as.items() if key in in_store}


def store() -> BlobStore:
    """The app's blob store, made by `init_app` from KERBSIDE_BLOB_URL (else the instance's blob folder)."""
    return current_app.extensions["kerbside_blobs"]
