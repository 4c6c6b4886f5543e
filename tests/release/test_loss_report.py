"""loss_rate_report: losses and flags per stage and per drama beside the paper's figures, a stage
that did not run shown as "not run" (never 0 %), and one check per stage that fails over its
threshold (thresholds in run config). The catalog is filled directly."""

from __future__ import annotations

import dagster as dg
import pytest

from skyscript_assets.catalog import (
    Catalog,
    Drama,
    Episode,
    EpisodeProgress,
    Flag,
    Keyframe,
    Loss,
    ReleaseShard,
    ShootingScriptRow,
)
from skyscript_assets.defs.platform.resources import local_resources
from skyscript_assets.defs.reports.loss_rate_report import loss_rate_report
from skyscript_assets.settings import database_url
from skyscript_assets.stages.release.loss_report import (
    DEFAULT_MAX_LOSS_RATES,
    STAGES,
    DramaCounts,
    loss_report,
    tally_drama,
)
from skyscript_assets.stages.release.pairs import card_loss_rates

# What the bad drama loses per stage: (given, lost); every rate is over the default threshold.
BAD = {
    "drama_manifest": (5, 1),
    "keyframes": (4, 1),
    "keyframes_invalid": (10, 2),
    "raw_mllm_json": (8, 1),
    "cleaned_json": (7, 1),
    "detections": (10, 1),
    "character_refinements": (7, 1),
    "restored_scripts": (4, 2),
    "relationships": (2, 1),
}


def _prov(drama: str, asset: str, model_id: str = "") -> dict:
    return {"run_id": "seed", "asset_key": asset, "partition": drama, "stage_version": "1", "model_id": model_id}


def _episode(drama: str, number: int) -> Episode:
    return Episode(
        drama_id=drama,
        episode_id=f"ep{number:02d}",
        episode_number=number,
        position=number,
        file_name="x.mp4",
        uri="/x.mp4",
        size_bytes=1,
        sha256="0" * 64,
        container="mp4",
        codec="h264",
        duration_s=1.0,
        avg_fps=25.0,
        is_vfr=False,
        coded_width=2,
        coded_height=2,
        display_width=2,
        display_height=2,
        rotation=0,
        sample_aspect_ratio="1:1",
        has_audio=False,
        **_prov(drama, "drama_manifest"),
    )


def _keyframe(drama: str, index: int, valid: bool) -> Keyframe:
    return Keyframe(
        drama_id=drama,
        episode_id="ep01",
        shot_index=0,
        keyframe_index=index,
        time_s=float(index),
        frame=index,
        valid=valid,
        invalid_reason=None if valid else "blurred",
        uri=f"/kf{index}.jpg",
        width=2,
        height=2,
        sharpness=1.0,
        **_prov(drama, "keyframes"),
    )


def _records(table, drama: str, stage: str, count: int, reason: str) -> list:
    return [
        table(
            drama_id=drama,
            episode_id="ep01",
            stage=stage,
            item=f"ep01/kf{i:04d}",
            reason=reason,
            detail=f"{stage} {reason} {i}",
            **_prov(drama, stage),
        )
        for i in range(count)
    ]


