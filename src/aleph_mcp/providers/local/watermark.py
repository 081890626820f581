"""Watermark text for the `local` provider, drawn with Pillow (this FFmpeg build has no drawtext filter).

A font without a glyph for a character draws its .notdef box instead, so before anything is drawn each
character's rendering is compared with the font's .notdef glyph: Pillow's own font first, then common
system fonts; text no font here can draw is refused rather than stamped as empty boxes.
"""

from __future__ import annotations

import functools
import unicodedata

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from aleph_mcp.errors import InvalidInput

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
# Tried in order after Pillow's built-in font (Latin letters only); Pillow finds them in the system's
# font folders when they are installed.
FONT_FILES: tuple[str, ...] = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "NotoSansCJK-Regular.ttc")
_UNMAPPED = "\uffff"  # a noncharacter: every font draws its .notdef glyph for it


def drawable_text(text: str) -> tuple[str, str | None]:
    """(the text as drawn, the font file that draws every character; None for Pillow's own font).

    Raises InvalidInput naming the characters no available font can draw."""
    clean = " ".join(
        "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c)[0] != "C").split()
    )
    gaps: list[set[str]] = []
    for face in (None, *FONT_FILES):
        font = _load(face, 32)
        if font is None:
            continue
        if not (absent := _missing_glyphs(font, clean)):
            return clean, face
        gaps.append(absent)
    missing = min(gaps, key=len)  # what the best-covering font still lacks
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in sorted(missing))
    raise InvalidInput(
        f"The watermark {text!r} cannot be drawn: no font on this machine has {shown}. Use Latin letters, "
        "digits and punctuation, or install a font that covers them (e.g. Noto Sans CJK)."
    )


def _missing_glyphs(font: Font, text: str) -> set[str]:
    if not isinstance(font, ImageFont.FreeTypeFont):
        return {c for c in text if ord(c) > 0xFF}  # the bitmap fallback font is Latin-1
    notdef = _mask(font, _UNMAPPED)
    return {c for c in set(text) - {" "} if _mask(font, c) == notdef}


def _mask(font: ImageFont.FreeTypeFont, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


@functools.lru_cache(maxsize=64)
def _load(face: str | None, size: int) -> Font | None:
    """`face` at `size` px, or None when it is not installed."""
    try:
        return ImageFont.load_default(size=size) if face is None else ImageFont.truetype(face, size)
    except (TypeError, OSError):
        if face is not None:
            return None
        return ImageFont.load_default()  # Pillow < 10.1, or a build without FreeType: the bitmap font


class Watermark:
    """Text blended into every frame's yuv420p planes from a mask made once.

    The blend works on the planes in place, so every pixel outside the text stays byte for byte.
    """

    OPACITY = 0.6
    WHITE_Y, NEUTRAL_UV = 235.0, 128.0

    def __init__(self, text: str, width: int, height: int) -> None:
        clean, face = drawable_text(text)
        margin = max(2, height // 40)
        font, (left, top, right, bottom) = _fitting_font(
            clean, face, width - 2 * margin, max(8, height // 12)
        )
        mask = Image.new("L", (right - left + 2, bottom - top + 2))  # +1 pixel for the shadow
        ImageDraw.Draw(mask).text((-left, -top), clean, fill=255, font=font)
        alpha = np.asarray(mask, dtype=np.float64) / 255 * self.OPACITY
        h, w = min(alpha.shape[0], height) // 2 * 2, min(alpha.shape[1], width) // 2 * 2  # whole chroma cells
        self.alpha = alpha[:h, :w]
        # A dark halo one pixel down-right keeps white text readable on light footage.
        self.shadow = np.zeros_like(self.alpha)
        self.shadow[1:, 1:] = self.alpha[:-1, :-1] * 0.5
        self.chroma = self.alpha.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        self.x = max(0, width - margin - w) // 2 * 2
        self.y = max(0, height - margin - h) // 2 * 2

    def apply(self, frame: av.VideoFrame) -> av.VideoFrame:
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        width, height = frame.width, frame.height
        planes = frame.to_ndarray()  # Y rows, then U and V with two chroma rows per line
        luma = planes[:height]
        u = planes[height : height + height // 4].reshape(height // 2, width // 2)
        v = planes[height + height // 4 :].reshape(height // 2, width // 2)
        h, w = self.alpha.shape
        y0, x0 = self.y, self.x
        region = luma[y0 : y0 + h, x0 : x0 + w] * (1 - self.shadow)
        luma[y0 : y0 + h, x0 : x0 + w] = (region * (1 - self.alpha) + self.WHITE_Y * self.alpha).round()
        for plane in (u, v):
            cell = plane[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2]
            plane[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2] = (
                cell * (1 - self.chroma) + self.NEUTRAL_UV * self.chroma
            ).round()
        return av.VideoFrame.from_ndarray(planes, format="yuv420p")


def _fitting_font(
    text: str, face: str | None, max_width: int, size: int
) -> tuple[Font, tuple[int, int, int, int]]:
    """The largest size of `face` (from `size` down to 8 px) at which `text` fits `max_width`."""
    while True:
        font = _load(face, size)
        assert font is not None  # drawable_text found this face installed
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        if right - left <= max_width or size <= 8:
            return font, (left, top, right, bottom)
        size -= max(1, size // 10)
