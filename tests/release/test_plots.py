"""The pictures operators look at (stages/release/plots.py): PNGs of the expected size, bars where
a stage lost something, "not run" where it did not run (never a zero bar), the same bytes for
the same input."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from skyscript_assets.stages.release import plots
from skyscript_assets.stages.release.loss_report import (
    DEFAULT_MAX_LOSS_RATES,
    STAGES,
    DramaCounts,
    loss_report,
    stage_table,
    tally_drama,
)


def _counts(drama_id: str = "d", **figures) -> DramaCounts:
    base = {
        "drama_id": drama_id,
        "losses": {},
        "flags": {},
        "episodes": 4,
        "keyframes": 20,
        "invalid_keyframes": 0,
        "shooting_scripts": 2,
        "restorations": 2,
        "relationship_edges": 0,
        "step_summaries": {
            "keyframes": [{"given": 2}, {"given": 2}],
            "raw_mllm_json": [{"given": 20}],
            "detections": [{"not_run": "not run: no detector weights configured"}],
        },
    }
    return DramaCounts(**{**base, **figures})


def _pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def _row_band(index: int) -> slice:
    top = plots.TITLE_H + plots.LEGEND_H + index * plots.ROW_H
    return slice(top, top + plots.ROW_H)


def _has(pixels: np.ndarray, colour) -> int:
    return int(np.all(pixels == np.array(colour, np.uint8), axis=-1).sum())


def test_stage_rates_chart_draws_loss_and_flag_bars_and_says_not_run():
    tallies = tally_drama(_counts(losses={"raw_mllm_json": 2}, flags={"raw_mllm_json": 5}, invalid_keyframes=1))
    png = plots.stage_rates_chart(tallies, DEFAULT_MAX_LOSS_RATES, title="Loss and flag rates per stage, d")
    assert plots.png_size(png) == (plots.WIDTH, plots.chart_height(len(tallies)))
    pixels = _pixels(png)
    assert pixels.shape[:2] == (plots.chart_height(len(tallies)), plots.WIDTH)
    row = {t.stage: i for i, t in enumerate(tallies)}
    mllm = pixels[_row_band(row["raw_mllm_json"])]
    assert _has(mllm, plots.LOSS) > 100 and _has(mllm, plots.FLAG) > 100  # 10 % lost, 25 % flagged
    assert _has(pixels[_row_band(row["drama_manifest"])], plots.LOSS) <= 20  # nothing lost: a hairline at 0
    assert _has(pixels[_row_band(row["detections"])], plots.LOSS) == 0  # not run: no bar at all
    flagged = _has(mllm, plots.FLAG)
    assert flagged > _has(mllm, plots.LOSS)  # the bars share one scale: 25 % is longer than 10 %
    # the same input, the same bytes (the UI's picture changes only when the figures do)
    assert plots.stage_rates_chart(tallies, DEFAULT_MAX_LOSS_RATES, title="Loss and flag rates per stage, d") == png


def test_stage_table_marks_a_stage_over_its_threshold_and_one_that_did_not_run():
    table = stage_table(tally_drama(_counts(losses={"raw_mllm_json": 2})))
    assert "| raw_mllm_json | 20 | 2 | 10.00% **over** | 5% | 0 | valid keyframes |" in table
    assert "| detections | - | 0 | not run: no detector weights configured |" in table
    assert table.count("**over**") == 1


def test_loss_rate_grid_colours_each_drama_and_stage_and_greys_what_did_not_run():
    report = loss_report([_counts("bad", losses={"raw_mllm_json": 10}), _counts("good")])
    png = plots.loss_rate_grid(report.by_drama, report.max_loss_rates, stages=STAGES)
    assert plots.png_size(png) == (plots.WIDTH, plots.grid_height(2))
    pixels = _pixels(png)
    top = plots.grid_height(2) - plots.MARGIN - 2 * plots.GRID_CELL_H
    bad, good = pixels[top : top + plots.GRID_CELL_H], pixels[top + plots.GRID_CELL_H : top + 2 * plots.GRID_CELL_H]
    assert _has(bad, plots.LOSS) > 200  # 50 % lost, over its 5 %: the full colour
    assert _has(good, plots.LOSS) == 0
    assert _has(good, (233, 236, 239)) > 200  # detections: not run
    grid = report.grid_markdown()
    assert "| bad | 0.00% | 0.00% | 0.00% | 50.00% | not run | not run |" in grid
    assert grid.splitlines()[-1].startswith("| **all dramas** | 0.00% |")


def test_the_grid_shows_at_most_its_rows_and_says_how_many_more():
    report = loss_report([_counts(f"d{i:03d}") for i in range(plots.GRID_MAX_DRAMAS + 5)])
    png = plots.loss_rate_grid(report.by_drama, report.max_loss_rates)
    assert plots.png_size(png)[1] == plots.grid_height(plots.GRID_MAX_DRAMAS + 5) < 40 * (plots.GRID_MAX_DRAMAS + 5)
    assert "5 more dramas in the report file" in report.grid_markdown(plots.GRID_MAX_DRAMAS)


def test_loss_rate_over_time_needs_two_times_and_breaks_where_a_stage_did_not_run():
    start = datetime(2026, 1, 1, 12, 0)
    assert plots.loss_rate_over_time({"keyframes": [(start, 0.1)]}) is None
    assert plots.loss_rate_over_time({"keyframes": [(start, 0.1)], "cleaned_json": [(start, 0.2)]}) is None
    points = {
        "keyframes": [(start, 0.0), (start + timedelta(days=1), 0.02), (start + timedelta(days=3), 0.01)],
        "cleaned_json": [(start, 0.04), (start + timedelta(days=1), None), (start + timedelta(days=3), 0.06)],
    }
    png = plots.loss_rate_over_time(points)
    assert plots.png_size(png) == (plots.WIDTH, plots.over_time_height(2))
    pixels = _pixels(png)
    assert _has(pixels, plots.LINE_COLOURS[0]) > 100 and _has(pixels, plots.LINE_COLOURS[1]) > 30


def test_bar_chart_bars_are_in_proportion():
    bars = [("close up", 6), ("medium", 3), ("wide", 0), ("unknown", 1)]
    png = plots.bar_chart("Shot sizes", bars, unit="shots")
    assert plots.png_size(png) == (plots.WIDTH, plots.bar_chart_height(4))
    pixels = _pixels(png)
    lengths = [
        _has(pixels[plots.TOP + i * plots.ROW : plots.TOP + (i + 1) * plots.ROW], plots.BAR) for i in range(len(bars))
    ]
    assert lengths[0] == pytest.approx(2 * lengths[1], rel=0.05) and lengths[2] == 0 < lengths[3] < lengths[1]
    assert plots.bar_chart("Shot sizes", bars, unit="shots") == png  # equal input, equal bytes


def test_png_markdown_and_size():
    png = plots.bar_chart("t", [("a", 1)])
    md = plots.png_markdown("alt text", png)
    assert md.startswith("![alt text](data:image/png;base64,") and md.endswith(")")
    with pytest.raises(ValueError):
        plots.png_size(b"GIF89a" + bytes(30))
