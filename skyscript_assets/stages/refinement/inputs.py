"""What the refinement stages take: keyframes with their cleaned MLLM annotation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skyscript_assets.storage import read_bytes


@dataclass(frozen=True)
class AnnotatedKeyframe:
    """A keyframe with its cleaned MLLM annotation, as the refinement stages take it."""

    item: str
    keyframe_index: int
    shot_index: int
    time_s: float
    uri: str
    people: list[dict] = field(default_factory=list)
    object_names: list[str] = field(default_factory=list)


def decode_image(uri: str) -> np.ndarray:
    """A keyframe as an RGB array."""
    from skyscript_assets.models.mllm import decode_rgb

    return np.asarray(decode_rgb(read_bytes(uri)))
