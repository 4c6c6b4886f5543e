"""Every broken file becomes one loss row with a one-line reason; the rest of the drama goes on."""

import json
from pathlib import Path

import dagster as dg

from skyscript_assets.catalog import Catalog, Episode
from skyscript_assets.definitions import DRAMA_ASSETS
from skyscript_assets.defs.platform.resources import local_resources
from skyscript_assets.settings import database_url

from .corpus import build_bad_drama


def test_bad_input_corpus_loses_exactly_the_bad_files(skyscript_home):
    expected = build_bad_drama(skyscript_home / "landing" / "bad-drama")

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", ["bad-drama"])
        result = dg.materialize(
            DRAMA_ASSETS,
            partition_key="bad-drama",
            instance=instance,
            resources=local_resources(),
            raise_on_error=False,
        )
        # A crash would fail the run; losses must not.
        assert result.success, [e.message for e in result.all_events if e.is_failure]

    catalog = Catalog(database_url())
    losses = {loss.item: loss for loss in catalog.losses(partition="bad-drama", stage="drama_manifest")}
    assert {item: loss.reason for item, loss in losses.items()} == {
        name: reason for name, reason in expected.items() if reason is not None
    }
    for loss in losses.values():
        assert loss.detail and "\n" not in loss.detail and "Traceback" not in loss.detail

    with catalog.session() as session:
        episodes = session.query(Episode).filter_by(drama_id="bad-drama").order_by(Episode.position).all()
    kept = {e.file_name for e in episodes}
    assert kept == {name for name, reason in expected.items() if reason is None}
    eight_k = next(e for e in episodes if e.file_name == "ep03-8k.mp4")
    assert (eight_k.display_width, eight_k.display_height) == (7680, 4320)
    # Episode ids are unique (ep20.mkv kept, ep20.mp4 a loss naming both), positions dense.
    assert len({e.episode_id.lower() for e in episodes}) == len(episodes)
    assert [e.position for e in episodes] == list(range(len(episodes)))
    assert "ep20.mkv" in losses["ep20.mp4"].detail
    # Nothing outside the landing root was read: every episode lives inside it, and the links
    # that lead out are refused without a listing of their targets (one loss each, no more).
    landing = (skyscript_home / "landing").resolve()
    assert all(Path(e.uri).resolve().is_relative_to(landing) for e in episodes)
    manifest = json.loads(
        (skyscript_home / "artifacts" / "bad-drama" / "drama_manifest" / "manifest.json").read_text()
    )
    assert len(manifest["losses"]) == len(losses)
    assert "passwd" not in json.dumps(manifest["episodes"])
