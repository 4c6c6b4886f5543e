"""Cleaning the multimodal LLM's raw output into validated `FrameAnnotation`s.

What the `cleaned_json` asset calls, once per stored raw output (one request = the
keyframes of one shot batch, in request order):

    result = clean_raw_output(raw.text, items=raw.items, timestamps=[kf.time_s ...],
                              repairer=None or LlmJsonRepairer(...))
    result.outcome        CleanOutcome: parsed_as_is | fixed_locally | fixed_by_llm | lost
    result.frames         the FrameAnnotations recovered, in item order (result.items: their items)
    result.losses         a LossRecord per item lost
    result.field_issues   Counter "field: kind" -> n (schema violations per field)
    result.unparseable    True when the text was not a JSON object or array as it came
                          (a reply JSON-encoded again as a string counts as unparseable)

    stats = CleaningStats(); stats.add(result) for each reply, then stats.replies
    (by outcome), stats.frame_loss_rate (blocking above 5 %), stats.unparseable_rate
    (warn above 8 %) and stats.field_issues feed the asset checks.

`clean_annotation(text)` is the one-frame shortcut. The ladder (json_text.py, then
normalise.py), cheapest first: strip code fences and surrounding prose, `json.loads`; a
reply JSON-encoded again as a string decoded one level; Python literals, single quotes and
bare keys re-quoted, raw newlines in strings allowed, on the text as it is and with its
full-width structure (｛ ［ ： ， 、 “ ” outside string values) made ASCII; `json_repair`;
then normalise into the schema (numeric strings to numbers,
case-insensitive and synonymous keys, shot-type spellings, ranges clamped, echoes of the
prompt's form dropped); only what is still unreadable goes to the optional LLM `repairer`.
A frame the text was cut off in is a loss ("truncated"), never completed by guessing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from skyscript_assets.schema import FrameAnnotation, LossRecord
from skyscript_assets.stages.annotation.json_text import (
    NotRecoverable,
    is_truncated,
    parse_json_text,
    strip_code_fences,
)
from skyscript_assets.stages.annotation.normalise import looks_like_frame, normalise_frame
from skyscript_assets.stages.step import EpisodeResult

STAGE = "cleaned_json"
STAGE_VERSION = "2"  # 2: full-width structure, JSON encoded twice, raw newlines, adjacent strings

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
    frames: list[FrameAnnotation]  # recovered, in item order
    items: list[str]  # the item of each recovered frame
    losses: list[LossRecord]  # one per item lost
    field_issues: Counter = field(default_factory=Counter)
    unparseable: bool = False  # not a JSON object or array as it came (before any repair)
    single_frame: bool = False  # the reply was one frame object, not a list or mapping of frames


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
    if looks_like_frame(value):
        return [value], 1
    numbered = [(_NUMBERED_KEY.match(str(k)), v) for k, v in value.items()]
    if numbered and all(m and isinstance(v, dict) for m, v in numbered):
        return [v for m, v in sorted(numbered, key=lambda mv: int(mv[0].group(1)))], 2
    return None


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
        if not any(looks_like_frame(f) for f in frames):
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
            return _all_lost(
                raw_text,
                items,
                "llm_repair_failed",
                unparseable,
                issues,
                detail=_one_line(f"{type(repair_error).__name__}: {repair_error}"),
            )
        if not any(looks_like_frame(f) for f in frames) or parsed.open_depth:
            return _all_lost(
                raw_text,
                items,
                reason,
                unparseable,
                issues,
                detail=f"{_REASON_TEXT[reason]}; the LLM repair did not fix it",
            )
        outcome = CleanOutcome.FIXED_BY_LLM

    names = list(items) if items is not None else [f"frame_{i + 1}" for i in range(len(frames))]
    cut_last = parsed.open_depth >= frame_depth
    results: list[tuple[str, FrameAnnotation | LossRecord]] = []
    for index, name in enumerate(names):
        if index >= len(frames):
            detail = f"the reply holds {len(frames)} frames for {len(names)} images"
            results.append((name, _loss(name, "missing_frame", detail)))
        elif cut_last and index == len(frames) - 1:
            results.append((name, _loss(name, "truncated", "the reply was cut off inside this frame")))
        elif not looks_like_frame(frames[index]):
            results.append(
                (name, _loss(name, "not_an_annotation", f"frame {index + 1} is {_describe(frames[index])}"))
            )
        else:
            try:
                annotation = normalise_frame(frames[index], issues)
            except ValidationError as exc:  # normalisation should prevent this; never sink the batch
                results.append((name, _loss(name, "schema_violation", _one_line(exc)[:300])))
                continue
            if annotation == FrameAnnotation():  # nothing usable survived normalisation
                results.append((name, _loss(name, "empty_annotation", "no field of this frame holds a usable value")))
                continue
            time_s = timestamps[index] if timestamps is not None and index < len(timestamps) else None
            if time_s is not None:
                annotation = annotation.model_copy(update={"timestamp_s": float(time_s)})
            results.append((name, annotation))
    if items is not None and len(frames) > len(names):
        issues["frames: extra_frames"] += len(frames) - len(names)
    kept = [(name, r) for name, r in results if isinstance(r, FrameAnnotation)]
    if not kept:
        outcome = CleanOutcome.LOST
    return CleanedOutput(
        outcome,
        [r for _, r in kept],
        [name for name, _ in kept],
        [r for _, r in results if isinstance(r, LossRecord)],
        issues,
        unparseable,
        single_frame=frame_depth == 1,
    )


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
        self.frames_kept += len(result.frames)
        self.frames_lost += len(result.losses)
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
) -> tuple[FrameAnnotation | None, list[LossRecord]]:
    """The one-frame shortcut of `clean_raw_output`: the annotation (None when lost) and the losses."""
    result = clean_raw_output(raw_text, [item], timestamps=[timestamp_s], repairer=repairer)
    return (result.frames[0] if result.frames else None), result.losses


_REASON_TEXT = {
    "empty_output": "the reply is empty",
    "truncated": "the reply stops before its first frame is complete",
    "no_json": "no JSON object or array could be read from the reply",
    "not_an_annotation": "the JSON holds no frame annotation (no scene, people, objects, ... keys)",
}


def _is_json(text: str) -> bool:
    """A JSON object or array as it came: a JSON string holding one (JSON encoded twice) is not."""
    try:
        return isinstance(json.loads(strip_code_fences(text)), (dict, list))
    except (ValueError, RecursionError):
        return False


def _all_lost(raw_text, items, reason, unparseable, issues, detail=None) -> CleanedOutput:
    names = list(items) if items is not None else ["frame_1"]
    detail = detail or f"{_REASON_TEXT.get(reason, reason)}: {_one_line(raw_text)[:120]!r}"
    return CleanedOutput(CleanOutcome.LOST, [], [], [_loss(n, reason, detail) for n in names], issues, unparseable)


def _loss(item: str, reason: str, detail: str) -> LossRecord:
    return LossRecord(stage=STAGE, item=item, reason=reason, detail=detail)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe(value: Any) -> str:
    return f"a {type(value).__name__}" if not isinstance(value, dict) else "an object without annotation keys"


# --- the per-episode entry point of the cleaned_json asset -----------------------------------


@dataclass(frozen=True)
class RawReply:
    items: tuple[str, ...]  # the keyframes the request covered, in image order
    text: str  # the model's reply, verbatim


@dataclass(frozen=True)
class CleanedFrame:
    item: str
    annotation: FrameAnnotation
    outcome: CleanOutcome


def clean_episode(
    episode_id: str,
    replies: Sequence[RawReply],
    *,
    timestamps: dict[str, float | None],
    repairer: JsonRepairer | None = None,
) -> EpisodeResult[CleanedFrame]:
    """Every raw reply of one episode cleaned: a CleanedFrame per keyframe recovered, a LossRecord per
    keyframe lost."""
    stats = CleaningStats()
    frames: list[CleanedFrame] = []
    losses: list[LossRecord] = []
    for reply in replies:
        result = clean_raw_output(
            reply.text, reply.items, timestamps=[timestamps.get(i) for i in reply.items], repairer=repairer
        )
        stats.add(result)
        frames += [CleanedFrame(item, frame, result.outcome) for item, frame in zip(result.items, result.frames)]
        losses += result.losses
    return EpisodeResult(
        episode_id,
        frames,
        losses,
        given=sum(len(r.items) for r in replies),
        summary={
            "replies": sum(stats.replies.values()),
            "unparseable": stats.unparseable_replies,
            "kept": stats.frames_kept,
            "field_issues": dict(stats.field_issues),
        },
    )
