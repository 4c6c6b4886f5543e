"""Throughput of the `openai` MLLM backend against a local chat-completions server that
answers each request after a fixed latency (default 200 ms), in its own process.

    python benchmarks/mllm_openai.py [--requests 400] [--concurrency 32] [--latency 0.2]

Target (issue 4): >= 50 requests/s at 200 ms latency on the 2-core development machine.
Every request carries one 640x360 JPEG as a base64 data URL, as production requests do.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyscript_assets.models.mllm import MllmRequest, load_backend  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    options = parser.parse_args()

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (360, 640, 3), np.uint8)).save(buffer, "JPEG")
    request = MllmRequest((buffer.getvalue(),), "annotate. scenario=good")

    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "fake_chat_server.py"),
            "--latency",
            str(options.latency),
            "--seconds",
            "300",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        backend = load_backend(
            "openai",
            base_url=base_url,
            model="bench",
            max_concurrency=options.concurrency,
            api_key_env="",
            timeout_s=30,
        )
        backend.generate([request] * options.concurrency)  # warm-up: threads and connections
        started = time.perf_counter()
        replies = backend.generate([request] * options.requests)
        elapsed = time.perf_counter() - started
        backend.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    failed = sum(r.text is None for r in replies)
    rate = options.requests / elapsed
    print(
        f"openai backend: {options.requests} requests, concurrency {options.concurrency}, "
        f"server latency {options.latency * 1000:.0f} ms: {rate:.1f} requests/s "
        f"(ideal {options.concurrency / options.latency:.0f}), {failed} failed"
    )
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
