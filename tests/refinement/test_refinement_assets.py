"""detections and character_refinements as assets, on the offline defaults."""

import cv2
import dagster as dg
import numpy as np
import skimage.data
from sqlalchemy import select

from skyscript_assets.catalog import Catalog, CharacterObservation, ReleasedKeyframe
from skyscript_assets.definitions import DRAMA_ASSETS
from skyscript_assets.defs.platform.resources import local_resources
from skyscript_assets.demo.synthetic import ShotSpec, render_video
from skyscript_assets.settings import database_url
from skyscript_assets.stages.refinement.pixelation import gate_face_detector, privacy_face_detector


def test_refinement_releases_pixelated_keyframes_and_fills_lines(skyscript_home):
    folder = skyscript_home / "landing" / "vision-drama"
    render_video(
        folder / "ep1.mp4", [ShotSpec(skimage.data.astronaut(), 1.0, subtitle="I never left.")], size=(360, 640)
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", ["vision-drama"])
        result = dg.materialize(
            DRAMA_ASSETS,
            partition_key="vision-drama",
            instance=instance,
            resources=local_resources(),
            run_config={"ops": {"keyframes": {"config": {"workers": 1}}}},
            raise_on_error=False,
        )
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["no_face_after_pixelation"] is True
        detections = next(
            e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "detections"
        )
        assert detections.materialization.metadata["phantom_rate"].value == "not run"  # no detector weights configured

    with Catalog(database_url()).session() as session:
        released = list(session.scalars(select(ReleasedKeyframe)))
        people = list(session.scalars(select(CharacterObservation)))
    assert released and all(r.faces_left == 0 for r in released)
    image = cv2.cvtColor(cv2.imread(released[0].uri), cv2.COLOR_BGR2RGB)
    for detector in (privacy_face_detector(), gate_face_detector(privacy_face_detector())):  # both families
        assert detector.detect(image) == []  # checked again here, independently of the asset's own check
    assert people and people[0].refinement["face_box"] is not None
    assert "left" in (people[0].refinement["line"] or "").lower()


class _BlindPixelation:
    """A pixelation detector that misses every face, as Haar missed the demo's cameraman."""

    model_id = "blind"

    def detect(self, rgb):
        return []


def test_a_face_the_pixelation_missed_fails_the_release_and_names_the_keyframe(skyscript_home, monkeypatch):
    import skyscript_assets.stages.refinement.episode as refinement

    monkeypatch.setattr(refinement, "privacy_face_detector", _BlindPixelation)
    folder = skyscript_home / "landing" / "leaky-faces"
    cameraman = np.ascontiguousarray(np.stack([skimage.data.camera()] * 3, axis=-1))  # a profile the refinement misses
    render_video(folder / "ep1.mp4", [ShotSpec(cameraman, 1.0)], size=(360, 640))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", ["leaky-faces"])
        result = dg.materialize(
            DRAMA_ASSETS,
            partition_key="leaky-faces",
            instance=instance,
            resources=local_resources(),
            run_config={"ops": {"keyframes": {"config": {"workers": 1}}}},
            raise_on_error=False,
        )
    assert not result.success
    [gate] = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_face_after_pixelation"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    assert gate.description == "a face is still visible in ep1/kf0000"
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "script_pairs" not in materialized and "calibrated_shooting_scripts" not in materialized  # nothing released
    with Catalog(database_url()).session() as session:
        assert [r.faces_left for r in session.scalars(select(ReleasedKeyframe))] == [1]


def test_the_face_conflict_check_fails_above_its_threshold():
    from skyscript_assets.defs.platform.episode_steps import StepReport
    from skyscript_assets.defs.refinement.assets import RefinementsConfig, _refinement_result

    report = StepReport(processed=1, skipped=0, summaries={"ep1": {"people": 4, "matched": 4, "conflicts": 2}})
    [_, conflicts] = _refinement_result(report, RefinementsConfig()).check_results
    assert conflicts.check_name == "face_conflict_rate" and not conflicts.passed
    assert conflicts.description == "2 of 4 matched people disagree"
    [_, relaxed] = _refinement_result(report, RefinementsConfig(conflict_warn_rate=0.6)).check_results
    assert relaxed.passed  # the threshold comes from run config
