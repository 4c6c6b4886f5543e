"""Charts as PNG bytes (Pillow only: no plotting library): the dataset card's bar charts, and
the pictures an operator looks at in the Dagster UI, shown there as Markdown images
(`png_markdown`, data: URIs) in an asset's metadata.

    png = bar_chart("Shot sizes", [("close up", 120), ("medium", 80)], unit="shots")
    stage_rates_chart(tallies, max_loss_rates, title=...)    loss and flag rate per stage (one drama, or all)
    loss_rate_grid(by_drama, max_loss_rates)                 loss rate per stage per drama, a coloured grid
    loss_rate_over_time(points)                              loss rate per stage across dramas, by when they ran

Plain Python, no Dagster. Every chart is `WIDTH` wide, its height follows the rows drawn
(`bar_chart_height`, `chart_height`, `grid_height`, `over_time_height`). A stage that did not
run is drawn as "not run", never as a zero bar. Equal input gives equal bytes (no timestamps in
the PNG), so an unchanged chart is never rewritten.
"""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Mapping, Sequence
from datetime import datetime

from PIL import Image, ImageDraw, ImageFont

from skyscript_assets.stages.release.loss_report import StageTally
from skyscript_assets.stages.release.loss_report import label as stage_label

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


def bar_chart_height(bars: int) -> int:
    """Height of `bar_chart` with `bars` bars."""
    return TOP + max(1, bars) * ROW + BOTTOM


# --- the operator's charts ----------------------------------------------------------------------

TITLE_H, ROW_H, LEGEND_H, MARGIN = 34, 30, 26, 12
LABEL_W, VALUE_W = 190, 120
INK, RULE, MUTED = (33, 37, 41), (222, 226, 230), (134, 142, 150)
LOSS, FLAG, LIMIT = (214, 69, 65), (240, 160, 40), (33, 37, 41)
LINE_COLOURS = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (148, 103, 189),
    (255, 127, 14),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (23, 190, 207),
    (188, 189, 34),
]
GRID_CELL_H, GRID_MAX_DRAMAS = 24, 40
PLOT_H = 260  # the over-time chart's plotting area


FONT, SMALL, BOLD = _font(13), _font(11), _font(15)


def png_markdown(alt: str, png: bytes) -> str:
    """A Markdown image holding the PNG itself (the Dagster UI shows data: URIs)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) read from a PNG's header; ValueError when the bytes are not a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", png[16:24])


def _canvas(height: int, title: str) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, 9), _fit(draw, title, WIDTH - 2 * MARGIN, BOLD), fill=INK, font=BOLD)
    return image, draw


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font=FONT) -> str:
    """`text` cut with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _percent(rate: float) -> str:
    return f"{rate:.1%}" if rate >= 0.001 or rate == 0 else f"{rate:.2%}"


# --- loss and flag rates per stage --------------------------------------------------------------


def flag_rate(t: StageTally) -> float | None:
    """Flags over what the stage was given (None without a denominator or when it did not run)."""
    if t.not_run or not t.given:
        return None
    return t.flags / t.given


def chart_height(rows: int) -> int:
    """Height of `stage_rates_chart` and `distribution_chart` for `rows` rows."""
    return TITLE_H + LEGEND_H + rows * ROW_H + MARGIN


def stage_rates_chart(tallies: Sequence[StageTally], max_loss_rates: Mapping[str, float], *, title: str) -> bytes:
    """One row per stage: its loss rate (red) and flag rate (orange) as bars on one scale, its
    threshold as a black tick; a stage that did not run says so instead of a bar."""
    image, draw = _canvas(chart_height(len(tallies)), title)
    rates = [r for t in tallies for r in (t.rate, flag_rate(t), max_loss_rates.get(t.stage)) if r is not None]
    scale = _nice_max(max(rates, default=0.0))
    left, right = LABEL_W, WIDTH - VALUE_W
    top = TITLE_H + LEGEND_H
    _legend(draw, [("loss rate", LOSS), ("flag rate", FLAG), ("loss threshold", LIMIT)], TITLE_H)
    draw.text((right + 4, TITLE_H + 4), f"axis 0 to {_percent(scale)}", fill=MUTED, font=SMALL)
    for i, t in enumerate(tallies):
        y = top + i * ROW_H
        if i % 2 == 0:
            draw.rectangle((0, y, WIDTH, y + ROW_H - 1), fill=(248, 249, 250))
        draw.text((MARGIN, y + 8), _fit(draw, stage_label(t.stage), LABEL_W - MARGIN - 6), fill=INK, font=FONT)
        if t.not_run:
            draw.text((left + 4, y + 8), _fit(draw, t.rate_text(), right - left - 8), fill=MUTED, font=FONT)
            continue
        draw.line((left, y + 3, left, y + ROW_H - 4), fill=RULE)
        for rate, colour, offset in ((t.rate, LOSS, 5), (flag_rate(t), FLAG, 16)):
            if rate is not None:
                length = round((right - left) * min(rate / scale, 1.0)) if scale else 0
                draw.rectangle((left, y + offset, left + max(length, 1), y + offset + 9), fill=colour)
        limit = max_loss_rates.get(t.stage)
        if limit is not None and scale:
            x = left + round((right - left) * min(limit / scale, 1.0))
            draw.line((x, y + 2, x, y + ROW_H - 3), fill=LIMIT, width=2)
        text = "-" if t.rate is None else _percent(t.rate)
        if flag_rate(t) is not None and t.flags:
            text += f" · {t.flags} flag{'s' if t.flags > 1 else ''}"
        draw.text((right + 6, y + 8), _fit(draw, text, VALUE_W - 8), fill=INK, font=FONT)
    return _png(image)


