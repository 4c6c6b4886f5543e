"""A hostile landing zone: symlinks that lead out or alias another drama, drama.json files built to
crash a parser or flood the catalog, and `skyscript ingest` of a folder of links. Each case ends in
a one-line reason (a loss row or a refusal), and nothing else of the drama is lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from sqlalchemy import select

from skyscript_assets.catalog import Catalog, Drama, Episode
from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.ingest.sensors import new_dramas
from skyscript_assets.defs.platform.resources import CatalogResource, LandingZone, local_resources
from skyscript_assets.settings import database_url

from .corpus import DRAMA_JSON_CASES


def _materialize(instance, drama_id: str):
    if not instance.has_dynamic_partition("dramas", drama_id):
        instance.add_dynamic_partitions("dramas", [drama_id])  # as an operator adds one by hand
    return dg.materialize(
        [drama_manifest], partition_key=drama_id, instance=instance, resources=local_resources(), raise_on_error=False
    )


def _episodes(drama_id: str) -> list[Episode]:
    with Catalog(database_url()).session() as session:
        return list(session.scalars(select(Episode).where(Episode.drama_id == drama_id).order_by(Episode.position)))


def _failure(result) -> str:
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.step_failure_data.user_failure_data.description


def test_drama_json_cases_are_one_loss_each_and_the_drama_goes_on(skyscript_home, make_video):
    landing = skyscript_home / "landing"
    episode, _ = make_video(skyscript_home / "ep01.mp4")
    for case, (write, _) in DRAMA_JSON_CASES.items():
        (landing / case).mkdir(parents=True)
        shutil.copy(episode, landing / case / "ep01.mp4")
        write(landing / case / "drama.json")

    catalog = Catalog(database_url())
    with dg.instance_for_test() as instance:
        for case, (_, words) in DRAMA_JSON_CASES.items():
            result = _materialize(instance, case)
            assert result.success, (case, [e.message for e in result.all_events if e.is_failure])
            [loss] = catalog.losses(partition=case, stage="drama_manifest")
            assert (loss.item, loss.reason) == ("drama.json", "invalid_drama_json"), case
            assert words in loss.detail, (case, loss.detail)
            assert "\n" not in loss.detail and len(loss.detail) < 500, case
            assert [e.file_name for e in _episodes(case)] == ["ep01.mp4"], case  # nothing else lost
            with catalog.session() as session:
                title = session.scalar(select(Drama.title).where(Drama.drama_id == case))
            assert title == case, case  # the defaults apply
            manifest = skyscript_home / "artifacts" / case / "drama_manifest" / "manifest.json"
            assert manifest.stat().st_size < 10_000, case
            assert json.loads(manifest.read_bytes().decode("utf-8"))["info"]["title"] == case


def _planted_landing(landing: Path, make_video) -> None:
    make_video(landing / "drama-a" / "ep1.mp4")
    make_video(landing / "drama-b" / "season2" / "ep1.mp4", [((5, 5, 250), 0.4, "start")])
    os.symlink("/etc", landing / "evil")  # out of the landing root
    os.symlink(landing / "drama-a", landing / "alias")  # a second id for drama-a
    os.symlink("drama-b/season2", landing / "drama-b-s2")  # inside, and no other drama's folder: read
    os.symlink(landing / "nowhere", landing / "broken")
    os.symlink(".", landing / "itself")


LANDING_VERDICTS = {
    "evil": "symlink_outside_landing",
    "alias": "duplicate_drama",
    "broken": "not_a_file",
    "itself": "symlink_outside_landing",
}


def test_symlinked_drama_folders_get_the_same_verdict_from_the_sensor_and_the_asset(skyscript_home, make_video):
    landing = skyscript_home / "landing"
    _planted_landing(landing, make_video)
    catalog = Catalog(database_url())

    with dg.instance_for_test() as instance:
        sensor = new_dramas(
            dg.build_sensor_context(
                instance=instance, resources={"landing": LandingZone(), "catalog": CatalogResource()}
            )
        )
        assert sorted(r.partition_key for r in sensor.run_requests) == ["drama-a", "drama-b", "drama-b-s2"]
        rejected = {loss.item: loss for loss in catalog.losses(stage="landing")}
        assert {item: loss.reason for item, loss in rejected.items()} == LANDING_VERDICTS
        assert all("\n" not in loss.detail for loss in rejected.values())
        assert "outside the landing zone" in rejected["evil"].detail
        assert "'drama-a'" in rejected["alias"].detail

        # The asset, on partitions added by hand, refuses the same folders with the same one line,
        # before reading anything in them.
        for drama_id in LANDING_VERDICTS:
            result = _materialize(instance, drama_id)
            assert not result.success, drama_id
            assert _failure(result) == rejected[drama_id].detail
            assert not catalog.losses(partition=drama_id) and not _episodes(drama_id)
            assert not (skyscript_home / "artifacts" / drama_id).exists()

        for drama_id in ("drama-a", "drama-b-s2"):
            assert _materialize(instance, drama_id).success
        assert [e.file_name for e in _episodes("drama-a")] == ["ep1.mp4"]
        [linked] = _episodes("drama-b-s2")
        assert Path(linked.uri).resolve() == (landing / "drama-b" / "season2" / "ep1.mp4").resolve()
    with catalog.session() as session:  # drama-a's episode is in the catalog once, under one id
        assert session.scalars(
            select(Episode.drama_id).where(Episode.sha256 == _episodes("drama-a")[0].sha256)
        ).all() == ["drama-a"]


# --- skyscript ingest, as a user runs it ----------------------------------------------------


def _skyscript(*args, home: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSCRIPT_", "DAGSTER_"))}
    env["SKYSCRIPT_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "skyscript_assets.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_ingest_copies_the_targets_of_links_not_the_links(skyscript_home, make_video):
    videos = skyscript_home.parent / "downloads"
    make_video(videos / "a.mp4")
    make_video(videos / "b.mp4", [((5, 5, 250), 0.4, "start")])
    (videos / "sub").mkdir()
    os.mkfifo(videos / "pipe")
    source = skyscript_home.parent / "incoming" / "linked-drama"
    source.mkdir(parents=True)
    os.symlink(videos / "a.mp4", source / "ep1.mp4")
    os.symlink("../../downloads/b.mp4", source / "ep2.mp4")
    os.symlink(videos / "gone.mp4", source / "ep3.mp4")
    os.symlink(videos / "sub", source / "extras")
    os.symlink(videos / "pipe", source / "ep4.mp4")

    proc = _skyscript("ingest", str(source), home=skyscript_home)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    notes = proc.stderr.strip().splitlines()
    assert notes == [
        "skyscript: not copied: ep3.mp4: a broken symlink or symlink loop",
        "skyscript: not copied: ep4.mp4: not a regular file (FIFO, socket or device)",
        "skyscript: not copied: extras: a sub-folder (episodes must sit in the drama folder)",
    ]
    copy = skyscript_home / "landing" / "linked-drama"
    assert sorted(p.name for p in copy.iterdir()) == ["ep1.mp4", "ep2.mp4"]
    for name, original in (("ep1.mp4", "a.mp4"), ("ep2.mp4", "b.mp4")):
        assert not (copy / name).is_symlink() and (copy / name).read_bytes() == (videos / original).read_bytes()

    with dg.instance_for_test() as instance:
        assert _materialize(instance, "linked-drama").success
    assert [e.file_name for e in _episodes("linked-drama")] == ["ep1.mp4", "ep2.mp4"]
    assert not Catalog(database_url()).losses(partition="linked-drama")


def test_ingest_never_writes_through_a_link_planted_in_the_landing_zone(skyscript_home, make_video):
    source = skyscript_home.parent / "incoming" / "planted"
    make_video(source / "ep1.mp4")
    outside = skyscript_home.parent / "victim"
    outside.mkdir()
    (outside / "ep1.mp4").write_text("precious")
    landing = skyscript_home / "landing"
    landing.mkdir(parents=True)

    os.symlink(outside, landing / "planted")  # the drama folder itself
    proc = _skyscript("ingest", str(source), home=skyscript_home)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "is a symlink" in line
    assert (outside / "ep1.mp4").read_text() == "precious"

    os.unlink(landing / "planted")
    (landing / "planted").mkdir()
    os.symlink(outside / "ep1.mp4", landing / "planted" / "ep1.mp4")  # one episode file
    proc = _skyscript("ingest", str(source), home=skyscript_home)
    assert proc.returncode == 0, proc.stderr
    assert (outside / "ep1.mp4").read_text() == "precious"
    copied = landing / "planted" / "ep1.mp4"
    assert not copied.is_symlink() and copied.read_bytes() == (source / "ep1.mp4").read_bytes()
