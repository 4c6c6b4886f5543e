import dagster as dg
import pytest

from skyscript_assets.catalog import Catalog, Drama, Episode, Loss
from skyscript_assets.definitions import DRAMA_ASSETS
from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.platform.resources import local_resources
from skyscript_assets.settings import database_url


def _materialize(instance, drama_id, assets=(drama_manifest,)):
    instance.add_dynamic_partitions("dramas", [drama_id])
    return dg.materialize(
        list(assets), partition_key=drama_id, instance=instance, resources=local_resources(), raise_on_error=False
    )


def test_manifest_materializes_rows_and_metadata_and_is_idempotent(skyscript_home, make_video):
    drama = skyscript_home / "landing" / "two-eps"
    make_video(drama / "ep1.mp4")
    make_video(drama / "ep2.mp4", [((0, 0, 250), 0.5, "start")])
    (drama / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)

    with dg.instance_for_test() as instance:
        result = _materialize(instance, "two-eps")
        assert result.success
        [mat] = result.get_asset_materialization_events()
        metadata = mat.materialization.metadata
        assert metadata["episodes"].value == 2
        assert metadata["losses"].value == 1
        assert metadata["file_loss_rate"].value == pytest.approx(1 / 3, abs=1e-3)
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"has_episodes": True, "file_loss_rate": False}

        catalog = Catalog(database_url())
        counts = (catalog.count(Drama), catalog.count(Episode), catalog.count(Loss))
        assert counts == (1, 2, 1)
        [loss] = catalog.losses(partition="two-eps")
        assert loss.item == "broken.mp4" and loss.stage == "drama_manifest"
        assert loss.run_id == result.run_id and loss.asset_key == "drama_manifest" and loss.stage_version == "1"

        again = _materialize(instance, "two-eps")
        assert again.success
        assert (catalog.count(Drama), catalog.count(Episode), catalog.count(Loss)) == counts
        assert {e.run_id for e in catalog.losses()} == {again.run_id}

    manifest = skyscript_home / "artifacts" / "two-eps" / "drama_manifest" / "manifest.json"
    assert manifest.exists()


def test_empty_drama_fails_the_blocking_check(skyscript_home):
    (skyscript_home / "landing" / "empty-drama").mkdir(parents=True)
    with dg.instance_for_test() as instance:
        result = _materialize(instance, "empty-drama")
        checks = {e.check_name: (e.passed, e.severity) for e in result.get_asset_check_evaluations()}
        assert checks["has_episodes"] == (False, dg.AssetCheckSeverity.ERROR)


def test_missing_landing_folder_fails_with_a_clear_message(skyscript_home):
    with dg.instance_for_test() as instance:
        result = _materialize(instance, "not-there")
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert "has no folder in the landing zone" in failure.step_failure_data.user_failure_data.description


def test_whole_pipeline_job_runs_on_a_drama(skyscript_home, make_video):
    make_video(skyscript_home / "landing" / "one-ep" / "ep1.mp4")
    with dg.instance_for_test() as instance:
        result = _materialize(instance, "one-ep", DRAMA_ASSETS)
        assert result.success
