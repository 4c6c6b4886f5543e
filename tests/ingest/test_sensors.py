import dagster as dg

from skyscript_assets.catalog import Catalog
from skyscript_assets.defs.ingest.sensors import landing_zone_rescan, new_dramas
from skyscript_assets.defs.platform.resources import CatalogResource, LandingZone, local_resources
from skyscript_assets.settings import database_url


def _resources():
    return {"landing": LandingZone(), "catalog": CatalogResource()}


def test_new_dramas_adds_partitions_and_requests_one_run_each(skyscript_home, make_video):
    landing = skyscript_home / "landing"
    make_video(landing / "drama-a" / "ep1.mp4")
    make_video(landing / "drama-b" / "ep1.mp4")
    (landing / "Bad Name").mkdir()
    (landing / "..x").mkdir()

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=_resources())
        result = new_dramas(context)
        assert sorted(r.partition_key for r in result.run_requests) == ["drama-a", "drama-b"]
        assert sorted(r.run_key for r in result.run_requests) == ["drama-a", "drama-b"]
        [add] = result.dynamic_partitions_requests
        assert add.partitions_def_name == "dramas" and sorted(add.partition_keys) == ["drama-a", "drama-b"]

        rejected = {loss.item: loss.detail for loss in Catalog(database_url()).losses(stage="landing")}
        assert set(rejected) == {"Bad Name", "..x"}
        assert "lowercase slug" in rejected["Bad Name"] and "'..'" in rejected["..x"]

        # Once the partitions exist (the daemon applies the request), nothing new is asked.
        instance.add_dynamic_partitions("dramas", ["drama-a", "drama-b"])
        again = new_dramas(dg.build_sensor_context(instance=instance, resources=_resources(), cursor=result.cursor))
        assert not again.run_requests
        assert "no new drama" in again.skip_reason.skip_message
        assert len(Catalog(database_url()).losses(stage="landing")) == 2  # not written twice


def test_empty_landing_zone_skips(skyscript_home):
    with dg.instance_for_test() as instance:
        result = new_dramas(dg.build_sensor_context(instance=instance, resources=_resources()))
        assert not result.run_requests and result.skip_reason


def test_daily_rescan_registers_missed_dramas_and_reruns_changed_ones(skyscript_home, make_video):
    landing = skyscript_home / "landing"
    make_video(landing / "old-drama" / "ep1.mp4")
    with dg.instance_for_test() as instance:
        first = landing_zone_rescan(dg.build_schedule_context(instance=instance, resources=_resources()))
        assert [r.partition_key for r in first] == ["old-drama"]
        assert instance.has_dynamic_partition("dramas", "old-drama")

        # After the manifest ran, an unchanged folder is not re-run ...
        dg.materialize(_drama_assets(), partition_key="old-drama", instance=instance, resources=local_resources())
        unchanged = landing_zone_rescan(dg.build_schedule_context(instance=instance, resources=_resources()))
        assert isinstance(unchanged, dg.SkipReason)

        # ... but a new episode changes its fingerprint and triggers a run.
        make_video(landing / "old-drama" / "ep2.mp4", [((5, 5, 250), 0.4, "start")])
        changed = landing_zone_rescan(dg.build_schedule_context(instance=instance, resources=_resources()))
        assert [r.partition_key for r in changed] == ["old-drama"]
        assert changed[0].run_key != first[0].run_key


def _drama_assets():
    from skyscript_assets.defs.ingest.drama_manifest import drama_manifest

    return [drama_manifest]
