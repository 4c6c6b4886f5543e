"""GPU check: the `gpu`-marked tests, then the MLLM throughput proxy, in one prepared run.

    python benchmarks/gpu_check.py                 # on a CUDA machine (a time budget keeps it under 6 min)
    python benchmarks/gpu_check.py --tiny          # CPU rehearsal: same steps, the tiny test model
    python benchmarks/gpu_check.py --json out.json # also write the figures as JSON

1. `pytest -m gpu` over tests/ plus tests/models/test_internvl_inputs.py (with torchvision
   installed, as on GPU images, it checks the backend's InternVL ids against the stock processor).
2. The throughput proxy: an InternVL-class model of about 2 B parameters (InternViT-300M-448px
   layout + a Qwen2-1.5B-layout language model) with random weights, built from its config here
   (nothing is downloaded), saved as an "-hf" folder and loaded by the transformers backend as
   production loads a model. Requests: `--per-request` 448 px keyframes each with the project's
   frame annotation prompt; `--new-tokens` (256) new tokens at most (random weights seldom write
   an end-of-text token, so nearly every reply runs to the limit: a worst case). Batch 1, batch 4
   and "auto" (the backend's default: probe upward, back off on out-of-memory); for auto the
   figures of the batches at the size it settled on are given beside those of the whole run.
   Per mode: keyframes/s, generated tokens/s, peak GPU memory.

A time budget (`--budget-s`, default 330) keeps the whole run under 6 minutes: a phase that
would start past it is skipped and reported as such, and the auto run stops taking new
batches once the budget is spent (what it finished is reported).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from skyscript_assets.models.mllm import MllmRequest, load_backend  # noqa: E402
from skyscript_assets.models.mllm.batching import AutoBatcher  # noqa: E402
from skyscript_assets.prompts import frame_annotation_prompt  # noqa: E402


class BudgetSpent(Exception):
    pass


def run_gpu_tests(timeout_s: float) -> dict:
    # a module that fails to import elsewhere in tests/ is reported, and does not stop the rest
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--continue-on-collection-errors"]
    started = time.perf_counter()
    results = {}
    for name, cmd in (
        ("gpu-marked tests", pytest + ["-m", "gpu", "tests"]),
        # unmarked, but its torchvision check runs only where torchvision imports (GPU images)
        ("InternVL inputs (torchvision parity)", pytest + ["tests/models/test_internvl_inputs.py"]),
    ):
        try:
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
            lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
            summary = lines[-1] if lines else done.stderr.strip()[-300:]
            results[name] = {
                "returncode": done.returncode,
                "summary": summary,
                "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))],
            }
        except subprocess.TimeoutExpired:
            results[name] = {"returncode": None, "summary": f"timed out after {timeout_s:.0f} s", "failures": []}
        print(f"  {name}: {results[name]['summary']}")
        for failure in results[name]["failures"]:
            print(f"    {failure}")
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def build_proxy(folder: Path, *, tiny: bool, device: str) -> tuple[Path, int]:
    """The proxy model saved as an "-hf" folder; returns (folder, parameter count)."""
    import torch
    from tiny_vlm import build_tiny_internvl, internvl_tokenizer, save_internvl_folder

    from skyscript_assets.models.hf import import_transformers

    if tiny:
        build_tiny_internvl(folder)
        transformers = import_transformers()
        model = transformers.AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True)
        return folder, sum(p.numel() for p in model.parameters())
    transformers = import_transformers()
    # trained on the prompts themselves, so that the prompt takes about as many tokens as with a real
    # tokenizer (words, not bytes: ~1 token a word); the model's vocabulary keeps Qwen2's size
    tokenizer = internvl_tokenizer(corpus=[frame_annotation_prompt(n) for n in range(1, 5)] * 4, vocab_size=3000)
    config = transformers.InternVLConfig(
        # InternViT-300M-448px: the vision tower of InternVL2/2.5/3 at 1-8 B
        vision_config=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=[448, 448],
            patch_size=[14, 14],
        ),
        # the Qwen2-1.5B layout (InternVL2.5-2B / InternVL3-2B language model), untied output head
        text_config=dict(
            model_type="qwen2",
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            vocab_size=151674,
            max_position_embeddings=32768,
            rope_theta=1000000.0,
            tie_word_embeddings=False,
        ),
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        downsample_ratio=0.5,
        tie_word_embeddings=False,
    )  # 2.09 B parameters, the size of the measurements
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            torch.manual_seed(0)
            model = transformers.InternVLForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    parameters = sum(p.numel() for p in model.parameters())
    save_internvl_folder(folder, model, tokenizer)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return folder, parameters


def keyframe_jpegs(count: int, size: int = 448) -> list[bytes]:
    rng = np.random.default_rng(0)
    images = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(buffer, "JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def measure(backend, requests: list[MllmRequest], batcher: AutoBatcher, deadline: float) -> dict:
    """Generate `requests` with `batcher`; per-batch sizes and times are recorded."""
    import torch

    cuda = backend.device.startswith("cuda")
    backend.batcher = batcher
    batches: list[tuple[int, float, int]] = []  # (requests, seconds, generated tokens)
    inner = backend._batch

    def timed(batch):
        if time.perf_counter() > deadline:
            raise BudgetSpent()
        tokens_before, started = backend.generated_tokens, time.perf_counter()
        replies = inner(batch)
        if cuda:
            torch.cuda.synchronize()
        batches.append((len(batch), time.perf_counter() - started, backend.generated_tokens - tokens_before))
        return replies

    backend._batch = timed
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    stopped_early = False
    failures = 0
    try:
        replies = backend.generate(requests)
        failures = sum(1 for r in replies if r.text is None)
        first_error = next((r.error for r in replies if r.text is None), None)
    except BudgetSpent:
        stopped_early, first_error = True, None
    finally:
        backend._batch = inner
    seconds = time.perf_counter() - started
    per_request = len(requests[0].images)
    done = sum(n for n, _, _ in batches)
    result = {
        "requests": done,
        "keyframes": done * per_request,
        "seconds": round(seconds, 2),
        "keyframes_per_s": round(done * per_request / seconds, 3) if seconds else None,
        "generated_tokens_per_s": round(sum(t for _, _, t in batches) / seconds, 1) if seconds else None,
        "batches": [n for n, _, _ in batches],
        "batch_size_after": batcher.size,
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "failed_requests": failures,
        "first_error": first_error,
        "stopped_by_budget": stopped_early,
    }
    settled = [b for b in batches if b[0] == batcher.size]
    if settled and len(settled) < len(batches):
        settled_seconds = sum(s for _, s, _ in settled)
        result["at_settled_size"] = {
            "batch_size": batcher.size,
            "batches": len(settled),
            "keyframes_per_s": round(sum(n for n, _, _ in settled) * per_request / settled_seconds, 3),
            "generated_tokens_per_s": round(sum(t for _, _, t in settled) / settled_seconds, 1),
        }
    return result


def describe(name: str, result: dict) -> str:
    if "skipped" in result:
        return f"  {name:<10} skipped: {result['skipped']}"
    line = (
        f"  {name:<10} {result['keyframes_per_s']:>8.3f} keyframes/s"
        f"  {result['generated_tokens_per_s']:>9.1f} tokens/s"
        f"  {result['requests']:>4} requests in {result['seconds']:.1f} s, batches {compact(result['batches'])}"
    )
    if result["peak_gpu_gib"] is not None:
        line += f", peak {result['peak_gpu_gib']:.1f} GiB"
    if result.get("at_settled_size"):
        settled = result["at_settled_size"]
        line += (
            f"\n  {'':<10} at the settled size {settled['batch_size']}: {settled['keyframes_per_s']:.3f} "
            f"keyframes/s, {settled['generated_tokens_per_s']:.1f} tokens/s ({settled['batches']} batches)"
        )
    if result["failed_requests"]:
        line += f"\n  {'':<10} {result['failed_requests']} requests failed: {result['first_error']}"
    if result["stopped_by_budget"]:
        line += f"\n  {'':<10} stopped by the time budget"
    return line


def compact(sizes: list[int]) -> str:
    out, previous, count = [], None, 0
    for size in sizes + [None]:
        if size == previous:
            count += 1
            continue
        if previous is not None:
            out.append(f"{previous}x{count}" if count > 1 else str(previous))
        previous, count = size, 1
    return ",".join(out) or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU rehearsal with the tiny test model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--per-request", type=int, default=1, help="keyframes per request")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--single-requests", type=int, default=None, help="requests measured at batch 1")
    parser.add_argument("--four-requests", type=int, default=None, help="requests measured at batch 4")
    parser.add_argument("--auto-requests", type=int, default=None, help="requests measured with batch auto")
    parser.add_argument("--max-batch-size", type=int, default=0, help="auto's ceiling (0: the backend's default)")
    parser.add_argument("--budget-s", type=float, default=330.0)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    options = parser.parse_args()

    import torch

    started = time.perf_counter()
    deadline = started + options.budget_s
    device = ("cuda" if torch.cuda.is_available() else "cpu") if options.device == "auto" else options.device
    if device.startswith("cuda") and options.tiny is False:
        name = torch.cuda.get_device_name(0)
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        device_line = f"{name}, {total:.0f} GiB"
    elif options.tiny:
        device_line = f"{device} (tiny rehearsal: not a GPU figure)"
    else:
        print("no CUDA device here: run with --tiny for the CPU rehearsal", file=sys.stderr)
        return 2
    single = options.single_requests or (4 if options.tiny else 2)
    four = options.four_requests or (8 if options.tiny else 8)
    auto = options.auto_requests or (24 if options.tiny else 1024)
    report: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "device": device_line,
        "torch": torch.__version__,
        "mode": "tiny" if options.tiny else "2B proxy",
        "per_request": options.per_request,
        "new_tokens": options.new_tokens,
    }
    print(f"GPU check on {device_line}; torch {torch.__version__}")

    if not options.skip_tests:
        print("1. tests")
        report["tests"] = run_gpu_tests(timeout_s=max(30.0, min(150.0, deadline - time.perf_counter() - 120)))

    print("2. throughput proxy")
    with tempfile.TemporaryDirectory() as scratch:
        build_started = time.perf_counter()
        folder, parameters = build_proxy(Path(scratch) / "internvl-proxy", tiny=options.tiny, device=device)
        report["parameters"] = parameters
        report["build_seconds"] = round(time.perf_counter() - build_started, 1)
        backend = load_backend(
            "transformers",
            model_path=str(folder),
            device=device,
            max_new_tokens=options.new_tokens,
            max_batch_size=options.max_batch_size,
        )
        size = f"{parameters / 1e9:.2f} B" if parameters >= 1e8 else f"{parameters:,}"
        print(
            f"  model: {size} parameters ({'tiny test model' if options.tiny else 'random weights'}),"
            f" built and loaded in {time.perf_counter() - build_started:.0f} s; {options.per_request} keyframe(s) "
            f"of 448 px per request, up to {options.new_tokens} new tokens"
        )
        images = keyframe_jpegs(max(single, four, auto) * options.per_request)
        prompt = frame_annotation_prompt(options.per_request)
        report["prompt_tokens"] = len(backend.inputs.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        report["image_tokens_per_keyframe"] = backend.inputs.tokens_per_tile  # 448 px: one tile
        print(f"  prompt: {report['prompt_tokens']} text tokens + {report['image_tokens_per_keyframe']} per keyframe")
        requests = [
            MllmRequest(tuple(images[i * options.per_request : (i + 1) * options.per_request]), prompt)
            for i in range(max(single, four, auto))
        ]
        backend.generate(requests[:1])  # warm-up: kernels, allocator
        key = ("gpu_check", str(folder), device)
        report["throughput"] = {}
        for name, count, batcher in (
            ("batch 1", single, AutoBatcher.fixed(key + ("1",), 1)),
            ("batch 4", four, AutoBatcher.fixed(key + ("4",), 4)),
            ("auto", auto, backend.batcher),
        ):
            if time.perf_counter() > deadline:
                result = {"skipped": "time budget spent"}
            else:
                result = measure(backend, requests[:count], batcher, deadline)
            report["throughput"][name] = result
            print(describe(name, result))
        backend.close()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(f"total {report['total_seconds']:.0f} s")
    if options.json:
        options.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    tests_ok = all(v.get("returncode") in (0, 5) for k, v in report.get("tests", {}).items() if k != "seconds")
    lost = any(r.get("failed_requests") for r in report["throughput"].values())
    return 0 if tests_ok and not lost else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
