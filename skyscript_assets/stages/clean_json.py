"""Cleaning the multimodal LLM's raw output into validated `FrameAnnotation`s.

What the `cleaned_json` asset calls, once per stored raw output (one request = the
keyframes of one shot batch, in request order):

    result = clean_raw_output(raw.text, items=raw.items, timestamps=[kf.time_s ...],
                              repairer=None or LlmJsonRepairer(...))
    result.outcome        CleanOutcome: parsed_as_is | fixed_locally | fixed_by_llm | lost
    result.frames         one FrameAnnotation or LossRecord per item, same order
    result.field_issues   Counter "field: kind" -> n (schema violations per field)
    result.unparseable    True when the text was not valid JSON as it came

    stats = CleaningStats(); stats.add(result) for each reply, then stats.replies
    (by outcome), stats.frame_loss_rate (blocking above 5 %), stats.unparseable_rate
    (warn above 8 %) and stats.field_issues feed the asset checks.

`clean_annotation(text)` is the one-frame shortcut. The ladder, cheapest first: strip code
fences and surrounding prose, `json.loads`, Python literals, single quotes and bare keys
re-quoted, `json_repair`, full-width punctuation; then normalise into the schema (numeric
strings to numbers, case-insensitive and synonymous keys, shot-type spellings, ranges
clamped, echoes of the prompt's form dropped); only what is still unreadable goes to the
optional LLM `repairer`. A frame the text was cut off in is a loss ("truncated"), never
completed by guessing.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import json_repair
from pydantic import ValidationError

from ..prompts import prompt_placeholders
from ..schema import FrameAnnotation, LossRecord

STAGE = "cleaned_json"
STAGE_VERSION = "1"

# (broken text, what is wrong) -> corrected text; may raise, the caller records the loss.
JsonRepairer = Callable[[str, str], str]


class CleanOutcome(StrEnum):
    PARSED_AS_IS = "parsed_as_is"
    FIXED_LOCALLY = "fixed_locally"
    FIXED_BY_LLM = "fixed_by_llm"
    LOST = "lost"


@dataclass
class CleanedOutput:
    outcome: CleanOutcome
    frames: list[FrameAnnotation | LossRecord]
    field_issues: Counter = field(default_factory=Counter)
    unparseable: bool = False  # not valid JSON as it came (before any repair)
    single_frame: bool = False  # the reply was one frame object, not a list or mapping of frames


@dataclass(frozen=True)
class ParsedText:
    value: Any
    as_is: bool  # json.loads took the text after stripping whitespace and code fences
    open_depth: int  # brackets still open where the text ends: > 0 means it was cut off


class NotRecoverable(ValueError):
    """The text holds no JSON annotation that local repair can get back; args[0] is the reason."""


# --- parsing -------------------------------------------------------------------------------

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(?:```|$)", re.DOTALL)
_FULL_WIDTH = str.maketrans({"｛": "{", "｝": "}", "［": "[", "］": "]", "：": ":", "，": ",",
                             "“": '"', "”": '"', "＂": '"', "‘": "'", "’": "'"})
_MAX_CANDIDATES = 16  # bracketed segments looked at: enough for one object per image of a batch
# A bare key after "{" or ",": `Scene Description: "..."` -> `"Scene Description": "..."`.
_BARE_KEY = re.compile(r"(?<=[{,])(\s*)([A-Za-z_\u4e00-\u9fff][^\"'{}\[\],:\n]*?)(\s*):")


def strip_code_fences(text: str) -> str:
    """The fenced blocks' contents (one per line when a model fenced each image), else the text."""
    blocks = [block.strip() for block in _FENCE.findall(text)]
    return "\n".join(block for block in blocks if block) if blocks else text.strip()


