"""MLLM pre-extraction: the valid keyframes of each shot, a few per request, to a
multimodal LLM; its output kept verbatim.

What the `raw_mllm_json` asset calls (the backend built once per run with
`models.mllm.load_backend(name, **config)`, closed at the end):

    result = annotate_episode(backend, episode_id, keyframes, max_images_per_request=4)
    result.results: RawAnnotation per answered request (text, items, model_id, prompt_version)
    result.losses:  LossRecord per keyframe lost; a failed request's are transient (retried next run)

Provenance: `RawAnnotation.model_id` and `.prompt_version` ("frame_annotation/v2"), and
STAGE_VERSION. A request that fails, or an image that cannot be read, is a LossRecord per
keyframe; the rest of the episode goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby

import fsspec

from skyscript_assets.models.mllm import MllmBackend, MllmRequest
from skyscript_assets.prompts import FRAME_ANNOTATION, PromptTemplate, frame_annotation_prompt, load_prompt
from skyscript_assets.schema import LossRecord
from skyscript_assets.stages.step import EpisodeResult

STAGE = "raw_mllm_json"
STAGE_VERSION = "1"


@dataclass(frozen=True)
class KeyframeInput:
    item: str  # the keyframe's id, e.g. "ep01/shot0003/kf01": what rows and losses name
    shot_key: str  # keyframes of one shot share this; only they share a request
    uri: str  # the encoded image in the artifact store (any fsspec URL)
    time_s: float | None = None


@dataclass(frozen=True)
class RawAnnotation:
    items: tuple[str, ...]  # the keyframes of the request, in image order
    text: str  # the model's output, verbatim
    model_id: str
    prompt_version: str
    seconds: float  # the backend's time for this request (in-process backends: a share of their batch)


def read_image_bytes(uri: str) -> bytes:
    with fsspec.open(uri, "rb") as handle:
        return handle.read()


def shot_batches(keyframes: Sequence[KeyframeInput], max_images: int) -> list[list[KeyframeInput]]:
    """Consecutive keyframes of the same shot, at most `max_images` per batch."""
    if max_images < 1:
        raise ValueError("max_images must be at least 1")
    batches = []
    for _, group in groupby(keyframes, key=lambda kf: kf.shot_key):
        shot = list(group)
        batches.extend(shot[i : i + max_images] for i in range(0, len(shot), max_images))
    return batches


def annotate_keyframes(
    backend: MllmBackend,
    keyframes: Sequence[KeyframeInput],
    *,
    max_images_per_request: int = 4,
    prompt: PromptTemplate | None = None,
    read_image: Callable[[str], bytes] = read_image_bytes,
) -> tuple[list[RawAnnotation], list[LossRecord]]:
    """One RawAnnotation per request that got an answer, and a LossRecord per keyframe lost."""
    template = prompt or load_prompt(FRAME_ANNOTATION)
    losses: list[LossRecord] = []
    batches: list[tuple[list[KeyframeInput], MllmRequest]] = []
    for batch in shot_batches(keyframes, max_images_per_request):
        readable, images = [], []
        for keyframe in batch:
            try:
                images.append(read_image(keyframe.uri))
                readable.append(keyframe)
            except (OSError, ValueError) as exc:
                losses.append(_loss(keyframe.item, "unreadable_image", f"{keyframe.uri}: {exc}"))
        if readable:
            batches.append((readable, MllmRequest(tuple(images), frame_annotation_prompt(len(images), template))))

    replies = backend.generate([request for _, request in batches]) if batches else []
    results: list[RawAnnotation] = []
    for (batch, _), reply in zip(batches, replies, strict=True):
        if reply.text is None:  # the server may answer next time: retried by the next run
            losses.extend(
                _loss(kf.item, "mllm_request_failed", reply.error or "no reply", transient=True) for kf in batch
            )
        else:
            results.append(
                RawAnnotation(
                    tuple(kf.item for kf in batch), reply.text, backend.model_id, template.version, reply.seconds
                )
            )
    return results, losses


def annotate_episode(
    backend: MllmBackend, episode_id: str, keyframes: Sequence[KeyframeInput], *, max_images_per_request: int = 4
) -> EpisodeResult[RawAnnotation]:
    """The stage entry point: one episode's valid keyframes annotated."""
    raws, losses = annotate_keyframes(backend, keyframes, max_images_per_request=max_images_per_request)
    seconds = sum(r.seconds for r in raws)
    return EpisodeResult(
        episode_id,
        raws,
        losses,
        given=len(keyframes),
        model_id=backend.model_id,
        summary={
            "requests": len(raws),
            "images": sum(len(r.items) for r in raws),
            "model_id": backend.model_id,
            "seconds": round(seconds, 4),
        },
    )


def responses_jsonl(raws: Sequence[RawAnnotation]) -> bytes:
    """The replies of an episode as JSON lines, verbatim: the artifact beside the catalog rows."""
    return "".join(
        json.dumps(
            {"items": list(r.items), "text": r.text, "model_id": r.model_id, "prompt_version": r.prompt_version},
            ensure_ascii=False,
        )
        + "\n"
        for r in raws
    ).encode()


def _loss(item: str, reason: str, detail: str, *, transient: bool = False) -> LossRecord:
    return LossRecord(
        stage=STAGE, item=item, reason=reason, detail=" ".join(detail.split())[:300], transient=transient
    )
