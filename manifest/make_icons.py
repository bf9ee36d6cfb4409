"""Draw the Teams app icons (a trophy with a star) with a tiny pure-Python PNG writer.

    python manifest/make_icons.py        # rewrites manifest/teams/color.png and outline.png

- `color.png`: 192x192, a gold trophy with a white star on a solid accent-colour square.
- `outline.png`: 32x32, the same trophy in white on a transparent background, the star cut out.
  Every pixel is white (RGB 255,255,255) with some alpha; anti-aliasing only varies the alpha.

The output is deterministic (same bytes on every run), so the committed PNGs can be regenerated
and compared. No dependency beyond the standard library (zlib + struct).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEAMS = HERE / "teams"

ACCENT = (0x1F, 0x4E, 0x79)  # keep in step with "accentColor" in teams/manifest.json
GOLD = (0xF2, 0xB7, 0x05)
WHITE = (0xFF, 0xFF, 0xFF)

Pixel = tuple[int, int, int, int]


def write_png(path: Path, width: int, height: int, pixels: list[list[Pixel]]) -> None:
    """Write 8-bit RGBA pixels (rows of (r, g, b, a)) as a PNG file, filter type 0 on every row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = bytearray()
    for row in pixels:
        raw.append(0)  # filter: None
        for r, g, b, a in row:
            raw.extend((r, g, b, a))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def _star(cx: float, cy: float, outer: float, inner: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


STAR = _star(0.5, 0.36, 0.13, 0.055)


def _in_polygon(x: float, y: float, polygon: list[tuple[float, float]]) -> bool:
    inside = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def in_trophy(x: float, y: float) -> bool:
    """The trophy in unit coordinates (x right, y down, both 0..1)."""
    dx = abs(x - 0.5)
    # Bowl: straight sides, then a half-ellipse bottom.
    if 0.16 <= y <= 0.36 and dx <= 0.27:
        return True
    if 0.36 < y <= 0.62 and dx <= 0.27 * math.sqrt(max(0.0, 1 - ((y - 0.36) / 0.26) ** 2)):
        return True
    # Handles: rings on both sides of the bowl.
    if dx > 0.25:
        ring = math.hypot(dx - 0.27, y - 0.31)
        if 0.065 <= ring <= 0.12:
            return True
    # Stem, base and plinth.
    if 0.6 <= y <= 0.74 and dx <= 0.05:
        return True
    if 0.72 <= y <= 0.8 and dx <= 0.19:
        return True
    return 0.8 <= y <= 0.87 and dx <= 0.25


def in_star(x: float, y: float) -> bool:
    return _in_polygon(x, y, STAR)


def _coverage(
    size: int,
    px: int,
    py: int,
    scale: float,
    test: Callable[[float, float], bool],
    samples: int = 4,
) -> float:
    """Fraction of the pixel's sub-samples inside `test`, the shape scaled about the centre."""
    hits = 0
    for sy in range(samples):
        for sx in range(samples):
            u = (px + (sx + 0.5) / samples) / size
            v = (py + (sy + 0.5) / samples) / size
            if test(0.5 + (u - 0.5) / scale, 0.5 + (v - 0.5) / scale):
                hits += 1
    return hits / (samples * samples)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    r, g, bl = (round(a[i] + (b[i] - a[i]) * t) for i in range(3))
    return r, g, bl


def color_icon(size: int = 192) -> list[list[Pixel]]:
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            cup = _coverage(size, px, py, 0.78, in_trophy)
            star = _coverage(size, px, py, 0.78, in_star)
            colour = _mix(_mix(ACCENT, GOLD, cup), WHITE, star)
            row.append((*colour, 255))
        rows.append(row)
    return rows


def outline_icon(size: int = 32) -> list[list[Pixel]]:
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            alpha = _coverage(
                size, px, py, 0.96, lambda x, y: in_trophy(x, y) and not in_star(x, y)
            )
            row.append((255, 255, 255, round(alpha * 255)))
        rows.append(row)
    return rows


def main() -> None:
    write_png(TEAMS / "color.png", 192, 192, color_icon(192))
    write_png(TEAMS / "outline.png", 32, 32, outline_icon(32))
    print(f"wrote {TEAMS / 'color.png'} and {TEAMS / 'outline.png'}")


if __name__ == "__main__":
    main()