def json_segments(text: str) -> list[tuple[str, int]]:
    """Bracketed segments of `text`, first opening bracket to its match, with the depth still
    open at the end (> 0 when the text stops inside the segment). Only double quotes open
    strings: single-quoted output is rare and its apostrophes would confuse the count."""
    segments = []
    start = 0
    while len(segments) < _MAX_CANDIDATES:
        begin = _next_opening(text, start)
        if begin < 0:
            break
        depth, in_string, escaped, end = 0, False, False, None
        for i in range(begin, len(text)):
            ch = text[i]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        if end is None:
            segments.append((text[begin:], depth))
            break
        segments.append((text[begin:end], 0))
        start = end
    return segments


def _next_opening(text: str, start: int) -> int:
    positions = [p for p in (text.find("{", start), text.find("[", start)) if p >= 0]
    return min(positions) if positions else -1


def parse_json_text(raw_text: str) -> ParsedText:
    """The JSON value in a model's reply, repaired locally if need be; raises NotRecoverable."""
    text = strip_code_fences(raw_text)
    if not text:
        raise NotRecoverable("empty_output")
    try:
        return ParsedText(json.loads(text), as_is=True, open_depth=0)
    except ValueError:
        pass
    for variant in (text, text.translate(_FULL_WIDTH)):
        segments = json_segments(variant)
        complete = [value for segment, depth in segments if not depth
                    if (value := _strict_with_fixes(segment)) is not None]
        frames = [value for value in complete if _looks_like_frame(value)]
        if len(frames) > 1:  # "Image 1: {...} Image 2: {...}": one object per image
            return ParsedText(frames, as_is=False, open_depth=0)
        if complete:
            return ParsedText(complete[0], as_is=False, open_depth=0)
        if segments:
            segment, depth = max(segments, key=lambda s: len(s[0]))
            value = json_repair.loads(segment)
            if isinstance(value, (dict, list)) and value:
                return ParsedText(value, as_is=False, open_depth=depth)
    raise NotRecoverable("no_json")


def is_truncated(raw_text: str) -> bool:
    """The reply stops inside a bracket: the model ran out of tokens (or was cut off)."""
    segments = json_segments(strip_code_fences(raw_text).translate(_FULL_WIDTH))
    return bool(segments) and segments[-1][1] > 0


def _strict_with_fixes(segment: str) -> Any:
    requoted = requote_single_quotes(segment)
    for candidate in (segment, _quote_bare_keys(segment), requoted, _quote_bare_keys(requoted)):
        if (value := _strict_or_literal(candidate)) is not None:
            return value
    return None


def _quote_bare_keys(text: str) -> str:
    return _BARE_KEY.sub(r'\1"\2"\3:', text)


_CLOSES_STRING = re.compile(r"\s*(?:[,:}\]]|$)")


def requote_single_quotes(text: str) -> str:
    """{'line': 'it's late'} -> {"line": "it's late"}: a ' opens a string only where a value or
    key starts (after { [ , :) and closes it only before , : } ] or the end, so apostrophes
    inside the text survive."""
    out: list[str] = []
    quote: str | None = None
    last = ""  # the last character outside strings that was not a space
    i = 0
    while i < len(text):
        ch = text[i]
        if quote == '"':
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                quote, last = None, '"'
        elif quote == "'":
            if ch == "\\" and text[i + 1:i + 2] == "'":
                out.append("'")
                i += 1
            elif ch == "'" and _CLOSES_STRING.match(text, i + 1):
                out.append('"')
                quote, last = None, '"'
            else:
                out.append('\\"' if ch == '"' else ch)
        elif ch == "'" and last in ("", "{", "[", ",", ":"):
            out.append('"')
            quote = "'"
        else:
            if ch == '"':
                quote = '"'
            out.append(ch)
            if not ch.isspace():
                last = ch
        i += 1
    return "".join(out)


def _strict_or_literal(segment: str) -> Any:
    try:
        return json.loads(segment)
    except ValueError:
        pass
    try:  # a Python repr: single quotes, True/None
        value = ast.literal_eval(segment)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


