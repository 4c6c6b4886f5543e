"""Bar charts as PNG bytes (Pillow only: no plotting library), for the dataset card.

    png = bar_chart("Shot sizes", [("close up", 120), ("medium", 80)], unit="shots")

Equal input gives equal bytes (no timestamps in the PNG), so an unchanged chart is never
rewritten.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

WIDTH = 720
ROW, TOP, BOTTOM, LEFT_MIN = 24, 44, 16, 120
BAR, TEXT, GRID, BACKGROUND = (52, 101, 164), (30, 30, 30), (225, 225, 225), (255, 255, 255)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (FreeType)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def bar_chart(title: str, bars: list[tuple[str, float]], *, unit: str = "", width: int = WIDTH) -> bytes:
    """A horizontal bar chart: one labelled bar per (label, value), the value and its share
    printed beside it; "no data" when `bars` is empty or all zero."""
    font, title_font = _font(13), _font(16)
    height = TOP + max(1, len(bars)) * ROW + BOTTOM
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((12, 12), title, fill=TEXT, font=title_font)
    total = sum(v for _, v in bars)
    if not bars or total <= 0:
        draw.text((12, TOP), "no data", fill=TEXT, font=font)
        return _png(image)
    left = min(width // 3, max(LEFT_MIN, max(int(draw.textlength(label, font=font)) for label, _ in bars) + 20))
    right = width - 150  # room for "1,234 (12.3%)"
    peak = max(v for _, v in bars)
    for i, (label, value) in enumerate(bars):
        y = TOP + i * ROW
        shown = label if draw.textlength(label, font=font) <= left - 16 else _shorten(draw, label, font, left - 16)
        draw.text((12, y + 4), shown, fill=TEXT, font=font)
        draw.rectangle((left, y + 3, right, y + ROW - 3), fill=GRID)
        end = left + int(round((right - left) * value / peak))
        if end > left:
            draw.rectangle((left, y + 3, end, y + ROW - 3), fill=BAR)
        count = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
        draw.text((right + 8, y + 4), f"{count} ({value / total:.1%})", fill=TEXT, font=font)
    if unit:
        draw.text((right + 8, 14), unit, fill=TEXT, font=font)
    return _png(image)


def _shorten(draw: ImageDraw.ImageDraw, label: str, font, room: int) -> str:
    while label and draw.textlength(label + "…", font=font) > room:
        label = label[:-1]
    return label + "…"


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
