"""Draw the field app's PNG icons with the standard library alone (run once; the PNGs are committed).

The picture: a kerb (a pale stripe) under a bright map pin on the app's dark green. The
maskable icon keeps the picture inside the central 80 % "safe zone" that launchers crop to.
"""

import os
import struct
import zlib

GREEN = (29, 77, 43)
KERB = (230, 230, 222)
PIN = (255, 204, 0)
HOLE = (29, 77, 43)


def pixel(x: float, y: float, scale: float) -> tuple:
    """The colour at (x, y) in a 0..1 square, the picture shrunk by `scale` around the centre."""
    u = 0.5 + (x - 0.5) / scale
    v = 0.5 + (y - 0.5) / scale
    if 0.18 <= u <= 0.82 and 0.70 <= v <= 0.80:
        return KERB
    # The pin: a circle with a point below it, and a hole in the middle.
    dx, dy = u - 0.5, v - 0.38
    distance = (dx * dx + dy * dy) ** 0.5
    if distance <= 0.07:
        return HOLE
    if distance <= 0.17:
        return PIN
    if 0.38 <= v <= 0.64 and abs(dx) <= 0.17 * (0.64 - v) / 0.26:
        return PIN
    return GREEN


def png(size: int, scale: float) -> bytes:
    rows = []
    for j in range(size):
        row = bytearray([0])
        for i in range(size):
            row.extend(pixel((i + 0.5) / size, (j + 0.5) / size, scale))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
            + chunk(b"IEND", b""))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for name, size, scale in (("icon-192.png", 192, 1.0), ("icon-512.png", 512, 1.0), ("maskable-512.png", 512, 0.72)):
        with open(os.path.join(here, name), "wb") as handle:
            handle.write(png(size, scale))