# --- from a parsed value to frame dictionaries ---------------------------------------------

_WRAPPER_KEYS = ("frames", "images", "annotations", "keyframes", "results", "data", "output")
_NUMBERED_KEY = re.compile(r"^\D*?(\d+)\D*$")


def frame_dicts(value: Any) -> tuple[list[Any], int] | None:
    """The frames of a reply in order, and the bracket depth a frame opens at: a list (2),
    {"frames": [...]} (3), the sample's {"Case_1": {...}, ...} or "Image 2", "frame_3"
    mapping (2), or one frame object (1)."""
    if isinstance(value, list):
        return value, 2
    if not isinstance(value, dict):
        return None
    lowered = {str(k).strip().lower(): v for k, v in value.items()}
    for key in _WRAPPER_KEYS:
        if isinstance(lowered.get(key), list):
            return lowered[key], 3
    if _looks_like_frame(value):
        return [value], 1
    numbered = [(_NUMBERED_KEY.match(str(k)), v) for k, v in value.items()]
    if numbered and all(m and isinstance(v, dict) for m, v in numbered):
        return [v for m, v in sorted(numbered, key=lambda mv: int(mv[0].group(1)))], 2
    return None


def _looks_like_frame(value: Any) -> bool:
    return isinstance(value, dict) and any(_canonical(k, _FRAME_KEYS) for k in value)


# --- normalisation into the schema ---------------------------------------------------------

def _key(name: Any) -> str:
    """'Valence (V)' -> 'valence', 'Scene Description' -> 'scene_description'."""
    text = re.sub(r"\(.*?\)", " ", str(name)).lower()
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "_", text).strip("_")


_FRAME_KEYS = {
    "scene": "scene", "scene_info": "scene", "场景": "scene",
    "bgm": "bgm", "background_music": "bgm", "music": "bgm", "背景音乐": "bgm",
    "scene_description": "scene_description", "description": "scene_description", "场景描述": "scene_description",
    "people": "people", "persons": "people", "person": "people", "characters": "people", "人物": "people",
    "objects": "objects", "items": "objects", "things": "objects", "物体": "objects",
    "timestamp": "timestamp_s", "timestamp_s": "timestamp_s", "time": "timestamp_s", "time_s": "timestamp_s",
}
_PERSON_KEYS = {
    "object": "type", "type": "type", "category": "type",
    "age": "age", "gender": "gender", "sex": "gender",
    "looks": "looks", "appearance": "looks", "look": "looks",
    "emotion": "emotion", "actions": "actions", "action": "actions",
    "continuous_emotion": "vad", "vad": "vad", "continuous_emotions": "vad",
    "temperament": "temperament", "personality": "temperament",
    "facial_attractiveness": "facial_attractiveness", "attractiveness": "facial_attractiveness",
    "shot_type": "shot_type", "shot": "shot_type", "shot_size": "shot_type",
    "line": "line", "lines": "line", "dialogue": "line", "speech": "line",
}
_OBJECT_KEYS = {
    "object": "name", "name": "name", "label": "name",
    "description": "description", "shot_type": "shot_type", "shot": "shot_type", "shot_size": "shot_type",
}
_SCENE_KEYS = {"number": "number", "scene_number": "number", "no": "number", "id": "number", "index": "number",
               "name": "name", "scene_name": "name", "location": "name", "title": "name"}
_BGM_KEYS = {"present": "present", "has_bgm": "present", "exists": "present", "bgm": "present",
             "genre": "genre", "style": "genre", "mood": "mood", "emotion": "mood", "tempo": "tempo", "speed": "tempo"}
_VAD_KEYS = {"valence": "valence", "v": "valence", "arousal": "arousal", "a": "arousal",
             "dominance": "dominance", "d": "dominance"}

