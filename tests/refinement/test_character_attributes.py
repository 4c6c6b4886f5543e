"""DeepFace decides a person's age, gender and emotion only where it conflicts with the MLLM
(after its test-time-augmentation vote), the conflict is recorded, and the shooting script
carries the adopted values with their sources.

The face detector and DeepFace's attribute models are stand-ins with scripted answers, so
each case is exact; tests/refinement/test_characters.py runs the real models."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest

from skyscript_assets.models.faces import FaceAttributes
from skyscript_assets.schema import CharacterInShot
from skyscript_assets.stages.refinement.characters import (
    RefinementModels,
    attribute_conflicts,
    mllm_emotion_classes,
    refine_frames,
)
from skyscript_assets.stages.scripts.audio import AudioSignals
from skyscript_assets.stages.scripts.shooting_scripts import (
    KeyframeEvidence,
    ShotEvidence,
    assemble_episode,
    character_in_shot,
    shot_music,
)

IMAGE = np.full((360, 640, 3), 120, np.uint8)


def face(age=30.0, gender="man", emotion="happy") -> FaceAttributes:
    """DeepFace's answer, with the probabilities the vote averages."""
    genders = {"man": 0.9, "woman": 0.1} if gender == "man" else {"man": 0.1, "woman": 0.9}
    emotions = {
        e: (0.7 if e == emotion else 0.05) for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    }
    return FaceAttributes(age=age, gender=gender, emotion=emotion, scores={"gender": genders, "emotion": emotions})


class OneFace:
    def detect(self, images):
        return [[SimpleNamespace(box=(270, 100, 370, 220))] for _ in images]


class ScriptedDeepFace:
    """The first call (every face once) answers `first`; later calls (augmentations) `voted`."""

    def __init__(self, first: FaceAttributes, voted: FaceAttributes | None = None):
        self.first, self.voted, self.calls = first, voted or first, []

    def analyze(self, crops):
        self.calls.append(len(crops))
        return [self.first if len(self.calls) == 1 else self.voted for _ in crops]


def refine(person: dict, first: FaceAttributes, voted: FaceAttributes | None = None):
    deepface = ScriptedDeepFace(first, voted)
    frames, losses, flags = refine_frames(RefinementModels(OneFace(), deepface), [("ep1/kf0000", IMAGE, [person])])
    assert losses == []
    return frames[0].characters[0], flags, deepface.calls


def test_agreement_keeps_the_mllm_emotion_and_runs_no_augmentation():
    person = {"age": "adult", "gender": "male", "emotion": "worried or concerned"}
    character, flags, calls = refine(person, face(34, "man", "fear"))
    assert (character.age, character.gender, character.emotion) == ("adult", "male", "worried or concerned")
    assert character.sources == {"age": "mllm", "gender": "mllm", "emotion": "mllm"}
    assert character.conflicts == [] and character.disputes == [] and character.tta_runs == 0 and calls == [1]
    assert flags == []


def test_a_face_that_matched_does_not_override_an_agreeing_emotion():
    """DeepFace says neutral; the MLLM's "Reflective and thoughtful" allows neutral: the MLLM's words stay."""
    character, _, _ = refine(
        {"emotion": "Reflective and thoughtful", "gender": "female"}, face(30, "woman", "neutral")
    )
    assert character.emotion == "Reflective and thoughtful" and character.sources["emotion"] == "mllm"


def test_an_emotion_conflict_runs_the_vote_and_deepface_wins():
    character, flags, calls = refine(
        {"age": "adult", "gender": "male", "emotion": "happy"}, face(34, "man", "angry"), face(35, "man", "angry")
    )
    assert calls == [1, 6] and character.tta_runs == 6  # six augmentations voted
    assert character.emotion == "angry" and character.sources["emotion"] == "deepface"
    assert (character.age, character.gender) == ("adult", "male")  # no conflict there: the MLLM's
    assert character.conflicts == ["emotion"]
    assert character.disputes == [
        {"field": "emotion", "mllm": "happy", "deepface": "angry", "adopted": "deepface", "tta_runs": 6}
    ]
    assert [f.reason for f in flags] == ["face_conflict"] and "emotion" in flags[0].detail


