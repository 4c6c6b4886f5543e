"""The per-episode entry point of character_refinements (ground_episode, of detections, is in grounding.py).

`refine_episode` (character_refinements): the MLLM's people matched to faces (DeepFace
attributes with test-time augmentation on conflict, depth, posture), dialogue lines from
subtitle streams, .srt sidecars and OCR, name captions next to faces, and the pixelated
release copy of every keyframe, checked by a face detector of another family (the gate).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from skyscript_assets.schema import LossRecord
from skyscript_assets.stages.refinement.characters import RefinementModels, refine_frames
from skyscript_assets.stages.refinement.dialogue import (
    SubtitleCue,
    assign_lines,
    episode_lines,
    pick_speaker,
    sidecar_srts,
)
from skyscript_assets.stages.refinement.inputs import AnnotatedKeyframe, decode_image
from skyscript_assets.stages.refinement.pixelation import (
    faces_left,
    gate_face_detector,
    privacy_face_detector,
    release_keyframe,
)
from skyscript_assets.stages.scripts.identities import name_caption
from skyscript_assets.stages.step import EpisodeResult
from skyscript_assets.storage import local_file

# 2: name captions next to faces; 3: emotion conflicts, adopted values with sources and disputes;
# 4: CenterFace pixelates, BlazeFace (another family) checks the released copies
STAGE_VERSION = "4"
JPEG_QUALITY = 90


@dataclass
class RefinedKeyframe:
    item: str
    keyframe_index: int
    people: list[dict]  # one refinement per MLLM person: face box, attributes, depth, posture, line, caption
    released_jpeg: bytes  # the pixelated copy that may leave the building
    faces_left: int  # faces the gate still finds in it (must be 0)
    conflicts: int = 0
    matched: int = 0


@dataclass
class RefinementTools:
    """Everything `refine_episode` uses, loaded once per run."""

    models: RefinementModels
    reader: object  # models.ocr.TextReader
    pixelation: object  # the face detector that chooses what to mosaic
    gate: object  # a detector of another family that checks the released copies

    @classmethod
    def load(
        cls, *, deepface_home: str | None, depth_model: str | None, pose_model: str | None, device: str = "cpu"
    ) -> RefinementTools:
        from skyscript_assets.models.ocr import TextReader

        models = RefinementModels.load(
            deepface_home=deepface_home, depth_model=depth_model, pose_model=pose_model, device=device
        )
        pixelation = privacy_face_detector()
        return cls(models, TextReader.load(), pixelation, gate_face_detector(pixelation))


def refine_episode(
    tools: RefinementTools,
    episode_id: str,
    frames: list[AnnotatedKeyframe],
    *,
    video_uri: str,
    shots: dict[int, tuple[float, float]],
) -> EpisodeResult[RefinedKeyframe]:
    images = {f.item: decode_image(f.uri) for f in frames}
    refined, losses, flags = refine_frames(tools.models, [(f.item, images[f.item], f.people) for f in frames])
    lines, line_losses = _dialogue(tools, frames, images, video_uri, shots)
    results, released = [], {}
    for frame, refinement in zip(frames, refined):
        texts = tools.reader.read([images[frame.item]])[0]
        people = _people(frame, refinement, texts, images[frame.item].shape[0], lines.get(frame.shot_index, []))
        faces = [tuple(c.face_box) for c in refinement.characters if c.face_box]
        released[frame.item], _ = release_keyframe(
            tools.pixelation, images[frame.item], text_boxes=[t.box for t in texts], face_boxes=faces
        )
        jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(released[frame.item], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )[1].tobytes()
        results.append(
            RefinedKeyframe(
                frame.item,
                frame.keyframe_index,
                people,
                jpeg,
                0,
                refinement.conflict_count,
                sum(1 for c in refinement.characters if c.face_box),
            )
        )
    leaks = faces_left(tools.gate, released, stage="character_refinements")
    for result in results:
        result.faces_left = sum(1 for leak in leaks if leak.item == result.item)
    return EpisodeResult(
        episode_id,
        results,
        [*losses, *line_losses, *leaks],
        flags,
        given=len(frames),
        summary={
            "people": sum(len(r.people) for r in results),
            "matched": sum(r.matched for r in results),
            "conflicts": sum(r.conflicts for r in results),
            "released": len(results),
            "faces_left": len(leaks),
            "lines_filled": sum(1 for r in results for p in r.people if p.get("line_source") in ("subtitle", "ocr")),
            "lines_guessed": sum(1 for r in results for p in r.people if p.get("line_source") == "mllm_guess"),
            "models_not_run": dict(tools.models.not_run),
        },
    )


def _dialogue(
    tools: RefinementTools,
    frames: list[AnnotatedKeyframe],
    images: dict[str, np.ndarray],
    video_uri: str,
    shots: dict[int, tuple[float, float]],
) -> tuple[dict[int, list[SubtitleCue]], list[LossRecord]]:
    """Lines per shot from subtitle streams, .srt sidecars and OCR; an unreadable video loses its lines only."""
    shot_spans = sorted({(f.shot_index, *shots[f.shot_index]) for f in frames if f.shot_index in shots})
    keyframes = [(f.time_s, images[f.item]) for f in frames]
    try:
        with local_file(video_uri) as video:
            return episode_lines(video, shot_spans, tools.reader, keyframes, sidecars=sidecar_srts(video_uri))
    except (OSError, ValueError) as exc:
        return {}, [
            LossRecord(
                stage="dialogue", item=video_uri, reason="unreadable_video", detail=" ".join(str(exc).split())[:300]
            )
        ]


def _people(frame: AnnotatedKeyframe, refinement, texts, height: int, lines: list[SubtitleCue]) -> list[dict]:
    """The refined people of a keyframe with their lines (what was read beats the MLLM's guess) and name captions."""
    areas = [
        (c.face_box[2] - c.face_box[0]) * (c.face_box[3] - c.face_box[1]) if c.face_box else None
        for c in refinement.characters
    ]
    filled, _ = assign_lines(frame.people, lines, pick_speaker(frame.people, areas))
    people = []
    for character in refinement.characters:
        data = asdict(character)
        said = filled[character.person_index] if character.person_index < len(filled) else {}
        data["line"], data["line_source"] = said.get("line"), said.get("line_source")
        data["caption"] = (
            name_caption([(t.text, t.box) for t in texts], character.face_box, height) if character.face_box else None
        )
        people.append(json.loads(json.dumps(data, default=str)))
    return people
