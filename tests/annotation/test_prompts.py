"""Versioned prompt templates shipped inside the package."""

from __future__ import annotations

import pytest

from skyscript_assets.prompts import (
    FRAME_ANNOTATION,
    JSON_REPAIR,
    frame_annotation_prompt,
    load_prompt,
    output_json_schema,
)
from skyscript_assets.schema import FrameAnnotation


def test_frame_annotation_prompt_names_the_image_count_and_every_field():
    template = load_prompt(FRAME_ANNOTATION)
    assert template.version == "frame_annotation/v2"
    text = frame_annotation_prompt(3, template)
    assert "You receive 3 image(s)" in text and "$" not in text
    for field in (
        "scene",
        "bgm",
        "scene_description",
        "valence",
        "arousal",
        "dominance",
        "temperament",
        "facial_attractiveness",
        "shot_type",
        "extreme_close_up",
        "foreground",
        "line",
        "objects",
    ):
        assert field in text


def test_the_prompt_no_longer_invites_the_model_to_invent_dialogue():
    old, new = load_prompt(FRAME_ANNOTATION, 1).text, load_prompt(FRAME_ANNOTATION).text
    assert "probably saying" in old and "probably" not in new
    assert "never guess or invent what a person says" in new


def test_unknown_prompts_and_versions_are_clear_errors():
    with pytest.raises(KeyError, match="no prompt template named 'poem'"):
        load_prompt("poem")
    with pytest.raises(KeyError, match=r"has no version 9 \(shipped: \[1, 2\]\)"):
        load_prompt(FRAME_ANNOTATION, 9)


def test_repair_prompt_keeps_the_text_verbatim():
    text = load_prompt(JSON_REPAIR).render(problem="unbalanced braces", text='{"a": "$x {"')
    assert text.endswith('{"a": "$x {"\n') and "unbalanced braces" in text


def test_output_schema_matches_the_annotation_model():
    schema = output_json_schema()
    frame = schema["properties"]["frames"]["items"]
    assert set(frame["properties"]) == set(FrameAnnotation.model_fields) - {"timestamp_s"}
    assert {"PersonAnnotation", "ContinuousEmotion", "ShotType"} <= set(schema["$defs"])
