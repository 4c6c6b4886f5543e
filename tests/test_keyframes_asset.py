"""The keyframes asset: catalog rows and artifacts per episode, resumable, losses not crashes."""

import dagster as dg
import numpy as np
import skimage.data
from sqlalchemy import delete, select

from skyscript_assets.catalog import Catalog, EpisodeProgress, Keyframe, Shot
from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.platform.resources import local_resources
from skyscript_assets.defs.video.assets import keyframes
from skyscript_assets.demo.synthetic import ShotSpec, render_video
from skyscript_assets.settings import database_url

ONE_WORKER = {"ops": {"keyframes": {"config": {"workers": 1}}}}


def _drama(root, name="kf-drama"):
    folder = root / "landing" / name
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.rocket()]
    for n in range(3):
        render_video(
            folder / f"ep{n + 1}.mp4",
            [ShotSpec(photos[n], 1.0), ShotSpec(photos[(n + 1) % 3], 1.0, "static", "cut")],
            size=(160, 96),
        )
    return folder


def _run(instance, drama_id, assets=(drama_manifest, keyframes), config=ONE_WORKER):
    if not instance.has_dynamic_partition("dramas", drama_id):
        instance.add_dynamic_partitions("dramas", [drama_id])
    return dg.materialize(
        list(assets),
        partition_key=drama_id,
        instance=instance,
        resources=local_resources(),
        run_config=config if keyframes in assets else None,
        raise_on_error=False,
    )


def _metadata(result):
    return {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def test_keyframes_are_cataloged_and_a_rerun_skips_done_episodes(skyscript_home):
    _drama(skyscript_home)
    catalog = Catalog(database_url())
    with dg.instance_for_test() as instance:
        first = _run(instance, "kf-drama")
        assert first.success
        meta = _metadata(first)["keyframes"]
        assert (meta["episodes_processed"], meta["episodes_skipped"], meta["shots"]) == (3, 0, 6)
        assert meta["valid_keyframes"] == meta["keyframes"] >= 6
        counts = (catalog.count(Shot), catalog.count(Keyframe))
        with catalog.session() as session:
            uris = list(session.scalars(select(Keyframe.uri)))
        assert all(u.startswith(str(skyscript_home / "artifacts" / "kf-drama" / "keyframes")) for u in uris)

        again = _run(instance, "kf-drama", assets=(keyframes,))
        assert _metadata(again)["keyframes"]["episodes_processed"] == 0
        assert (catalog.count(Shot), catalog.count(Keyframe)) == counts

        # Forget one episode's progress (as if the run died before it): only it is redone.
        with catalog.session() as session:
            session.execute(delete(EpisodeProgress).where(EpisodeProgress.episode_id == "ep2"))
        resumed = _run(instance, "kf-drama", assets=(keyframes,))
        assert (
            _metadata(resumed)["keyframes"]["episodes_processed"],
            _metadata(resumed)["keyframes"]["episodes_skipped"],
        ) == (1, 2)
        assert (catalog.count(Shot), catalog.count(Keyframe)) == counts


def test_parallel_workers_give_the_same_rows(skyscript_home):
    _drama(skyscript_home)
    with dg.instance_for_test() as instance:
        assert _run(instance, "kf-drama", config={"ops": {"keyframes": {"config": {"workers": 2}}}}).success
    with Catalog(database_url()).session() as session:
        rows = sorted(session.execute(select(Shot.episode_id, Shot.start_frame, Shot.transition_in)).all())
    assert rows == sorted([(f"ep{n}", f, kind) for n in (1, 2, 3) for f, kind in ((0, "start"), (24, "cut"))])


def test_an_all_black_episode_fails_the_blocking_check_and_a_broken_one_is_a_loss(skyscript_home):
    folder = _drama(skyscript_home)
    render_video(folder / "ep4.mp4", [ShotSpec(np.zeros((96, 160, 3), np.uint8), 1.0)], size=(160, 96))
    data = (folder / "ep1.mp4").read_bytes()
    with dg.instance_for_test() as instance:
        assert _run(instance, "kf-drama", assets=(drama_manifest,)).success
        (folder / "ep3.mp4").write_bytes(data[:200])  # damaged after the manifest probed it
        result = _run(instance, "kf-drama", assets=(keyframes,))
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["episodes_without_valid_keyframe"] is False
        meta = _metadata(result)["keyframes"]
        assert meta["episodes_lost"] == 1
    [loss] = Catalog(database_url()).losses(stage="keyframes")
    assert loss.episode_id == "ep3" and loss.reason == "unreadable" and "\n" not in loss.detail