def test_the_vote_can_side_with_the_mllm_and_the_dispute_is_still_recorded():
    character, flags, _ = refine(
        {"age": "adult", "gender": "male"}, face(34, "woman", "happy"), face(34, "man", "happy")
    )
    assert character.gender == "male" and character.sources["gender"] == "mllm"
    assert character.conflicts == [] and flags == []  # settled by the vote: no conflict flag
    assert character.disputes == [
        {"field": "gender", "mllm": "male", "deepface": "male", "adopted": "mllm", "tta_runs": 6}
    ]


def test_the_tta_age_and_gender_verdict_is_adopted_not_dropped():
    character, _, _ = refine(
        {"age": "child", "gender": "female", "emotion": "sad"}, face(52, "man", "sad"), face(47.6, "man", "sad")
    )
    assert (character.age, character.gender, character.emotion) == ("48", "male", "sad")
    assert character.sources == {"age": "deepface", "gender": "deepface", "emotion": "mllm"}
    assert sorted(d["field"] for d in character.disputes) == ["age", "gender"]
    assert {d["field"]: d["mllm"] for d in character.disputes} == {"age": "child", "gender": "female"}


def test_deepface_fills_only_what_the_mllm_left_empty():
    character, _, calls = refine({"type": "person"}, face(27.4, "woman", "surprise"))
    assert (character.age, character.gender, character.emotion) == ("27", "female", "surprise")
    assert character.sources == {"age": "deepface", "gender": "deepface", "emotion": "deepface"}
    assert character.disputes == [] and calls == [1]


def test_without_deepface_the_mllm_values_stand():
    frames, _, _ = refine_frames(RefinementModels(OneFace()), [("kf", IMAGE, [{"age": "adult", "emotion": "sad"}])])
    character = frames[0].characters[0]
    assert (character.age, character.emotion, character.gender) == ("adult", "sad", None)
    assert character.sources == {"age": "mllm", "emotion": "mllm"} and character.face is None


def test_emotion_words_as_deepface_classes():
    assert mllm_emotion_classes("happy") == {"happy"}
    assert mllm_emotion_classes("worried or concerned") == {"fear", "sad", "neutral"}
    assert mllm_emotion_classes("Regretful") == {"sad", "neutral"}
    assert mllm_emotion_classes("Secretly delighted.") == {"happy"}
    assert mllm_emotion_classes("inscrutable") is None and mllm_emotion_classes(None) is None
    assert (
        attribute_conflicts({"emotion": "inscrutable"}, face(emotion="angry")) == []
    )  # unknown words cannot conflict
    assert attribute_conflicts({"emotion": "calm"}, face(emotion="angry")) == ["emotion"]


def _refined_person(person: dict, first: FaceAttributes, voted: FaceAttributes | None = None, **extra) -> dict:
    """A person as character_refinements stores it (CharacterRefinement as JSON, with its line)."""
    character, _, _ = refine(person, first, voted)
    return json.loads(json.dumps({**asdict(character), **extra}, default=str))


def test_the_shooting_script_takes_the_adopted_values_with_sources_and_conflicts():
    person = {
        "type": "woman",
        "age": "adult",
        "gender": "female",
        "emotion": "happy",
        "shot_type": "close_up",
        "looks": "red coat",
        "actions": "waves",
    }
    refined = _refined_person(
        person, face(30, "woman", "sad"), face(31, "woman", "sad"), line="Goodbye.", line_source="subtitle"
    )
    character = character_in_shot("char-1", "Ann", person, refined)
    assert isinstance(character, CharacterInShot)
    assert (character.type, character.age, character.gender, character.emotion) == ("woman", "adult", "female", "sad")
    assert character.shot_type == "close_up" and (character.line, character.line_source) == ("Goodbye.", "subtitle")
    assert character.sources == {"age": "mllm", "gender": "mllm", "emotion": "deepface"}
    [conflict] = character.conflicts
    assert (conflict.field, conflict.mllm, conflict.deepface, conflict.adopted, conflict.tta_runs) == (
        "emotion",
        "happy",
        "sad",
        "deepface",
        6,
    )
    # a refinement of an older stage version (no sources): the MLLM's values, never DeepFace's raw emotion
    old = {"face_box": [1, 2, 3, 4], "face": {"emotion": "angry", "age": 50.0}, "age": "adult", "gender": "female"}
    legacy = character_in_shot("char-1", "Ann", person, old)
    assert legacy.emotion == "happy" and legacy.sources["emotion"] == "mllm" and legacy.line is None