_NULL_WORDS = frozenset({"", "none", "null", "n/a", "na", "nil", "unknown", "not visible", "not applicable", "-", "无"})
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
        from ..schema import SHOT_SIZES, shot_type_from_text

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
        scene = {"number": int(number) if number is not None else None,
                 "name": self.text(raw.get("name"), "scene.name")}
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
        bgm = {"present": self.boolean(raw.get("present"), "bgm.present"),
               **{k: self.text(raw.get(k), f"bgm.{k}") for k in ("genre", "mood", "tempo")}}
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
        person = {k: self.text(raw.get(k), f"people.{k}")
                  for k in ("type", "age", "gender", "looks", "emotion", "actions", "temperament", "line")}
        person["vad"] = self.vad(raw.get("vad"))
        person["facial_attractiveness"] = self.number(
            raw.get("facial_attractiveness"), "people.facial_attractiveness", 1, 5)
        person["shot_type"] = self.shot_type(raw.get("shot_type"), "people.shot_type", person=True)
        return _none_if_empty(person)

    def object(self, value: Any) -> dict | None:
        if isinstance(value, str):  # a bare name
            value = {"name": value}
        if not isinstance(value, dict):
            self.note("objects", "not_an_object")
            return None
        raw = self.mapping(value, _OBJECT_KEYS, "objects")
        obj = {"name": self.text(raw.get("name"), "objects.name"),
               "description": self.text(raw.get("description"), "objects.description"),
               "shot_type": self.shot_type(raw.get("shot_type"), "objects.shot_type", person=False)}
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


# --- the stage entry points ----------------------------------------------------------------

def clean_raw_output(
    raw_text: str,
    items: Sequence[str] | None = None,
    *,
    timestamps: Sequence[float | None] | None = None,
    repairer: JsonRepairer | None = None,
) -> CleanedOutput:
    """Clean one raw model reply covering `items` (keyframe ids, in request order).

    With `items=None` every frame found is returned, named frame_1, frame_2, ...
    `timestamps` (the keyframes' decoded times) win over whatever the model wrote."""
    issues: Counter = Counter()
    unparseable = not _is_json(raw_text)
    try:
        parsed = parse_json_text(raw_text)
        frames, frame_depth = frame_dicts(parsed.value) or ([], 0)
        if not any(_looks_like_frame(f) for f in frames):
            raise NotRecoverable("not_an_annotation")
        outcome = CleanOutcome.PARSED_AS_IS if parsed.as_is else CleanOutcome.FIXED_LOCALLY
    except NotRecoverable as exc:
        reason = exc.args[0]
        if reason != "empty_output" and is_truncated(raw_text):
            reason = "truncated"  # an LLM asked to repair it could only invent the missing part
        if repairer is None or reason in ("empty_output", "truncated"):
            return _all_lost(raw_text, items, reason, unparseable, issues)
        try:
            parsed = parse_json_text(repairer(raw_text, _REASON_TEXT[reason]))
            frames, frame_depth = frame_dicts(parsed.value) or ([], 0)
        except NotRecoverable:
            frames = []
        except Exception as repair_error:  # a failing repair service loses these frames, not the batch
            return _all_lost(raw_text, items, "llm_repair_failed", unparseable, issues,
                             detail=_one_line(f"{type(repair_error).__name__}: {repair_error}"))
        if not any(_looks_like_frame(f) for f in frames) or parsed.open_depth:
            return _all_lost(raw_text, items, reason, unparseable, issues,
                             detail=f"{_REASON_TEXT[reason]}; the LLM repair did not fix it")
        outcome = CleanOutcome.FIXED_BY_LLM

    names = list(items) if items is not None else [f"frame_{i + 1}" for i in range(len(frames))]
    cut_last = parsed.open_depth >= frame_depth
    results: list[FrameAnnotation | LossRecord] = []
    for index, name in enumerate(names):
        if index >= len(frames):
            detail = f"the reply holds {len(frames)} frames for {len(names)} images"
            results.append(_loss(name, "missing_frame", detail))
        elif cut_last and index == len(frames) - 1:
            results.append(_loss(name, "truncated", "the reply was cut off inside this frame"))
        elif not _looks_like_frame(frames[index]):
            results.append(_loss(name, "not_an_annotation", f"frame {index + 1} is {_describe(frames[index])}"))
        else:
            try:
                annotation = normalise_frame(frames[index], issues)
            except ValidationError as exc:  # normalisation should prevent this; never sink the batch
                results.append(_loss(name, "schema_violation", _one_line(exc)[:300]))
                continue
            if annotation == FrameAnnotation():  # nothing usable survived normalisation
                results.append(_loss(name, "empty_annotation", "no field of this frame holds a usable value"))
                continue
            time_s = timestamps[index] if timestamps is not None and index < len(timestamps) else None
            if time_s is not None:
                annotation = annotation.model_copy(update={"timestamp_s": float(time_s)})
            results.append(annotation)
    if items is not None and len(frames) > len(names):
        issues["frames: extra_frames"] += len(frames) - len(names)
    if not any(isinstance(r, FrameAnnotation) for r in results):
        outcome = CleanOutcome.LOST
    return CleanedOutput(outcome, results, issues, unparseable, single_frame=frame_depth == 1)


