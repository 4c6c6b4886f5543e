"""Images/s of the in-process MLLM backends on one randomly initialised InternVL-class model
(built here, saved to a temp folder, loaded by each backend from that folder).

    python benchmarks/mllm.py [--images 64] [--per-request 4] [--hidden 256] [--layers 4] [--device auto]

`transformers` runs anywhere (CPU or CUDA); `lmdeploy` runs where lmdeploy and CUDA are
installed (the `gpu` extra) and is reported as skipped elsewhere. Both stop at the same
`--new-tokens` limit (a random model may stop earlier at its end-of-text token).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tiny_vlm import build_tiny_internvl  # noqa: E402

from skyscript_assets.models.mllm import BackendUnavailable, MllmRequest, load_backend  # noqa: E402


def measure(name: str, config: dict, requests: list[MllmRequest]) -> float | str:
    try:
        backend = load_backend(name, **config)
    except BackendUnavailable as exc:
        return f"skipped: {exc}"
    backend.generate(requests[:1])  # warm-up: kernels, caches
    started = time.perf_counter()
    replies = backend.generate(requests)
    elapsed = time.perf_counter() - started
    backend.close()
    failed = [r.error for r in replies if r.text is None]
    if failed:
        return f"failed: {failed[0]}"
    return sum(len(r.images) for r in requests) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--per-request", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    options = parser.parse_args()

    rng = np.random.default_rng(0)
    images = []
    for _ in range(options.images):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (360, 640, 3), np.uint8)).save(buffer, "JPEG")
        images.append(buffer.getvalue())
    requests = [
        MllmRequest(tuple(images[i : i + options.per_request]), "Describe each image as JSON.")
        for i in range(0, len(images), options.per_request)
    ]
    with tempfile.TemporaryDirectory() as folder:
        model = build_tiny_internvl(
            Path(folder) / "internvl-random",
            hidden=options.hidden,
            layers=options.layers,
            image_size=options.image_size,
        )
        results = {
            "transformers": measure(
                "transformers",
                {
                    "model_path": str(model),
                    "device": options.device,
                    "batch_size": options.batch_size,
                    "max_new_tokens": options.new_tokens,
                },
                requests,
            ),
            "lmdeploy": measure(
                "lmdeploy", {"model_path": str(model), "max_new_tokens": options.new_tokens}, requests
            ),
        }
    print(
        f"random InternVL (hidden {options.hidden}, {options.layers} layers, {options.image_size} px), "
        f"{options.images} images, {options.per_request} per request, {options.new_tokens} new tokens"
    )
    for name, value in results.items():
        print(f"  {name:<13} " + (f"{value:8.1f} images/s" if isinstance(value, float) else value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
