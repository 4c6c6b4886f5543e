"""Cleaning raw MLLM output: the real sample, a generated corpus of broken replies, losses."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from skyscript_assets.schema import FrameAnnotation, LossRecord, ShotType, shot_type_from_text
from skyscript_assets.stages.annotation.clean_json import (
    CleaningStats,
    CleanOutcome,
    clean_annotation,
    clean_raw_output,
)
from skyscript_assets.stages.annotation.json_text import ascii_structure, json_segments
from skyscript_assets.stages.annotation.normalise import normalise_frame

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "skyscript_sample_en.json"


@pytest.fixture(scope="module")
def sample_cases() -> dict:
    if not SAMPLE.is_file():
        pytest.skip("../shared/reference/skyscript_sample_en.json is absent")
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


# A frame in the prompt's own snake_case format, with an apostrophe, a quote and CJK text.
PROMPT_FORMAT_FRAME = {
    "scene": {"number": 3, "name": "Hospital corridor"},
    "bgm": {"present": False, "genre": None, "mood": None, "tempo": None},
    "scene_description": 'A long corridor; a nurse\'s trolley stands by a door marked "ICU".',
    "people": [
        {
            "type": "woman",
            "age": "young adult",
            "gender": "female",
            "looks": "white coat, 白色外套",
            "emotion": "anxious",
            "actions": "running",
            "vad": {"valence": 2.5, "arousal": 8, "dominance": 3},
            "temperament": "determined",
            "facial_attractiveness": 4,
            "shot_type": "full",
            "line": None,
        },
    ],
    "objects": [{"name": "trolley", "description": "metal trolley", "shot_type": "background"}],
}


def test_every_sample_case_cleans_to_the_schema_with_numeric_vad(sample_cases):
    result = clean_raw_output(json.dumps(sample_cases))
    assert result.outcome is CleanOutcome.PARSED_AS_IS
    assert len(result.frames) == len(sample_cases) == 20
    assert all(isinstance(f, FrameAnnotation) for f in result.frames)
    people = [p for f in result.frames for p in f.people]
    assert len(people) == sum(len(c["people"]) for c in sample_cases.values())
    with_vad = [p for p in people if p.vad is not None]
    assert len(with_vad) == sum("Continuous Emotion" in p for c in sample_cases.values() for p in c["people"])
    assert all(
        isinstance(v, float) and 1 <= v <= 9 for p in with_vad for v in (p.vad.valence, p.vad.arousal, p.vad.dominance)
    )
    # people without the emotion fields keep them null: nothing is invented
    bare = [p for p in people if p.vad is None]
    assert bare and all(p.emotion is None and p.facial_attractiveness is None for p in bare)
    first = result.frames[0]
    assert first.scene.number == 1 and first.bgm.present is True and first.bgm.genre == "Pop"
    assert first.people[0].shot_type is ShotType.MEDIUM
    assert {o.shot_type for f in result.frames for o in f.objects} >= {ShotType.FOREGROUND, ShotType.BACKGROUND}
    assert result.field_issues["people.vad.valence: numeric_string"] > 0


def test_sample_cases_one_by_one_keep_the_case_order(sample_cases):
    for name, case in sample_cases.items():
        annotation, losses = clean_annotation(json.dumps(case), item=name, timestamp_s=12.5)
        assert isinstance(annotation, FrameAnnotation) and losses == [], losses
        assert annotation.timestamp_s == 12.5
        assert annotation.scene_description == case["Scene Description"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Medium Shot", ShotType.MEDIUM),
        ("medium Shot", ShotType.MEDIUM),
        ("CU", ShotType.CLOSE_UP),
        ("Close-up", ShotType.CLOSE_UP),
        ("Extreme close-up", ShotType.EXTREME_CLOSE_UP),
        ("Background", ShotType.BACKGROUND),
        ("full shot", ShotType.FULL),
        ("Wide Shot", ShotType.WIDE),
        ("特写", ShotType.CLOSE_UP),
        ("sideways", None),
    ],
)
def test_shot_type_spellings(text, expected):
    assert shot_type_from_text(text) == expected


def test_normalisation_converts_clamps_and_counts():
    issues = __import__("collections").Counter()
    frame = normalise_frame(
        {
            "SCENE": ["2", "Rooftop"],
            "bgm": "no",
            "Characters": [
                {
                    "Object": "man",
                    "Continuous Emotion": "V: 7, A: 12, D: 4",
                    "Facial Attractiveness": "4.5 out of 5",
                    "Shot Type": "Foreground",
                    "Mood ring": 1,
                }
            ],
            "Objects": ["umbrella"],
            "Timestamp": "00:01:02.5",
        },
        issues,
    )
    person = frame.people[0]
    assert frame.scene.number == 2 and frame.scene.name == "Rooftop" and frame.bgm.present is False
    assert (person.vad.valence, person.vad.arousal, person.vad.dominance) == (7.0, 9.0, 4.0)
    assert person.facial_attractiveness == 4.5
    assert person.shot_type is None  # a person is not "foreground": dropped, not guessed
    assert frame.objects[0].name == "umbrella" and frame.timestamp_s == 62.5
    assert issues["people.vad.arousal: out_of_range"] == 1
    assert issues["people.shot_type: unknown_value"] == 1
    assert issues["people.mood_ring: unknown_key"] == 1


# --- the generated corpus of broken replies --------------------------------------------------


def _dump_with(value, braces="{}", brackets="[]", colon=":", comma=",", quotes='""') -> str:
    """JSON-like text with other punctuation; strings are left raw inside the new quotes."""
    again = lambda v: _dump_with(v, braces, brackets, colon, comma, quotes)  # noqa: E731
    if isinstance(value, dict):
        items = comma.join(f"{quotes[0]}{k}{quotes[1]}{colon}{again(v)}" for k, v in value.items())
        return braces[0] + items + braces[1]
    if isinstance(value, list):
        return brackets[0] + comma.join(again(v) for v in value) + brackets[1]
    if isinstance(value, str):
        return quotes[0] + value + quotes[1]
    return json.dumps(value)


def _full_width(value) -> str:
    return _dump_with(value, "｛｝", "［］", "：", "，", "“”")


def _unquote_keys(text: str) -> str:
    return re.sub(r'"([A-Za-z][\w ()]*)"\s*:', r"\1:", text)


def _trailing_commas(text: str) -> str:
    return re.sub(r"([}\]\"\d])(\s*[}\]])", r"\1,\2", text)


CORRUPTIONS = {
    "trailing_commas": lambda v: _trailing_commas(json.dumps(v, indent=2)),
    "python_literals": lambda v: repr(v),
    "fence_and_trailing_comma": lambda v: "```json\n" + _trailing_commas(json.dumps(v, indent=2)) + "\n```",
    "unquoted_keys": lambda v: _unquote_keys(json.dumps(v, indent=1)),
    "prose_around": lambda v: (
        "Sure! Here is the annotation you asked for:\n\n"
        + json.dumps(v)
        + "\n\nI hope this helps. Let me know if {anything} else is needed."
    ),
    "full_width_punctuation": _full_width,
    "missing_commas": lambda v: re.sub(r'",\n', '"\n', json.dumps(v, indent=2)),
    "single_quotes": lambda v: _dump_with(v, quotes="''", comma=", ", colon=": "),
}


def _corpus_frames(sample_cases) -> list[dict]:
    return list(sample_cases.values()) + [PROMPT_FORMAT_FRAME, {"frames": [PROMPT_FORMAT_FRAME] * 2}]


def _expected(value) -> list[FrameAnnotation]:
    return [f for f in clean_raw_output(json.dumps(value)).frames]


def test_corrupted_outputs_are_recovered_locally(sample_cases):
    total, recovered, failures = 0, 0, []
    for value in _corpus_frames(sample_cases):
        expected = _expected(value)
        for kind, corrupt in CORRUPTIONS.items():
            text = corrupt(value)
            result = clean_raw_output(text, [f"kf{i}" for i in range(len(expected))])
            total += 1
            assert result.unparseable
            if result.outcome is CleanOutcome.FIXED_LOCALLY and _same(result.frames, expected, kind):
                recovered += 1
            else:
                failures.append((kind, result.outcome, result.frames[0]))
    assert total >= 8 * 22
    assert recovered / total >= 0.99, failures[:3]


@pytest.mark.parametrize("fence", ["```json\n{}\n```", "```\n{}\n```\n", "\n ```JSON {} ``` "])
def test_code_fences_alone_count_as_parsed_as_is(fence):
    result = clean_raw_output(fence.replace("{}", json.dumps(PROMPT_FORMAT_FRAME)), ["kf"])
    assert result.outcome is CleanOutcome.PARSED_AS_IS and not result.unparseable
    assert result.frames == _expected(PROMPT_FORMAT_FRAME)


def _same(frames, expected, kind) -> bool:
    return frames == expected


def test_truncated_outputs_never_keep_a_cut_frame(sample_cases):
    rng = random.Random(7)
    frames = list(sample_cases.values())[:3]
    text = json.dumps({"frames": frames}, indent=2)
    complete = _expected({"frames": frames})
    kept_whole = 0
    for _ in range(60):
        cut = rng.randrange(1, len(text) - 1)
        result = clean_raw_output(text[:cut], ["a", "b", "c"])
        assert len(result.frames) + len(result.losses) == 3
        for item, got in zip(result.items, result.frames):
            assert got == complete["abc".index(item)]  # a kept frame is whole, never completed by guessing
            kept_whole += 1
        for loss in result.losses:
            assert loss.reason in {"truncated", "missing_frame", "no_json", "not_an_annotation"}
            assert loss.stage == "cleaned_json" and "\n" not in loss.detail
    assert kept_whole > 0


def test_truncated_single_frame_is_a_truncation_loss(sample_cases):
    text = json.dumps(sample_cases["Case_1"])
    annotation, [loss] = clean_annotation(text[: len(text) // 2], item="ep1/shot3/kf0")
    assert annotation is None and isinstance(loss, LossRecord)
    assert (loss.item, loss.reason) == ("ep1/shot3/kf0", "truncated")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty_output"),
        ("   \n ", "empty_output"),
        ("I'm sorry, I cannot describe this image.", "no_json"),
        ('["just", "strings"]', "not_an_annotation"),
        ('{"weather": "sunny"}', "not_an_annotation"),
    ],
)
def test_unrecoverable_replies_are_losses_with_reasons(text, reason):
    result = clean_raw_output(text, ["kf1", "kf2"])
    assert result.outcome is CleanOutcome.LOST
    assert [(f.item, f.reason) for f in result.losses] == [("kf1", reason), ("kf2", reason)]


def test_wrong_types_become_null_and_are_counted():
    text = json.dumps(
        {
            "scene": {"number": "one", "name": ["Park", "gate"]},
            "people": "nobody",
            "objects": [{"name": "kite", "shot_type": 7}],
            "bgm": {"present": "maybe"},
        }
    )
    result = clean_raw_output(text, ["kf"])
    frame = result.frames[0]
    assert isinstance(frame, FrameAnnotation)
    assert frame.scene.number is None and frame.scene.name == "Park, gate"
    assert frame.people == [] and frame.objects[0].shot_type is None and frame.bgm is None
    assert result.field_issues["scene.number: not_a_number"] == 1
    assert result.field_issues["people: wrong_type"] == 1
    assert result.field_issues["bgm.present: not_a_boolean"] == 1


def test_frame_count_mismatch_names_the_missing_frames():
    text = json.dumps([PROMPT_FORMAT_FRAME])
    result = clean_raw_output(text, ["kf1", "kf2"])
    assert isinstance(result.frames[0], FrameAnnotation) and result.items == ["kf1"]
    assert [(f.item, f.reason) for f in result.losses] == [("kf2", "missing_frame")]
    extra = clean_raw_output(json.dumps([PROMPT_FORMAT_FRAME] * 3), ["kf1"])
    assert len(extra.frames) == 1 and extra.field_issues["frames: extra_frames"] == 2


def test_llm_repair_is_called_only_for_what_local_repair_cannot_read():
    calls = []

    def repairer(text, problem):
        calls.append((text, problem))
        return json.dumps(PROMPT_FORMAT_FRAME)

    fine = clean_raw_output("```json\n" + json.dumps(PROMPT_FORMAT_FRAME) + ",}\n```", ["kf"], repairer=repairer)
    assert fine.outcome is CleanOutcome.FIXED_LOCALLY and calls == []
    fixed = clean_raw_output("scene is a corridor, one woman running", ["kf"], repairer=repairer)
    assert fixed.outcome is CleanOutcome.FIXED_BY_LLM and len(calls) == 1
    assert fixed.frames[0].scene.name == "Hospital corridor"
    assert "no JSON" in calls[0][1]


def test_a_failing_or_useless_llm_repair_is_a_loss_not_a_crash():
    def broken(text, problem):
        raise TimeoutError("the repair server did not answer\nin time")

    lost = clean_raw_output("no json here", ["kf"], repairer=broken)
    assert lost.outcome is CleanOutcome.LOST
    assert lost.losses[0].reason == "llm_repair_failed" and "\n" not in lost.losses[0].detail
    useless = clean_raw_output("no json here", ["kf"], repairer=lambda t, p: "still no json")
    assert useless.losses[0].reason == "no_json" and "LLM repair" in useless.losses[0].detail


def test_json_segments_report_open_depth():
    assert json_segments('x {"a": [1, {"b": "}"}]} y') == [('{"a": [1, {"b": "}"}]}', 0)]
    assert json_segments('{"a": [1, {"b"') == [('{"a": [1, {"b"', 3)]


def test_cleaning_stats_separate_the_outcomes():
    stats = CleaningStats()
    frame = json.dumps(PROMPT_FORMAT_FRAME)
    for text, items in [
        (frame, ["a"]),
        (frame + ",", ["b"]),
        ("nothing", ["c", "d"]),
        (json.dumps([PROMPT_FORMAT_FRAME]), ["e", "f"]),
    ]:
        stats.add(clean_raw_output(text, items))
    assert dict(stats.replies) == {"parsed_as_is": 2, "fixed_locally": 1, "lost": 1}
    assert (stats.frames_kept, stats.frames_lost) == (3, 3)
    assert stats.frame_loss_rate == 0.5 and stats.unparseable_rate == 0.5


@pytest.mark.parametrize(
    "text",
    [
        "Image 1:\n```json\n{}\n```\nImage 2:\n```json\n{}\n```",
        "Image 1: {} \n\nImage 2: {}",
    ],
)
def test_one_object_per_image_becomes_a_list_of_frames(text):
    frame = json.dumps(PROMPT_FORMAT_FRAME)
    result = clean_raw_output(text.replace("{}", frame), ["kf1", "kf2"])
    assert result.outcome is CleanOutcome.FIXED_LOCALLY
    assert result.frames == _expected(PROMPT_FORMAT_FRAME) * 2


def test_a_reply_cut_before_its_first_frame_never_goes_to_the_llm():
    calls = []
    result = clean_raw_output('{"frames": [{"sce', ["kf"], repairer=lambda t, p: calls.append(t) or "{}")
    assert calls == [] and result.losses[0].reason == "truncated"


def test_a_frame_that_still_fails_validation_is_a_loss_not_a_crash(monkeypatch):
    from skyscript_assets.stages.annotation import normalise as normalise_annotation

    monkeypatch.setattr(
        normalise_annotation._Normaliser, "frame", lambda self, value: {"people": [{"vad": {"valence": 42}}]}
    )
    result = clean_raw_output(json.dumps([PROMPT_FORMAT_FRAME] * 2), ["kf1", "kf2"])
    assert [(f.item, f.reason) for f in result.losses] == [("kf1", "schema_violation"), ("kf2", "schema_violation")]
    assert "less than or equal to 9" in result.losses[0].detail


def test_a_reply_that_copies_the_prompts_form_invents_nothing():
    from skyscript_assets.prompts import OUTPUT_EXAMPLE

    result = clean_raw_output(json.dumps(OUTPUT_EXAMPLE), ["kf"])
    assert result.outcome is CleanOutcome.LOST
    assert (result.losses[0].item, result.losses[0].reason) == ("kf", "empty_annotation")
    assert result.field_issues["people.vad.valence: not_a_number"] == 1
    assert result.field_issues["scene_description: template_echo"] == 1


def test_full_width_structure_becomes_ascii_while_string_values_keep_their_punctuation():
    text = "｛“line”：“他说：“走，快走”，[笑]”，\n\u3000“vad”：［５、４．５］，“note”：‘it’s “fine”’｝"
    assert json.loads(ascii_structure(text)) == {
        "line": "他说：“走，快走”，[笑]",
        "vad": [5, 4.5],
        "note": "it’s “fine”",
    }
    ascii_json = '{"line": "他说：“走，快走”", "n": 1}'
    assert ascii_structure(ascii_json) == ascii_json  # strings in ASCII quotes are left alone


def test_a_reply_encoded_again_as_a_json_string_is_decoded_and_counted_unparseable():
    frame = json.dumps(PROMPT_FORMAT_FRAME, ensure_ascii=False, indent=2)
    for text in (
        json.dumps(frame),
        "Here is the result: " + json.dumps(frame, ensure_ascii=False),
        json.dumps(json.dumps(frame)),
    ):  # encoded twice over
        result = clean_raw_output(text, ["kf"])
        assert result.outcome is CleanOutcome.FIXED_LOCALLY and result.unparseable
        assert result.frames == _expected(PROMPT_FORMAT_FRAME)
    cut = clean_raw_output("Here: " + json.dumps(frame)[:200], ["kf"])
    assert cut.losses[0].reason == "truncated"


@pytest.mark.parametrize("text", ["[" * 5000, "{" * 5000, "[" * 3000 + "]" * 3000, '{"a":' * 2000 + "1" + "}" * 2000])
def test_absurd_nesting_is_a_loss_not_a_crash(text):
    result = clean_raw_output(text, ["kf"])
    assert result.outcome is CleanOutcome.LOST and result.frames == [] and isinstance(result.losses[0], LossRecord)
