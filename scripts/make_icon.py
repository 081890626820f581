"""Draw the extension's 512x512 PNG icon (committed as mcpb/icon.png; rerun with `make icon`).

A rounded dark tile, a strip of film frames and an aleph-like spark: drawn from shapes only, so the result is
the same on every machine (no fonts).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 512


def draw_icon() -> Image.Image:
    scale = 4  # draw large, then downsample for smooth edges
    big = SIZE * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        return (int(x0 * scale), int(y0 * scale), int(x1 * scale), int(y1 * scale))

    # Tile with a vertical violet-to-indigo gradient.
    tile = Image.new("RGBA", (big, big))
    tile_draw = ImageDraw.Draw(tile)
    for y in range(big):
        t = y / big
        colour = (int(88 + 40 * t), int(60 - 30 * t), int(200 - 80 * t), 255)
        tile_draw.line([(0, y), (big, y)], fill=colour)
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle(box(16, 16, 496, 496), radius=96 * scale, fill=255)
    image.paste(tile, (0, 0), mask)

    # Film strip across the lower third: a dark band with sprocket holes and three frames.
    draw.rectangle(box(16, 300, 496, 420), fill=(20, 16, 40, 235))
    for i in range(12):
        x = 30 + i * 40
        draw.rounded_rectangle(box(x, 308, x + 20, 320), radius=3 * scale, fill=(235, 230, 255, 255))
        draw.rounded_rectangle(box(x, 400, x + 20, 412), radius=3 * scale, fill=(235, 230, 255, 255))
    for i, shade in enumerate(((120, 210, 255), (255, 200, 120), (170, 255, 190))):
        x = 48 + i * 144
        draw.rounded_rectangle(box(x, 330, x + 128, 390), radius=8 * scale, fill=(*shade, 255))

    # A four-pointed spark above the strip: the edit.
    cx, cy, r, w = 256, 168, 120, 26
    spark = [
        (cx, cy - r),
        (cx + w, cy - w),
        (cx + r, cy),
        (cx + w, cy + w),
        (cx, cy + r),
        (cx - w, cy + w),
        (cx - r, cy),
        (cx - w, cy - w),
    ]
    draw.polygon([(x * scale, y * scale) for x, y in spark], fill=(255, 255, 255, 255))
    draw.ellipse(box(cx - 18, cy - 18, cx + 18, cy + 18), fill=(255, 214, 102, 255))

    return image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "mcpb" / "icon.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_icon().save(out, format="PNG", optimize=True)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