def _legend(draw: ImageDraw.ImageDraw, entries: Sequence[tuple[str, tuple]], y: int, x: int = MARGIN) -> None:
    for text, colour in entries:
        draw.rectangle((x, y + 5, x + 12, y + 15), fill=colour, outline=MUTED if colour == BACKGROUND else colour)
        draw.text((x + 17, y + 3), text, fill=INK, font=SMALL)
        x += 17 + round(draw.textlength(text, font=SMALL)) + 18


def _nice_max(value: float) -> float:
    """The axis' end: the smallest of 1, 2, 5 x 10^k at or above `value` (at least 1 %, at most 100 %)."""
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        if value <= step:
            return step
    return value


# --- loss rate per stage per drama --------------------------------------------------------------


def grid_height(dramas: int) -> int:
    """Height of `loss_rate_grid` for `dramas` rows (at most GRID_MAX_DRAMAS are drawn)."""
    shown = min(dramas, GRID_MAX_DRAMAS) + (dramas > GRID_MAX_DRAMAS)
    return TITLE_H + LEGEND_H + 66 + max(shown, 1) * GRID_CELL_H + MARGIN


def loss_rate_grid(
    by_drama: Mapping[str, Sequence[StageTally]],
    max_loss_rates: Mapping[str, float],
    *,
    stages: Sequence[str] | None = None,
    title: str = "Loss rate per stage and drama",
) -> bytes:
    """A drama per row, a stage per column: each cell its loss rate, white at 0 and red at (or over)
    the stage's threshold, outlined when over; grey "n/r" where the stage did not run."""
    stages = list(stages or dict.fromkeys(t.stage for ts in by_drama.values() for t in ts))
    dramas = list(by_drama)
    image, draw = _canvas(grid_height(len(dramas)), title)
    _legend(draw, [("0 %", (255, 255, 255)), ("at threshold", LOSS), ("not run (n/r)", (233, 236, 239))], TITLE_H)
    left, top = LABEL_W - 40, TITLE_H + LEGEND_H + 66
    cell_w = (WIDTH - MARGIN - left) // max(len(stages), 1)
    for j, stage in enumerate(stages):  # column heads, two lines each
        x = left + j * cell_w
        head = stage_label(stage).replace("_", " ").replace(" (", "\n(")
        words = head.split(" ") if "\n" not in head else head.split("\n")
        lines = [" ".join(words[: len(words) // 2 or 1]), " ".join(words[len(words) // 2 or 1 :])]
        for k, line in enumerate(lines[:2]):
            draw.text((x + 3, top - 60 + 14 * k), _fit(draw, line, cell_w - 4, SMALL), fill=INK, font=SMALL)
        limit = max_loss_rates.get(stage)
        if limit is not None:
            draw.text((x + 3, top - 28), f"max {_percent(limit)}", fill=MUTED, font=SMALL)
    for i, drama in enumerate(dramas[:GRID_MAX_DRAMAS]):
        y = top + i * GRID_CELL_H
        draw.text((MARGIN, y + 5), _fit(draw, drama, left - MARGIN - 4), fill=INK, font=FONT)
        tallies = {t.stage: t for t in by_drama[drama]}
        for j, stage in enumerate(stages):
            x, t = left + j * cell_w, tallies.get(stage)
            box = (x + 1, y + 1, x + cell_w - 2, y + GRID_CELL_H - 2)
            if t is None or t.not_run:
                draw.rectangle(box, fill=(233, 236, 239))
                draw.text((x + 5, y + 6), "n/r", fill=MUTED, font=SMALL)
                continue
            if t.rate is None:
                draw.rectangle(box, fill=(248, 249, 250), outline=RULE)
                draw.text((x + 5, y + 6), "-", fill=MUTED, font=SMALL)
                continue
            limit = max_loss_rates.get(stage) or 1.0
            share = min(t.rate / limit, 1.0) if limit else 1.0
            fill = tuple(round(255 + (c - 255) * share) for c in LOSS)
            over = t.rate > limit
            draw.rectangle(box, fill=fill, outline=INK if over else RULE, width=2 if over else 1)
            draw.text(
                (x + 5, y + 6),
                _fit(draw, _percent(t.rate), cell_w - 8, SMALL),
                fill=(255, 255, 255) if share > 0.6 else INK,
                font=SMALL,
            )
    if len(dramas) > GRID_MAX_DRAMAS:
        y = top + GRID_MAX_DRAMAS * GRID_CELL_H
        draw.text(
            (MARGIN, y + 5), f"… {len(dramas) - GRID_MAX_DRAMAS} more dramas in the report file", fill=MUTED, font=FONT
        )
    return _png(image)


# --- loss rate over time ------------------------------------------------------------------------


def over_time_height(stages: int) -> int:
    legend_rows = (stages + 4) // 5
    return TITLE_H + legend_rows * 20 + PLOT_H + 58 + MARGIN


def loss_rate_over_time(
    points: Mapping[str, Sequence[tuple[datetime, float | None]]],
    *,
    title: str = "Loss rate per stage, dramas by when they ran",
) -> bytes | None:
    """A line per stage through the loss rates of its dramas, placed by the time each drama ran;
    a drama where the stage did not run leaves a gap. None when fewer than two distinct times
    are known (no curve to draw)."""
    times = sorted({when for series in points.values() for when, _ in series})
    if len(times) < 2:
        return None
    stages = list(points)
    image, draw = _canvas(over_time_height(len(stages)), title)
    for k, stage in enumerate(stages):
        row, col = divmod(k, 5)
        _legend(
            draw,
            [(stage_label(stage), LINE_COLOURS[k % len(LINE_COLOURS)])],
            TITLE_H + row * 20,
            x=MARGIN + col * ((WIDTH - 2 * MARGIN) // 5),
        )
    top = TITLE_H + ((len(stages) + 4) // 5) * 20 + 8
    left, right, bottom = 56, WIDTH - MARGIN - 8, top + PLOT_H
    rates = [r for series in points.values() for _, r in series if r is not None]
    scale = _nice_max(max(rates, default=0.0))
    for k in range(5):  # horizontal grid and its labels
        y = bottom - round(PLOT_H * k / 4)
        draw.line((left, y, right, y), fill=RULE)
        draw.text((6, y - 7), _percent(scale * k / 4), fill=MUTED, font=SMALL)
    start, span = times[0], (times[-1] - times[0]).total_seconds() or 1.0

    def x_of(when: datetime) -> int:
        return left + round((right - left) * (when - start).total_seconds() / span)

    for when in (times[0], times[-1]):
        text = when.strftime("%Y-%m-%d %H:%M")
        width = draw.textlength(text, font=SMALL)
        x = min(max(x_of(when) - width / 2, left), right - width)
        draw.text((x, bottom + 6), text, fill=MUTED, font=SMALL)
    never = [stage_label(stage) for stage in stages if all(rate is None for _, rate in points[stage])]
    if never:  # no line to draw, and said so
        note = _fit(draw, "not run in any drama: " + ", ".join(never), WIDTH - 2 * MARGIN, SMALL)
        draw.text((MARGIN, bottom + 26), note, fill=MUTED, font=SMALL)
    for k, stage in enumerate(stages):
        colour = LINE_COLOURS[k % len(LINE_COLOURS)]
        segment: list[tuple[int, int]] = []
        for when, rate in sorted(points[stage], key=lambda p: p[0]):
            if rate is None:  # not run there: the line breaks
                _polyline(draw, segment, colour)
                segment = []
                continue
            segment.append((x_of(when), bottom - round(PLOT_H * min(rate / scale, 1.0))))
        _polyline(draw, segment, colour)
    return _png(image)


def _polyline(draw: ImageDraw.ImageDraw, points: list[tuple[int, int]], colour: tuple) -> None:
    if len(points) > 1:
        draw.line(points, fill=colour, width=2)
    for x, y in points:
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
