"""Normalising one frame of model output into `schema.FrameAnnotation`.

Keys are matched case-insensitively and through synonyms ("Continuous Emotion" -> vad,
"Valence (V)" -> valence, "object" -> a person's type or an object's name); numeric strings
become numbers, ranges are clamped, shot-type spellings map onto the enum, and values that
only repeat the prompt's form ("string", "1-9") are dropped. Every change is counted in
`issues` as "field: kind". Nothing is invented: what is missing or unusable is null.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from skyscript_assets.prompts import prompt_placeholders
from skyscript_assets.schema import SHOT_SIZES, FrameAnnotation, shot_type_from_text


def _key(name: Any) -> str:
    """'Valence (V)' -> 'valence', 'Scene Description' -> 'scene_description'."""
    text = re.sub(r"\(.*?\)", " ", str(name)).lower()
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "_", text).strip("_")


_FRAME_KEYS = {
    "scene": "scene",
    "scene_info": "scene",
    "场景": "scene",
    "bgm": "bgm",
    "background_music": "bgm",
    "music": "bgm",
    "背景音乐": "bgm",
    "scene_description": "scene_description",
    "description": "scene_description",
    "场景描述": "scene_description",
    "people": "people",
    "persons": "people",
    "person": "people",
    "characters": "people",
    "人物": "people",
    "objects": "objects",
    "items": "objects",
    "things": "objects",
    "物体": "objects",
    "timestamp": "timestamp_s",
    "timestamp_s": "timestamp_s",
    "time": "timestamp_s",
    "time_s": "timestamp_s",
}
_PERSON_KEYS = {
    "object": "type",
    "type": "type",
    "category": "type",
    "age": "age",
    "gender": "gender",
    "sex": "gender",
    "looks": "looks",
    "appearance": "looks",
    "look": "looks",
    "emotion": "emotion",
    "actions": "actions",
    "action": "actions",
    "continuous_emotion": "vad",
    "vad": "vad",
    "continuous_emotions": "vad",
    "temperament": "temperament",
    "personality": "temperament",
    "facial_attractiveness": "facial_attractiveness",
    "attractiveness": "facial_attractiveness",
    "shot_type": "shot_type",
    "shot": "shot_type",
    "shot_size": "shot_type",
    "line": "line",
    "lines": "line",
    "dialogue": "line",
    "speech": "line",
}
_OBJECT_KEYS = {
    "object": "name",
    "name": "name",
    "label": "name",
    "description": "description",
    "shot_type": "shot_type",
    "shot": "shot_type",
    "shot_size": "shot_type",
}
_SCENE_KEYS = {
    "number": "number",
    "scene_number": "number",
    "no": "number",
    "id": "number",
    "index": "number",
    "name": "name",
    "scene_name": "name",
    "location": "name",
    "title": "name",
}
_BGM_KEYS = {
    "present": "present",
    "has_bgm": "present",
    "exists": "present",
    "bgm": "present",
    "genre": "genre",
    "style": "genre",
    "mood": "mood",
    "emotion": "mood",
    "tempo": "tempo",
    "speed": "tempo",
}
_VAD_KEYS = {
    "valence": "valence",
    "v": "valence",
    "arousal": "arousal",
    "a": "arousal",
    "dominance": "dominance",
    "d": "dominance",
}

_NULL_WORDS = frozenset(
    {"", "none", "null", "n/a", "na", "nil", "unknown", "not visible", "not applicable", "-", "无"}
)
_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "present", "on", "有", "是"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "absent", "off", "none", "无", "否"})
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_RANGE = re.compile(r"\d\s*(?:-|–|~|to)\s*\d")
_PROMPT_PLACEHOLDERS = prompt_placeholders()
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")


def _none_if_empty(fields: dict[str, Any]) -> dict[str, Any] | None:
    return fields if any(v is not None for v in fields.values()) else None


def _canonical(name: Any, table: dict[str, str]) -> str | None:
    return table.get(_key(name))


class _Normaliser:
    """Turns one frame dictionary into FrameAnnotation's shape, counting what it had to change."""

    def __init__(self, issues: Counter):
        self.issues = issues

    def note(self, path: str, kind: str) -> None:
        self.issues[f"{path}: {kind}"] += 1

    def mapping(self, value: dict, table: dict[str, str], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, item in value.items():
            target = _canonical(name, table)
            if target is None:
                self.note(f"{path}.{_key(name) or '?'}" if path else _key(name) or "?", "unknown_key")
            elif target not in out or out[target] is None:
                out[target] = item
        return out

    def text(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            value = ", ".join(str(v) for v in value)
        if not isinstance(value, str):
            self.note(path, "wrong_type")
            return None
        value = value.strip()
        if value.lower() in _PROMPT_PLACEHOLDERS:  # the model copied the prompt's form, not an answer
            self.note(path, "template_echo")
            return None
        return None if value.lower() in _NULL_WORDS else value

    def number(self, value: Any, path: str, low: float | None = None, high: float | None = None) -> float | None:
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULL_WORDS):
            return None
        if isinstance(value, bool):
            self.note(path, "wrong_type")
            return None
        if isinstance(value, str):
            match = _NUMBER.search(value)
            if not match or _RANGE.search(value):  # "1-9" is the scale, not a value on it
                self.note(path, "not_a_number")
                return None
            self.note(path, "numeric_string")
            value = float(match.group())
        if not isinstance(value, (int, float)):
            self.note(path, "wrong_type")
            return None
        value = float(value)
        if (low is not None and value < low) or (high is not None and value > high):
            self.note(path, "out_of_range")
            value = min(max(value, low if low is not None else value), high if high is not None else value)
        return value

    def boolean(self, value: Any, path: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        self.note(path, "not_a_boolean")
        return None

    def shot_type(self, value: Any, path: str, *, person: bool) -> str | None:
        text = self.text(value, path)
        if text is None:
            return None
        shot = shot_type_from_text(text)
        if shot is None or (person and shot not in SHOT_SIZES):
            self.note(path, "unknown_value")
            return None
        return shot.value

    def frame(self, value: dict) -> dict[str, Any]:
        raw = self.mapping(value, _FRAME_KEYS, "")
        return {
            "scene": self.scene(raw.get("scene")),
            "bgm": self.bgm(raw.get("bgm")),
            "scene_description": self.text(raw.get("scene_description"), "scene_description"),
            "people": [p for p in (self.person(v) for v in self.listing(raw.get("people"), "people")) if p],
            "objects": [o for o in (self.object(v) for v in self.listing(raw.get("objects"), "objects")) if o],
            "timestamp_s": self.timestamp(raw.get("timestamp_s")),
        }

    def listing(self, value: Any, path: str) -> list:
        if value is None:
            return []
        if isinstance(value, dict):
            return [value]
        if isinstance(value, list):
            return value
        self.note(path, "wrong_type")
        return []

    def scene(self, value: Any) -> dict | None:
        if value is None:
            return None
        if isinstance(value, list):  # the paper's [number, name]
            value = dict(zip(("number", "name"), value))
        elif isinstance(value, (str, int, float)):
            value = {"number": value} if _NUMBER.fullmatch(str(value).strip()) else {"name": value}
        if not isinstance(value, dict):
            self.note("scene", "wrong_type")
            return None
        raw = self.mapping(value, _SCENE_KEYS, "scene")
        number = self.number(raw.get("number"), "scene.number", low=0)
        scene = {
            "number": int(number) if number is not None else None,
            "name": self.text(raw.get("name"), "scene.name"),
        }
        return _none_if_empty(scene)

    def bgm(self, value: Any) -> dict | None:
        if value is None:
            return None
        if isinstance(value, list):  # the paper's [present, genre, mood, tempo]
            value = dict(zip(("present", "genre", "mood", "tempo"), value))
        elif isinstance(value, (bool, str)):
            value = {"present": value}
        if not isinstance(value, dict):
            self.note("bgm", "wrong_type")
            return None
        raw = self.mapping(value, _BGM_KEYS, "bgm")
        bgm = {
            "present": self.boolean(raw.get("present"), "bgm.present"),
            **{k: self.text(raw.get(k), f"bgm.{k}") for k in ("genre", "mood", "tempo")},
        }
        return _none_if_empty(bgm)

    def vad(self, value: Any) -> dict | None:
        if value is None:
            return None
        if isinstance(value, str):  # "V: 5, A: 4, D: 4" or "5/4/4"
            numbers = _NUMBER.findall(value)
            value = numbers if len(numbers) == 3 else value
        if isinstance(value, list) and len(value) == 3:
            value = dict(zip(("valence", "arousal", "dominance"), value))
        if not isinstance(value, dict):
            self.note("people.vad", "wrong_type")
            return None
        raw = self.mapping(value, _VAD_KEYS, "people.vad")
        vad = {k: self.number(raw.get(k), f"people.vad.{k}", 1, 9) for k in ("valence", "arousal", "dominance")}
        return _none_if_empty(vad)

    def person(self, value: Any) -> dict | None:
        if not isinstance(value, dict):
            self.note("people", "not_an_object")
            return None
        raw = self.mapping(value, _PERSON_KEYS, "people")
        person = {
            k: self.text(raw.get(k), f"people.{k}")
            for k in ("type", "age", "gender", "looks", "emotion", "actions", "temperament", "line")
        }
        person["vad"] = self.vad(raw.get("vad"))
        person["facial_attractiveness"] = self.number(
            raw.get("facial_attractiveness"), "people.facial_attractiveness", 1, 5
        )
        person["shot_type"] = self.shot_type(raw.get("shot_type"), "people.shot_type", person=True)
        return _none_if_empty(person)

    def object(self, value: Any) -> dict | None:
        if isinstance(value, str):  # a bare name
            value = {"name": value}
        if not isinstance(value, dict):
            self.note("objects", "not_an_object")
            return None
        raw = self.mapping(value, _OBJECT_KEYS, "objects")
        obj = {
            "name": self.text(raw.get("name"), "objects.name"),
            "description": self.text(raw.get("description"), "objects.description"),
            "shot_type": self.shot_type(raw.get("shot_type"), "objects.shot_type", person=False),
        }
        return _none_if_empty(obj)

    def timestamp(self, value: Any) -> float | None:
        if isinstance(value, str) and (clock := _CLOCK.match(value.strip())):
            hours, minutes, seconds = clock.groups()
            return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        return self.number(value, "timestamp_s", low=0)


def normalise_frame(value: dict, issues: Counter | None = None) -> FrameAnnotation:
    """One frame dictionary (any key spelling) -> a validated FrameAnnotation; raises
    ValidationError only for what normalisation cannot shape (a bug, not bad data)."""
    return FrameAnnotation.model_validate(_Normaliser(issues if issues is not None else Counter()).frame(value))


def looks_like_frame(value: Any) -> bool:
    """A dictionary with at least one key of a frame annotation (scene, people, ...)."""
    return isinstance(value, dict) and any(_canonical(k, _FRAME_KEYS) for k in value)