@dataclass
class CleaningStats:
    """The accounting the `cleaned_json` checks read: replies by outcome, frames kept/lost."""

    replies: Counter = field(default_factory=Counter)  # CleanOutcome value -> replies
    frames_kept: int = 0
    frames_lost: int = 0
    unparseable_replies: int = 0
    field_issues: Counter = field(default_factory=Counter)

    def add(self, result: CleanedOutput) -> None:
        self.replies[result.outcome.value] += 1
        kept = sum(isinstance(f, FrameAnnotation) for f in result.frames)
        self.frames_kept += kept
        self.frames_lost += len(result.frames) - kept
        self.unparseable_replies += result.unparseable
        self.field_issues.update(result.field_issues)

    @property
    def frame_loss_rate(self) -> float:
        """Share of frames lost after every repair (the paper: about 4 %)."""
        total = self.frames_kept + self.frames_lost
        return self.frames_lost / total if total else 0.0

    @property
    def unparseable_rate(self) -> float:
        """Share of replies that were not valid JSON as they came."""
        total = sum(self.replies.values())
        return self.unparseable_replies / total if total else 0.0


def clean_annotation(
    raw_text: str, *, item: str = "frame", timestamp_s: float | None = None, repairer: JsonRepairer | None = None
) -> FrameAnnotation | LossRecord:
    """The one-frame shortcut of `clean_raw_output`."""
    return clean_raw_output(raw_text, [item], timestamps=[timestamp_s], repairer=repairer).frames[0]


_REASON_TEXT = {
    "empty_output": "the reply is empty",
    "truncated": "the reply stops before its first frame is complete",
    "no_json": "no JSON object or array could be read from the reply",
    "not_an_annotation": "the JSON holds no frame annotation (no scene, people, objects, ... keys)",
}


def _is_json(text: str) -> bool:
    try:
        json.loads(strip_code_fences(text))
        return True
    except ValueError:
        return False


def _all_lost(raw_text, items, reason, unparseable, issues, detail=None) -> CleanedOutput:
    names = list(items) if items is not None else ["frame_1"]
    detail = detail or f"{_REASON_TEXT.get(reason, reason)}: {_one_line(raw_text)[:120]!r}"
    return CleanedOutput(CleanOutcome.LOST, [_loss(n, reason, detail) for n in names], issues, unparseable)


def _loss(item: str, reason: str, detail: str) -> LossRecord:
    return LossRecord(stage=STAGE, item=item, reason=reason, detail=detail)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe(value: Any) -> str:
    return f"a {type(value).__name__}" if not isinstance(value, dict) else "an object without annotation keys"
