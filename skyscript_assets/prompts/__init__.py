"""Versioned prompt templates, shipped inside the package.

A template is `<name>_v<N>.txt` beside this file, with `string.Template` placeholders
(`$image_count`, ...). A change of wording is a new file and a new version, never an
edit in place: the version goes into every row's provenance.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from string import Template

FRAME_ANNOTATION = "frame_annotation"
JSON_REPAIR = "json_repair"
_FILE = re.compile(r"^(?P<name>[a-z_]+)_v(?P<number>\d+)\.txt$")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str  # "frame_annotation/v2": what provenance records
    text: str

    def render(self, **values) -> str:
        return Template(self.text).substitute(**{k: str(v) for k, v in values.items()})


def load_prompt(name: str, version: int | None = None) -> PromptTemplate:
    """The template `name` at `version` (default: the newest shipped)."""
    versions = {
        int(m.group("number")): entry
        for entry in resources.files(__package__).iterdir()
        if (m := _FILE.match(entry.name)) and m.group("name") == name
    }
    if not versions:
        raise KeyError(f"no prompt template named {name!r}")
    number = max(versions) if version is None else version
    if number not in versions:
        raise KeyError(f"prompt {name!r} has no version {number} (shipped: {sorted(versions)})")
    return PromptTemplate(name, f"{name}/v{number}", versions[number].read_text(encoding="utf-8"))


def frame_annotation_prompt(image_count: int, template: PromptTemplate | None = None) -> str:
    """The annotation request for `image_count` images of one shot."""
    template = template or load_prompt(FRAME_ANNOTATION)
    return template.render(image_count=image_count, output_schema=json.dumps(OUTPUT_EXAMPLE, indent=1))


# The reply's shape, shown in the prompt (types as placeholders) ...
OUTPUT_EXAMPLE = {
    "frames": [
        {
            "scene": {"number": "integer or null", "name": "string"},
            "bgm": {"present": "true/false", "genre": "string", "mood": "string", "tempo": "string"},
            "scene_description": "string",
            "people": [
                {
                    "type": "string",
                    "age": "string",
                    "gender": "string",
                    "looks": "string",
                    "emotion": "string",
                    "actions": "string",
                    "vad": {"valence": "1-9", "arousal": "1-9", "dominance": "1-9"},
                    "temperament": "string",
                    "facial_attractiveness": "1-5",
                    "shot_type": "extreme_close_up|close_up|medium|full|wide",
                    "line": "string or null",
                }
            ],
            "objects": [
                {
                    "name": "string",
                    "description": "string",
                    "shot_type": "extreme_close_up|close_up|medium|full|wide|foreground|background",
                }
            ],
        }
    ]
}


def prompt_placeholders() -> frozenset[str]:
    """The type placeholders of OUTPUT_EXAMPLE ("string", "1-9", ...), lowercased: a reply that
    repeats one copied the form instead of answering."""

    def leaves(value):
        if isinstance(value, dict):
            return [leaf for v in value.values() for leaf in leaves(v)]
        if isinstance(value, list):
            return [leaf for v in value for leaf in leaves(v)]
        return [str(value).lower()]

    return frozenset(leaves(OUTPUT_EXAMPLE))


def output_json_schema() -> dict:
    """... and as a JSON schema, for servers that constrain decoding (`response_format`)."""
    from skyscript_assets.schema import FrameAnnotation

    frame = FrameAnnotation.model_json_schema()
    defs = frame.pop("$defs", {})
    frame["properties"].pop("timestamp_s", None)  # the keyframe's decoded time is the truth, not the model's guess
    return {
        "type": "object",
        "properties": {"frames": {"type": "array", "items": frame}},
        "required": ["frames"],
        "$defs": defs,
    }
