import json
import os

import pytest

from skyscript_assets.stages.ingest.manifest import build_manifest, episode_id_for, episode_number


@pytest.mark.parametrize(
    "name, number",
    [
        ("ep03.mp4", 3),
        ("Episode 12.mkv", 12),
        ("drama_S01E07.mp4", 7),
        ("第5集.mp4", 5),
        ("10.mp4", 10),
        ("trailer.mp4", None),
        ("love-2024-ep2.mp4", 2),
    ],
)
def test_episode_number_from_file_name(name, number):
    assert episode_number(name) == number


def test_episode_ids_are_path_safe_and_distinct():
    ids = {episode_id_for(n) for n in ["第1集.mp4", "第2集.mp4", "ep 1.mp4", "ep_1.mp4", "ep01.mp4"]}
    assert len(ids) == 5
    assert all("/" not in i and i not in {".", ".."} and i for i in ids)
    assert episode_id_for("ep01.mp4") == "ep01"


def test_manifest_orders_dedupes_and_records_losses(tmp_path, make_video):
    drama = tmp_path / "my-drama"
    drama.mkdir()
    make_video(drama / "ep10.mp4", [((10, 10, 200), 0.4, "start")])
    make_video(drama / "ep2.mp4", [((200, 10, 10), 0.4, "start")])
    make_video(drama / "ep1.mp4", [((10, 200, 10), 0.4, "start")])
    (drama / "ep1-copy.mp4").write_bytes((drama / "ep1.mp4").read_bytes())
    (drama / "notes.docx").write_text("not a video")
    (drama / "ep99.mp4").write_text("a text file named .mp4")
    (drama / "subs.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    os.symlink(drama / "loop.mp4", drama / "loop.mp4")  # a symlink loop
    (drama / "drama.json").write_text(json.dumps({"title": "My Drama", "language": "zh"}))

    manifest = build_manifest(str(drama), "my-drama")

    assert [e.file_name for e in manifest.episodes] == ["ep1.mp4", "ep2.mp4", "ep10.mp4"]
    assert [e.position for e in manifest.episodes] == [0, 1, 2]
    assert manifest.info.title == "My Drama" and manifest.info.language == "zh"
    reasons = {loss.item: loss.reason for loss in manifest.losses}
    assert reasons == {
        "ep1-copy.mp4": "duplicate",
        "notes.docx": "not_a_video",
        "ep99.mp4": "unreadable",
        "loop.mp4": "not_a_file",
    }
    assert all("\n" not in loss.detail and loss.detail.startswith("my-drama: ") for loss in manifest.losses)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", json.dumps({"title": ["a"], "language": 5})])
def test_broken_drama_json_is_a_loss_and_defaults_apply(tmp_path, make_video, content):
    drama = tmp_path / "d1"
    drama.mkdir()
    make_video(drama / "ep1.mp4")
    (drama / "drama.json").write_text(content)
    manifest = build_manifest(str(drama), "d1")
    assert len(manifest.episodes) == 1
    assert manifest.info.title == "d1"
    assert [loss.reason for loss in manifest.losses] == ["invalid_drama_json"]


def test_non_utf8_names_are_a_loss_and_unicode_names_are_episodes(tmp_path, make_video):
    drama = tmp_path / "d2"
    drama.mkdir()
    make_video(drama / "第1集.mp4")
    path, _ = make_video(tmp_path / "x.mp4", [((1, 2, 250), 0.4, "start")])
    os.rename(path, os.path.join(os.fsencode(drama), b"ep2-\xff.mp4"))
    manifest = build_manifest(str(drama), "d2")
    assert [e.file_name for e in manifest.episodes] == ["第1集.mp4"]
    manifest.episodes[0].episode_id.encode("ascii")  # ids are plain ASCII path segments
    [loss] = manifest.losses
    assert loss.reason == "non_utf8_name" and "rename" in loss.detail
    loss.detail.encode("utf-8")  # storable as text