def test_assembled_shot_carries_people_objects_and_music():
    person = {
        "type": "person",
        "age": "adult",
        "gender": "male",
        "emotion": "happy",
        "shot_type": "medium",
        "line": "Sit down.",
    }
    annotation = {
        "people": [person],
        "bgm": {"present": True, "genre": "Pop", "mood": "Romantic"},
        "objects": [
            {"name": "table", "description": "white cloth", "shot_type": "medium"},
            {"name": "plants", "shot_type": "background"},
        ],
    }
    refined = _refined_person(person, face(35, "man", "happy"), line="Sit down.", line_source="mllm_guess")
    keyframe = KeyframeEvidence(
        "ep1/kf0000", IMAGE, annotation, [refined], [{"name": "table", "box": [10, 200, 300, 350], "phantom": False}]
    )
    music = AudioSignals(loudness_db=-20.0, music=True, tonality=0.8, tempo_bpm=72.0)
    figures = Counter()
    [scene] = assemble_episode(
        "d",
        "ep1",
        [ShotEvidence(0, 0.0, 2.0, [keyframe], audio=music)],
        {("ep1/kf0000", 0): ("char-1", "Ben")},
        figures,
    )
    [shot] = scene.shots
    [ben] = shot.characters
    assert (ben.name, ben.emotion, ben.line_source, ben.sources["emotion"]) == ("Ben", "happy", "mllm_guess", "mllm")
    objects = {o.name: o for o in shot.objects}
    assert objects["table"].shot_type == "medium" and objects["table"].box == (10, 200, 300, 350)
    assert objects["table"].description == "white cloth" and objects["plants"].shot_type == "background"
    # the audio decides presence and BPM, the MLLM gives genre and mood; no tempo word: from the BPM
    assert shot.music.model_dump(exclude={"sources"}) == {
        "present": True,
        "genre": "Pop",
        "mood": "Romantic",
        "tempo": "Slow Tempo",
        "tempo_bpm": 72.0,
    }
    assert shot.music.sources == {
        "present": "audio",
        "tempo_bpm": "audio",
        "genre": "mllm",
        "mood": "mllm",
        "tempo": "audio",
    }
    assert shot.sources["event"] == "derived" and shot.sources["focus"] == "derived"
    assert shot.sources["highlight_score"] == "audio"  # no VAD: the loudness and the cut pace


@pytest.mark.parametrize(
    ("bgm", "audio", "expected"),
    [
        ([], None, None),  # nobody said anything
        ([{"present": True, "genre": "Pop"}], None, {"present": True, "genre": "Pop"}),
        # heard no music: the MLLM's guessed genre and mood go
        (
            [{"present": True, "genre": "Pop", "mood": "sad"}],
            AudioSignals(-30.0, False, 0.1, None),
            {"present": False},
        ),
        # music heard, the MLLM said none: presence and BPM from the audio only
        (
            [{"present": False}],
            AudioSignals(-20.0, True, 0.8, 130.0),
            {"present": True, "tempo_bpm": 130.0, "tempo": "Fast Tempo"},
        ),
        # two keyframes: majority presence, first genre
        (
            [{"present": True, "genre": "Jazz"}, {"present": True, "genre": "Pop", "tempo": "Slow"}],
            None,
            {"present": True, "genre": "Jazz", "tempo": "Slow"},
        ),
    ],
)
def test_music_merges_the_mllm_bgm_with_the_audio(bgm, audio, expected):
    music = shot_music(bgm, audio)
    if expected is None:
        assert music is None
    else:
        assert {k: v for k, v in music.model_dump(exclude={"sources"}).items() if v is not None} == expected