def _summaries(drama: str, asset: str, given: int, not_run: str | None = None) -> list[EpisodeProgress]:
    """Two episodes' summaries of a per-episode asset, splitting `given` between them."""
    return [
        EpisodeProgress(
            drama_id=drama,
            episode_id=f"ep{n:02d}",
            input_hash="h",
            **_prov(drama, asset),
            summary={"given": share, "not_run": not_run},
        )
        for n, share in ((1, given - given // 2), (2, given // 2))
    ]


def seed_bad_drama(drama: str = "bad") -> None:
    """A drama whose every stage loses more than its default threshold, with flags on kept data."""
    rows = [
        Drama(drama_id=drama, title=drama, landing_uri="/nowhere", **_prov(drama, "drama_manifest")),
        *(_episode(drama, n) for n in range(1, 5)),
        *_records(Loss, drama, "drama_manifest", 1, "unreadable_video"),
        *(_keyframe(drama, i, valid=i >= 2) for i in range(10)),
        ShootingScriptRow(
            drama_id=drama,
            episode_id="ep01",
            scene_number=1,
            shots=1,
            script={},
            text="",
            calibration_status="passed",
            **_prov(drama, "calibrated_shooting_scripts"),
        ),
        ReleaseShard(
            drama_id=drama,
            uri=f"/a/{drama}/restored_scripts/part-00000.parquet",
            rows=2,
            size_bytes=1,
            **_prov(drama, "restored_scripts"),
        ),
        ReleaseShard(
            drama_id=drama,
            uri=f"/a/{drama}/script_pairs/relationships/relationship_edges.parquet",
            rows=2,
            size_bytes=1,
            **_prov(drama, "script_pairs", "openai:labeller"),
        ),
        *_records(Flag, drama, "detections", 3, "ungrounded_object"),
        *_records(Flag, drama, "character_refinements", 2, "face_count_conflict"),
    ]
    for stage in ("keyframes", "raw_mllm_json", "cleaned_json", "detections", "character_refinements"):
        rows += _summaries(drama, stage, BAD[stage][0])
    for stage in (
        "keyframes",
        "raw_mllm_json",
        "cleaned_json",
        "detections",
        "character_refinements",
        "restored_scripts",
        "relationships",
    ):
        rows += _records(Loss, drama, stage, BAD[stage][1], "llm_failed" if stage != "keyframes" else "decode_failed")
    Catalog(database_url()).replace_partition_rows(
        asset_key="seed",
        partition=drama,
        rows=rows,
        tables=[Drama, Episode, Loss, Flag, Keyframe, ShootingScriptRow, ReleaseShard, EpisodeProgress],
    )


def _report(instance, max_loss_rates: dict | None = None, raise_on_error: bool = True):
    config = {"ops": {"loss_rate_report": {"config": {"max_loss_rates": max_loss_rates}}}} if max_loss_rates else None
    result = dg.materialize(
        [loss_rate_report],
        instance=instance,
        resources=local_resources(),
        run_config=config,
        raise_on_error=raise_on_error,
    )
    return result, {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_every_stage_check_fails_over_its_threshold_and_names_the_drama(skyscript_home):
    seed_bad_drama()
    with dg.instance_for_test() as instance:
        result, checks = _report(instance)
    assert result.success  # a red check does not fail the run; it shows in the Checks tab
    assert sorted(checks) == sorted(f"loss_rate_{stage}" for stage in STAGES)
    for stage, (given, lost) in BAD.items():
        failed = checks[f"loss_rate_{stage}"]
        assert not failed.passed, stage
        assert failed.severity == dg.AssetCheckSeverity.ERROR
        assert f"{lost} of {given} " in failed.description and "worst: bad (" in failed.description
        assert failed.metadata["dramas_over"].value == 1
    [materialization] = result.get_asset_materialization_events()
    meta = materialization.materialization.metadata
    assert meta["stages_over_threshold"].value == ", ".join(STAGES)
    assert meta["flags"].value == 5 and meta["losses"].value == sum(lost for _, lost in BAD.values())


def test_thresholds_come_from_run_config(skyscript_home):
    seed_bad_drama()
    with dg.instance_for_test() as instance:
        _, checks = _report(
            instance, {"restored_scripts": 0.6, "relationships": 0.5}
        )  # the others keep their defaults
        passed = {name for name, e in checks.items() if e.passed}
        assert passed == {"loss_rate_restored_scripts", "loss_rate_relationships"}
        assert checks["loss_rate_restored_scripts"].metadata["threshold"].value == 0.6
        _, checks = _report(instance, {stage: 1.0 for stage in STAGES})
        assert all(e.passed for e in checks.values())
        typo, _ = _report(instance, {"restored_script": 0.5}, raise_on_error=False)
        assert not typo.success  # a threshold for no stage is an error, not a silent pass


def test_report_shows_losses_and_flags_apart_beside_the_paper_and_not_run_for_steps_that_did_not_run(skyscript_home):
    seed_bad_drama()
    # a second drama whose detector had no weights and whose later stages never ran
    rows = [
        Drama(drama_id="good", title="good", landing_uri="/nowhere", **_prov("good", "drama_manifest")),
        *(_episode("good", n) for n in range(1, 3)),
        *(_keyframe("good", i, valid=True) for i in range(5)),
        *_summaries("good", "keyframes", 2),
        *_summaries("good", "raw_mllm_json", 5),
        *_summaries("good", "detections", 4, not_run="not run: no detector weights configured"),
    ]
    Catalog(database_url()).replace_partition_rows(
        asset_key="seed", partition="good", rows=rows, tables=[Drama, Episode, Keyframe, EpisodeProgress]
    )
    with dg.instance_for_test() as instance:
        _, checks = _report(instance)
    report = (skyscript_home / "artifacts" / "_reports" / "loss_rate_report.md").read_text()
    # losses and flags in their own columns: the phantoms do not raise the detections loss rate
    assert "| bad | detections | 10 | 1 | 10.00% | 3 |" in report
    assert "| bad | character_refinements | 7 | 1 | 14.29% | 2 |" in report
    assert (
        "| detections | ungrounded_object | 3 |" in report
        and "| character_refinements | face_count_conflict | 2 |" in report
    )
    # the paper's figures beside ours
    assert "| bad | keyframes (invalid) | 10 | 2 | 20.00% | 0 | 3.9% (5,441 of 139,534 keyframes invalid) |" in report
    assert "| good | keyframes (invalid) | 5 | 0 | 0.00% | 0 | 3.9% (" in report
    assert "| good | cleaned_json | - | 0 | not run: not materialized for this drama | 0 | 4.0% (" in report
    assert "| good | detections | - | 0 | not run: no detector weights configured |" in report
    assert "| good | restored_scripts | 0 | 0 | - |" in report  # nothing to restore: no rate either
    assert "0 %" not in report and "| good | detections | - | 0 | 0.00%" not in report
    # over all dramas: detections measured where it ran (bad), and says where it did not
    assert "| detections | 10 | 1 | 10.00% **over** | 5% | 3 |" in report and "| 1 of 2 | MLLM objects |" in report
    assert not checks["loss_rate_detections"].passed


def _counts(**figures) -> DramaCounts:
    base = {
        "drama_id": "d",
        "losses": {},
        "flags": {},
        "episodes": 2,
        "keyframes": 0,
        "invalid_keyframes": 0,
        "shooting_scripts": 0,
        "restorations": 0,
        "relationship_edges": 0,
    }
    return DramaCounts(**{**base, **figures})


def test_a_step_that_did_not_run_has_no_rate_never_zero():
    tallies = {t.stage: t for t in tally_drama(_counts(shooting_scripts=3, relationship_edges=4))}
    for stage in (
        "keyframes",
        "keyframes_invalid",
        "raw_mllm_json",
        "cleaned_json",
        "restored_scripts",
        "relationships",
    ):
        assert tallies[stage].rate is None and tallies[stage].rate_text().startswith("not run"), stage
    assert tallies["relationships"].rate_text() == "not run: no labelling LLM (edges written unlabelled)"
    assert tallies["drama_manifest"].rate == 0.0  # it ran: two episodes, none lost
    card = card_loss_rates(_counts(shooting_scripts=3))
    assert card["restored_scripts"].startswith("not run") and card["drama_manifest"] == 0.0


def test_losses_of_a_stage_without_a_denominator_are_listed_without_a_rate():
    [other] = [t for t in tally_drama(_counts(losses={"dialogue": 2})) if t.stage == "dialogue"]
    assert (other.given, other.lost, other.rate_text()) == (None, 2, "-")
    with pytest.raises(ValueError, match="no such stage"):
        loss_report([_counts()], max_loss_rates={"dialog": 0.1})
    assert set(DEFAULT_MAX_LOSS_RATES) == set(STAGES)


def _pngs(markdown: str) -> list[tuple[int, int]]:
    """The sizes of the PNGs a Markdown value holds as data: URIs (each checked to be a PNG)."""
    import base64
    import io
    import re

    from PIL import Image

    sizes = []
    for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", markdown):
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.verify()
        sizes.append(image.size)
    return sizes


def test_report_shows_charts_of_the_rates_per_stage_per_drama_and_over_time(skyscript_home):
    from skyscript_assets.stages.release import plots

    seed_bad_drama("bad")
    seed_bad_drama("worse")  # a second drama, its manifest built later
    with dg.instance_for_test() as instance:
        result, _ = _report(instance)
    meta = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    stages = len(STAGES)  # no other stage has losses or flags here
    assert _pngs(meta["loss_rates_chart"]) == [(plots.WIDTH, plots.chart_height(stages))]
    assert _pngs(meta["loss_rate_by_drama"]) == [(plots.WIDTH, plots.grid_height(2))]
    assert "| bad | 20.00% | 25.00% | 20.00% |" in meta["loss_rate_by_drama"]  # the table beside the grid
    assert _pngs(meta["loss_rate_over_time"]) == [(plots.WIDTH, plots.over_time_height(stages))]


def test_one_drama_has_no_curve_over_time_and_says_why(skyscript_home):
    seed_bad_drama()
    with dg.instance_for_test() as instance:
        result, _ = _report(instance)
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["loss_rate_over_time"].value.startswith("One point in time")
    assert len(_pngs(meta["loss_rates_chart"].value)) == 1
