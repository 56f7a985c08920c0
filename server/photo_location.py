"""Where a photo was taken, taken out of it: GPS and other location metadata in JPEG, PNG and WebP.

A phone's camera writes the place a photo was taken into its EXIF (the GPS IFD), and some
apps add it again as XMP (`exif:GPSLatitude`) or IPTC (city, sub-location). The field app
re-encodes photos through a canvas, which drops all of it, but the reference client and any
other client send the camera's bytes. So the server removes location from every photo it
stores, unless the volunteer's areas keep it (`Area.keep_photo_location`).

The image data are never decoded or re-encoded: the container (JPEG segments, PNG chunks,
RIFF chunks) is walked and only metadata is rewritten or dropped, so quality is untouched,
the work costs microseconds, and no decompression bomb can be set off. The EXIF block is
rewritten by Pillow without its GPS IFD and maker note (a vendor's opaque block, which may
hold a position too); everything else in it stays, the orientation above all, so the photo
is still shown the right way up. XMP and IPTC blocks are dropped whole: they are free-form,
and nothing Kerbside shows needs them. An EXIF block Pillow cannot read is dropped whole as
well (a camera never writes one; such a photo may then show unrotated).

A container that cannot be walked to its end (bytes that only start like an image) is kept
from the damaged point as it is: no viewer walking it finds metadata beyond that point
either. As a last check, if Pillow can still read a GPS position from the result, the
photo is refused (`LocationNotRemovable`) rather than kept with it.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

from PIL import ExifTags, Image, UnidentifiedImageError

GPS_IFD = ExifTags.IFD.GPSInfo
MAKER_NOTE = ExifTags.Base.MakerNote
EXIF_PREFIX = b"Exif\x00\x00"
XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENSION_PREFIX = b"http://ns.adobe.com/xmp/extension/\x00"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG text chunks whose keyword marks metadata that may hold a position.
PNG_METADATA_KEYWORDS = (b"XML:com.adobe.xmp", b"Raw profile type exif", b"Raw profile type APP1",
                         b"Raw profile type iptc", b"Raw profile type xmp")
WEBP_XMP_FLAG = 0x04


class LocationNotRemovable(Exception):
    """The photo still carries a position after stripping: it is refused, not kept."""


def strip_location(data: bytes, content_type: str) -> bytes:
    """The photo's bytes without location metadata (the same bytes when it had none)."""
    if content_type == "image/jpeg":
        stripped = _strip_jpeg(data)
    elif content_type == "image/png":
        stripped = _strip_png(data)
    elif content_type == "image/webp":
        stripped = _strip_webp(data)
    else:
        raise ValueError(content_type)
    if has_location(stripped):
        raise LocationNotRemovable()
    return stripped


def has_location(data: bytes) -> bool:
    """Whether Pillow reads a GPS position from these bytes (False for bytes it cannot read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged file's warnings are not ours to raise
            with Image.open(io.BytesIO(data)) as image:
                return bool(image.getexif().get_ifd(GPS_IFD))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error, EOFError,
            Image.DecompressionBombError):
        return False
    except Exception:  # Pillow's readers raise other kinds on hostile bytes; what it cannot read it cannot show
        return False


def _without_location(tiff: bytes) -> bytes | None:
    """An EXIF block (TIFF bytes, optionally after the `Exif\\0\\0` prefix) without GPS; None if unreadable."""
    prefix = EXIF_PREFIX if tiff.startswith(EXIF_PREFIX) else b""
    exif = Image.Exif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif.load(tiff)
            exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
            if GPS_IFD not in exif and MAKER_NOTE not in exif_ifd:
                return tiff
            exif.pop(GPS_IFD, None)
            exif_ifd.pop(MAKER_NOTE, None)
            rewritten = exif.tobytes()
    except Exception:  # Pillow raises many kinds on a damaged block; such a block is dropped whole
        return None
    return prefix + rewritten[len(EXIF_PREFIX):] if rewritten.startswith(EXIF_PREFIX) else prefix + rewritten


def _strip_jpeg(data: bytes) -> bytes:
    """Walk the segments up to the image data; rewrite APP1 EXIF, drop XMP (APP1) and IPTC (APP13)."""
    out = bytearray(data[:2])
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            out.append(0xFF)
            at += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan (the rest is image data) or end of image
            break
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            out += data[at:at + 2]
            at += 2
            continue
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        end = at + 2 + length
        if length < 2 or end > len(data):
            break
        payload = data[at + 4:end]
        if marker == 0xE1 and payload.startswith(EXIF_PREFIX):
            rewritten = _without_location(payload)
            if rewritten is not None and len(rewritten) + 2 <= 0xFFFF:
                out += b"\xff\xe1" + struct.pack(">H", len(rewritten) + 2) + rewritten
        elif marker == 0xE1 and (payload.startswith(XMP_PREFIX) or payload.startswith(XMP_EXTENSION_PREFIX)):
            pass
        elif marker == 0xED:  # APP13: Photoshop IRB holding IPTC
            pass
        else:
            out += data[at:end]
        at = end
    out += data[at:]
    return bytes(out)


def _strip_png(data: bytes) -> bytes:
    """Walk the chunks; rewrite eXIf, drop text chunks that carry XMP or raw EXIF/IPTC profiles."""
    out = bytearray(PNG_SIGNATURE)
    at = len(PNG_SIGNATURE)
    while at + 12 <= len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        kind = data[at + 4:at + 8]
        end = at + 12 + length
        if end > len(data):
            break
        body = data[at + 8:at + 8 + length]
        if kind == b"eXIf":
            rewritten = _without_location(body)
            if rewritten is not None:
                out += struct.pack(">I", len(rewritten)) + kind + rewritten
                out += struct.pack(">I", zlib.crc32(kind + rewritten) & 0xFFFFFFFF)
        elif kind in (b"tEXt", b"zTXt", b"iTXt") and body.split(b"\x00", 1)[0] in PNG_METADATA_KEYWORDS:
            pass
        else:
            out += data[at:end]
        at = end
        if kind == b"IEND":
            break
    out += data[at:]
    return bytes(out)


def _strip_webp(data: bytes) -> bytes:
    """Walk the RIFF chunks; rewrite EXIF, drop XMP and clear its flag in VP8X, fix the RIFF size."""
    if len(data) < 12:
        return data
    chunks = []
    at = 12
    flags_at = None
    while at + 8 <= len(data):
        kind = data[at:at + 4]
        length = struct.unpack("<I", data[at + 4:at + 8])[0]
        end = at + 8 + length + (length & 1)
        if at + 8 + length > len(data):
            break
        body = data[at + 8:at + 8 + length]
        if kind == b"EXIF":
            rewritten = _without_location(body)
            if rewritten is not None:
                chunks.append(kind + struct.pack("<I", len(rewritten)) + rewritten + b"\x00" * (len(rewritten) & 1))
        elif kind == b"XMP ":
            pass
        else:
            if kind == b"VP8X":
                flags_at = sum(len(c) for c in chunks) + 8
            chunks.append(data[at:min(end, len(data))])
        at = end
    rest = data[at:] if at < len(data) else b""
    body = bytearray(b"".join(chunks) + rest)
    if flags_at is not None and flags_at < len(body):
        body[flags_at] &= ~WEBP_XMP_FLAG & 0xFF
        if not any(c.startswith(b"EXIF") for c in chunks):
            body[flags_at] &= ~0x08 & 0xFF
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + bytes(body)
