"""Restoration and release stages: Fountain rendering checked by an independent parser,
filters, near-duplicate removal, Parquet shards that `datasets` loads."""

import json

import fsspec
import pytest

from skyscript_assets.schema import CharacterInShot, ContinuousEmotion, ShootingScript, ShotMusic, ShotScript
from skyscript_assets.stages.release.fountain import read_fountain, render_fountain
from skyscript_assets.stages.release.restore import filter_restorations, near_duplicate_indices, style_variants
from skyscript_assets.stages.release.shards import PAIR_SCHEMA, dataset_card, write_shards


def _script() -> ShootingScript:
    emma = CharacterInShot(
        character_id="char-1",
        name="Emma",
        emotion="Sad",
        vad=ContinuousEmotion(valence=3, arousal=4, dominance=5),
        posture="standing",
        line="You came back. I kept your cup.",
        location_cm=(0, 165, 300),
    )
    stranger = CharacterInShot(character_id="char-2", name="Character 2", action="walks in")
    return ShootingScript(
        drama_id="sample-drama",
        episode_id="ep02",
        scene_number=3,
        interior=True,
        location="Coffee shop",
        time_of_day="day",
        description="A quiet café; rain on the window.",
        shots=[
            ShotScript(
                shot_number=1,
                start_s=0.0,
                end_s=2.0,
                shot_size="wide",
                camera_movement="pan",
                characters=[stranger],
                music=ShotMusic(present=True, mood="melancholic", genre="piano"),
            ),
            ShotScript(
                shot_number=2,
                start_s=2.0,
                end_s=4.5,
                shot_size="close_up",
                camera_angle="eye_level",
                focus="Emma",
                characters=[emma],
            ),
        ],
    )


def test_rendered_screenplay_parses_as_fountain_with_heading_cue_and_line():
    script = _script()
    text = render_fountain(script)
    document = read_fountain(text)
    assert document.headings == ["INT. COFFEE SHOP - DAY"]
    assert document.speakers == ["EMMA"]
    assert document.dialogue == ["You came back. I kept your cup."]
    assert any("WIDE SHOT" in line and "PAN" in line for line in document.action)
    # The forced-action camera lines must not be mistaken for character cues.
    assert "CLOSE UP, EYE LEVEL ON EMMA" not in document.speakers
    assert render_fountain(script) == text  # deterministic


def test_filters_drop_broken_off_topic_and_near_duplicate_restorations():
    script = _script()
    reference = render_fountain(script)
    variant = reference.replace(
        "A quiet café; rain on the window.", "Rain streaks the glass of a near-empty café; a kettle hisses."
    )
    texts = [
        reference,  # kept
        reference + "\n",  # near-copy of 0
        variant,  # different enough: kept
        "Just some prose with no heading at all, about Emma in a café, long enough to pass the length gate easily.",
        reference.replace("Emma", "Zoe").replace("EMMA", "ZOE"),  # loses the named character
        "",
        reference * 10,  # far too long
    ]
    kept, losses = filter_restorations(script, texts, reference)
    assert kept == [0, 2]
    reasons = sorted(loss.reason for loss in losses)
    assert reasons == ["characters_missing", "empty", "length_out_of_bounds", "near_duplicate", "not_fountain"]


def test_near_duplicates_are_found_and_distinct_texts_kept():
    base = " ".join(f"word{i}" for i in range(200))
    texts = [base, base.replace("word5 ", "wordX "), " ".join(f"other{i}" for i in range(200))]
    assert near_duplicate_indices(texts) == {1}


def test_style_variants_are_diverse_and_seeded():
    styles = style_variants(100, seed=7)
    assert len(set(styles)) == 100
    assert style_variants(100, seed=7) == styles
    assert style_variants(100, seed=8) != styles


def test_parquet_shards_load_with_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    script = _script()
    rows = [
        {
            "pair_id": f"{script.script_id}/r{i}",
            "drama_id": script.drama_id,
            "episode_id": script.episode_id,
            "scene_number": script.scene_number,
            "shot_numbers": [1, 2],
            "restoration_index": i,
            "style": "warm drama",
            "script": render_fountain(script),
            "shooting_script_json": script.model_dump_json(),
            "shooting_script_text": "SCENE 3 INT. COFFEE SHOP - DAY",
            "highlight_score": 0.5 + i / 100,
            "calibration_status": "passed",
            "model_id": "fountain-renderer/1",
        }
        for i in range(25)
    ]
    fs = fsspec.filesystem("file")
    shards = write_shards(rows, fs, str(tmp_path / "release"), rows_per_shard=10)
    assert [s.rows for s in shards] == [10, 10, 5]
    assert not list((tmp_path / "release").glob("*.tmp"))

    from datasets import load_dataset

    dataset = load_dataset("parquet", data_files=str(tmp_path / "release" / "*.parquet"), split="train")
    assert dataset.num_rows == 25
    assert set(dataset.column_names) == set(PAIR_SCHEMA.names)
    restored = ShootingScript.model_validate(json.loads(dataset[3]["shooting_script_json"]))
    assert restored == script

    card = dataset_card(
        name="SkyScript sample",
        pairs=25,
        dramas=1,
        shooting_scripts=1,
        shard_glob="data/*.parquet",
        loss_rates={"keyframes": 0.04},
        licences=["CC BY 3.0"],
    )
    assert card.startswith("---\nconfigs:") and "| pairs | 25 |" in card and "4.00%" in card


