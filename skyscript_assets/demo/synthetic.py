"""Render videos with exactly known shot boundaries, for the demo drama and for tests.

A video is a list of `ShotSpec`s: a photograph, how long the shot lasts, how the camera
moves over it (static, pan, zoom), how the shot begins (hard cut, fade through black,
dissolve) and an optional subtitle line burned into the bottom band. `render_video`
writes the file with PyAV and returns its ground truth, frame-exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

TRANSITIONS = ("start", "cut", "fade", "dissolve")
MOTIONS = ("static", "pan", "zoom")


@dataclass(frozen=True)
class ShotSpec:
    image: np.ndarray  # RGB uint8, any size; it is cropped and scaled to the frame
    seconds: float
    motion: str = "static"
    transition_in: str = "cut"  # how this shot begins; the first shot's is "start"
    subtitle: str | None = None


def render_video(
    path: str | Path,
    shots: Sequence[ShotSpec],
    *,
    fps: int = 24,
    size: tuple[int, int] = (640, 360),
    transition_frames: int = 12,
    codec: str = "libx264",
    rotation: int = 0,
    sample_aspect_ratio: Fraction | None = None,
) -> dict:
    """Write `shots` to `path`; return the ground truth (cuts, gradual transitions, subtitles).

    A fade spends `transition_frames` fading the previous shot to black and as many
    fading the next one in; a dissolve cross-blends over `transition_frames`. Shot
    boundaries are the first frame of the new shot's own content (a cut) or the
    transition's interval (fades and dissolves).
    """
    width, height = size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    truth = {
        "fps": fps,
        "width": width,
        "height": height,
        "shots": [],
        "cut_frames": [],
        "cuts_s": [],
        "gradual_frames": [],
        "gradual_s": [],
        "subtitles": [],
    }

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            # One thread: x264's output bytes depend on its thread count, which it takes from
            # the cores; the same shots must give the same file on every machine.
            stream.options = {"crf": "20", "preset": "veryfast", "g": str(fps * 2), "threads": "1"}
        if rotation:
            stream.set_display_rotation(rotation)
        if sample_aspect_ratio is not None:
            stream.codec_context.sample_aspect_ratio = sample_aspect_ratio

        frame_index = 0

        def emit(rgb: np.ndarray) -> None:
            nonlocal frame_index
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = frame_index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
            frame_index += 1

        previous_last: np.ndarray | None = None
        for index, shot in enumerate(shots):
            frames = _shot_frames(shot, fps, width, height)
            transition = "start" if index == 0 else shot.transition_in
            if transition not in TRANSITIONS:
                raise ValueError(f"unknown transition {transition!r}; use one of {TRANSITIONS}")
            start = frame_index
            if transition == "fade" and previous_last is not None:
                for k in range(1, transition_frames + 1):
                    emit(_scale(previous_last, 1 - k / transition_frames))
                for k in range(transition_frames):
                    emit(_scale(frames[0], k / transition_frames))
                truth["gradual_frames"].append([start, frame_index - 1, "fade"])
            elif transition == "dissolve" and previous_last is not None:
                for k in range(1, transition_frames + 1):
                    alpha = k / (transition_frames + 1)
                    emit(_blend(previous_last, frames[min(k - 1, len(frames) - 1)], alpha))
                truth["gradual_frames"].append([start, frame_index - 1, "dissolve"])
            elif transition == "cut":
                truth["cut_frames"].append(start)
            shot_start = frame_index
            for rgb in frames:
                emit(rgb)
            truth["shots"].append(
                {
                    "index": index,
                    "start_frame": start,
                    "content_start_frame": shot_start,
                    "end_frame": frame_index - 1,
                    "transition_in": transition,
                    "motion": shot.motion,
                }
            )
            if shot.subtitle:
                truth["subtitles"].append(
                    {"text": shot.subtitle, "start_frame": shot_start, "end_frame": frame_index - 1}
                )
            previous_last = frames[-1]
        for packet in stream.encode():
            container.mux(packet)

    truth["frames"] = frame_index
    truth["duration_s"] = round(frame_index / fps, 6)
    truth["cuts_s"] = [round(f / fps, 6) for f in truth["cut_frames"]]
    truth["gradual_s"] = [[round(a / fps, 6), round((b + 1) / fps, 6), kind] for a, b, kind in truth["gradual_frames"]]
    for sub in truth["subtitles"]:
        sub["start_s"] = round(sub["start_frame"] / fps, 6)
        sub["end_s"] = round((sub["end_frame"] + 1) / fps, 6)
    return truth


def _shot_frames(shot: ShotSpec, fps: int, width: int, height: int) -> list[np.ndarray]:
    if shot.motion not in MOTIONS:
        raise ValueError(f"unknown motion {shot.motion!r}; use one of {MOTIONS}")
    count = max(1, int(round(shot.seconds * fps)))
    image = shot.image if shot.image.ndim == 3 else np.stack([shot.image] * 3, axis=-1)
    # Work on a canvas larger than the frame so pans and zooms have room to move.
    canvas = _cover(image, int(width * 1.3), int(height * 1.3))
    ch, cw = canvas.shape[:2]
    frames = []
    for i in range(count):
        t = i / max(1, count - 1)
        if shot.motion == "pan":
            x0 = int(round(t * (cw - width)))
            crop = canvas[(ch - height) // 2 : (ch - height) // 2 + height, x0 : x0 + width]
        elif shot.motion == "zoom":
            scale = 1.0 + 0.25 * t  # slow push-in
            cw_i, ch_i = int(round(cw / 1.3 / scale * 1.0)), int(round(ch / 1.3 / scale))
            y0, x0 = (ch - ch_i) // 2, (cw - cw_i) // 2
            crop = cv2.resize(canvas[y0 : y0 + ch_i, x0 : x0 + cw_i], (width, height), interpolation=cv2.INTER_AREA)
        else:
            y0, x0 = (ch - height) // 2, (cw - width) // 2
            crop = canvas[y0 : y0 + height, x0 : x0 + width]
        frame = np.ascontiguousarray(crop)
        if shot.subtitle:
            frame = burn_subtitle(frame, shot.subtitle)
        frames.append(frame)
    return frames


def burn_subtitle(frame: np.ndarray, text: str) -> np.ndarray:
    """White text with a black outline, centred in the bottom band, as dramas show lines."""
    out = frame.copy()
    height, width = out.shape[:2]
    scale = max(0.5, height / 600)
    thickness = max(1, int(round(scale * 2)))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    org = ((width - tw) // 2, height - int(height * 0.06))
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 3, cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def _cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height, then centre-crop (like CSS object-fit: cover)."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    resized = cv2.resize(
        image,
        (max(width, int(np.ceil(w * scale))), max(height, int(np.ceil(h * scale)))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    rh, rw = resized.shape[:2]
    y0, x0 = (rh - height) // 2, (rw - width) // 2
    return resized[y0 : y0 + height, x0 : x0 + width]


def _scale(rgb: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def _blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    return np.clip(a.astype(np.float32) * (1 - alpha) + b.astype(np.float32) * alpha, 0, 255).astype(np.uint8)
