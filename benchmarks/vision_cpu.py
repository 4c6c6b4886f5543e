"""CPU speed of the offline vision defaults on 720p keyframes: face boxes (Haar) + OCR of
the subtitle band, on one core. Target (issue 5): >= 5 keyframes/s per core.

    .venv/bin/python benchmarks/vision_cpu.py [--frames 20]

Frames are the scikit-image photographs scaled to 1280x720 with the demo's subtitles
burned in. Prints keyframes/s for faces, OCR and both; timings depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import skimage.data

from skyscript_assets.demo.demo_drama import demo_episodes
from skyscript_assets.demo.synthetic import burn_subtitle
from skyscript_assets.models.faces import HaarFaceDetector
from skyscript_assets.models.ocr import TextReader
from skyscript_assets.stages.refinement.dialogue import bottom_band_cues


def keyframes(count: int) -> list[np.ndarray]:
    photos = [
        skimage.data.astronaut(),
        skimage.data.coffee(),
        skimage.data.chelsea(),
        np.stack([skimage.data.camera()] * 3, axis=-1),
    ]
    lines = [s.subtitle for shots in demo_episodes().values() for s in shots if s.subtitle]
    return [
        burn_subtitle(cv2.resize(photos[i % len(photos)], (1280, 720)), lines[i % len(lines)]) for i in range(count)
    ]


def rate(seconds: float, count: int) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core, as one worker process would have
    frames = keyframes(args.frames)
    faces, reader = HaarFaceDetector.load(), TextReader.load(threads=1)
    reader.read_text_lines([frames[0][540:]])  # warm-up: onnxruntime sessions allocate on first run

    start = time.perf_counter()
    faces.detect(frames)
    face_s = time.perf_counter() - start
    start = time.perf_counter()
    bottom_band_cues(reader, [(float(i), f) for i, f in enumerate(frames)])
    ocr_s = time.perf_counter() - start
    print(f"{args.frames} keyframes 1280x720, one core")
    print(f"faces (Haar, frontal)   {rate(face_s, args.frames):6.1f} keyframes/s")
    print(f"OCR (bottom 25 %)       {rate(ocr_s, args.frames):6.1f} keyframes/s")
    print(f"faces + OCR             {rate(face_s + ocr_s, args.frames):6.1f} keyframes/s   (target >= 5)")


if __name__ == "__main__":
    main()