@pytest.mark.parametrize("bad", ["INT. \n\n", "\x00\x01 garbage"])
def test_garbage_is_a_loss_not_an_exception(bad):
    script = _script()
    kept, losses = filter_restorations(script, [bad], render_fountain(script))
    assert kept == [] and len(losses) == 1


# --- Table 1 text and relationships ---------------------------------------------------------

from skyscript_assets.stages.release.relationships import compatibility, edges_by_pair, relationship_graph  # noqa: E402
from skyscript_assets.stages.scripts.table1 import shooting_script_text  # noqa: E402


def test_table1_text_has_the_papers_layout():
    text = shooting_script_text(_script())
    lines = text.splitlines()
    assert lines[0] == "SCENE 3 INT. COFFEE SHOP - DAY"
    assert "SHOT 1: WIDE SHOT" in lines and "SHOT 2: CLOSE UP" in lines
    assert "3D location of Emma: (0,165,300)" in lines
    assert 'Emma says: "You came back. I kept your cup."' in text
    assert "Camera Detail — Time: 2.5s, Shot Size: Close Up, Camera Angle: Eye Level" in lines


def _with(characters_by_shot, scene=1):
    shots = [
        ShotScript(shot_number=i + 1, start_s=i, end_s=i + 1, characters=chars)
        for i, chars in enumerate(characters_by_shot)
    ]
    return ShootingScript(drama_id="d", episode_id="ep1", scene_number=scene, location="x", shots=shots)


def test_relationship_graph_over_time():
    a = lambda **k: CharacterInShot(character_id="char-1", name="Ann", **k)  # noqa: E731
    b = lambda **k: CharacterInShot(character_id="char-2", name="Bo", **k)  # noqa: E731
    scene1 = _with(
        [
            [
                a(line="Hi.", location_cm=(0, 165, 100), vad=ContinuousEmotion(valence=8, arousal=5, dominance=5)),
                b(location_cm=(0, 165, 200), vad=ContinuousEmotion(valence=6, arousal=5, dominance=5)),
            ],
            [b(line="Hello.")],
            [a(line="Bye.")],
        ],
        scene=1,
    )
    scene2 = _with(
        [
            [
                a(vad=ContinuousEmotion(valence=2, arousal=8, dominance=5)),
                b(vad=ContinuousEmotion(valence=2, arousal=8, dominance=5)),
            ]
        ],
        scene=2,
    )
    edges = relationship_graph([scene2, scene1])
    assert [(e.scene_number, e.shots_together) for e in edges] == [(1, 1), (2, 1)]
    first, second = edges
    assert first.mean_distance_cm == 100.0 and first.mean_valence_together == 7.0
    assert (first.replies_a_to_b, first.replies_b_to_a) == (1, 1)  # Bo answers Ann, Ann answers Bo
    assert second.mean_valence_together == 2.0  # the relationship sours in scene 2
    assert list(edges_by_pair(edges)) == [("char-1", "char-2")]


def test_compatibility_score():
    warm_match = compatibility("friendly and relaxed", 4, "gentle, kind", 4)
    cold_mismatch = compatibility("cold and arrogant", 5, "stern", 1)
    assert 0 <= cold_mismatch < warm_match <= 1
    assert compatibility("friendly", None, "kind", 3) is None


def test_assembled_characters_carry_temperament_and_attractiveness_for_the_compatibility_score():
    import numpy as np

    from skyscript_assets.stages.scripts.shooting_scripts import KeyframeEvidence, ShotEvidence, assemble_episode

    annotation = {
        "scene": {"number": 1, "name": "Office"},
        "people": [
            {"temperament": "calm and kind", "facial_attractiveness": 4.0, "emotion": "happy"},
            {"emotion": "sad"},
        ],
    }
    keyframe = KeyframeEvidence("ep1/kf0", np.full((64, 48, 3), 120, np.uint8), annotation, characters=[{}, {}])
    shot = ShotEvidence(index=0, start_s=0.0, end_s=2.0, keyframes=[keyframe])
    [script] = assemble_episode(
        "d", "ep1", [shot], {("ep1/kf0", 0): ("char-1", "Ann"), ("ep1/kf0", 1): ("char-2", "Bo")}
    )
    ann, bo = script.shots[0].characters
    assert (ann.temperament, ann.facial_attractiveness) == ("calm and kind", 4.0)
    assert (bo.temperament, bo.facial_attractiveness) == (None, None)  # not said: stays null


def test_fountain_file_names_are_safe_and_unique():
    from skyscript_assets.stages.release.shards import fountain_file_name

    taken: set[str] = set()
    assert fountain_file_name("d/ep01/scene-0003/r007", taken) == "ep01__scene-0003__r007.fountain"
    assert fountain_file_name("d/../..\\evil name/scene-0001/r000", taken) == "___evil_name__scene-0001__r000.fountain"
    spaced = fountain_file_name("d/épisode 1/scene-0001/r000", taken)
    clash = fountain_file_name("d/épisode_1/scene-0001/r000", taken)
    assert spaced == "épisode_1__scene-0001__r000.fountain" and clash == "épisode_1__scene-0001__r000-2.fountain"
    assert all("/" not in name and "\\" not in name and not name.startswith(".") for name in taken)
