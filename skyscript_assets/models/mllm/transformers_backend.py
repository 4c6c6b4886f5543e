"""The `transformers` backend: a local Hugging Face vision-language model, CPU or GPU.

The model is loaded once from a local folder (never downloaded: `local_files_only`).
Requests are generated in batches of `batch_size` with left padding. Inputs are built
with the model's own processor when it loads; InternVL checkpoints, whose stock processor
needs torchvision, fall back to the image processor and tokenizer used directly (the
same token layout the InternVL processor produces: <img> + <IMG_CONTEXT> x n + </img>).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from skyscript_assets.models.base import is_out_of_memory, run_in_batches
from skyscript_assets.models.mllm import (
    BackendUnavailable,
    MllmReply,
    MllmRequest,
    decode_rgb,
    one_line,
    replies_in_order,
)


class TransformersBackend:
    def __init__(
        self,
        model_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 4,
        max_new_tokens: int = 1024,
    ):
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise BackendUnavailable(
                f"the transformers backend needs torch and transformers ({exc.name} is not installed)") from None
        if not Path(model_path).is_dir():
            raise BackendUnavailable(f"the transformers backend loads from a local folder; {model_path} is not one")
        self.torch = torch
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.needs_gpu = self.device.startswith("cuda")
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.model_id = f"transformers:{Path(model_path).name}"
        torch_dtype = {"auto": torch.bfloat16 if self.needs_gpu else torch.float32, "float32": torch.float32,
                       "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        self.model = transformers.AutoModelForImageTextToText.from_pretrained(
            model_path, dtype=torch_dtype, local_files_only=True).to(self.device).eval()
        self.inputs = _input_builder(transformers, model_path, self.model.config)

    def generate(self, requests: Sequence[MllmRequest]) -> list[MllmReply]:
        return run_in_batches(list(requests), self.batch_size, self._batch)

    def _batch(self, requests: Sequence[MllmRequest]) -> list[MllmReply]:
        started = time.perf_counter()
        usable, failed = [], {}
        for index, request in enumerate(requests):
            try:
                usable.append((index, [decode_rgb(image) for image in request.images], request.prompt))
            except ValueError as exc:
                failed[index] = one_line(exc)
        texts: dict[int, str] = {}
        if usable:
            try:
                encoded = self.inputs([images for _, images, _ in usable], [prompt for _, _, prompt in usable])
                encoded = {k: v.to(self.device) for k, v in encoded.items()}
                if "pixel_values" in encoded:
                    encoded["pixel_values"] = encoded["pixel_values"].to(self.model.dtype)
                with self.torch.inference_mode():
                    output = self.model.generate(**encoded, max_new_tokens=self.max_new_tokens, do_sample=False)
                new_tokens = output[:, encoded["input_ids"].shape[1]:]
                decoded = self.inputs.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
                texts = {index: text for (index, _, _), text in zip(usable, decoded)}
            except (RuntimeError, ValueError) as exc:  # this batch fails, not the run
                if is_out_of_memory(exc):
                    raise  # run_in_batches halves the batch and tries again
                failed.update({index: one_line(f"generate failed: {exc}") for index, _, _ in usable})
        seconds = (time.perf_counter() - started) / max(len(requests), 1)
        return replies_in_order(len(requests), texts, failed, seconds)

    def close(self) -> None:
        del self.model
        if self.needs_gpu:
            self.torch.cuda.empty_cache()


def _input_builder(transformers, model_path: str, config):
    try:
        return ProcessorInputs(transformers.AutoProcessor.from_pretrained(model_path, local_files_only=True))
    except (ImportError, ValueError, OSError, AttributeError) as exc:
        if getattr(config, "model_type", "") != "internvl":
            raise BackendUnavailable(f"cannot load the processor of {model_path}: {one_line(exc)}") from None
    return InternVLInputs(
        transformers.AutoTokenizer.from_pretrained(model_path, local_files_only=True),
        transformers.AutoImageProcessor.from_pretrained(model_path, local_files_only=True),
        config,
    )


class ProcessorInputs:
    """Any model whose processor takes (images, chat-templated text)."""

    def __init__(self, processor):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"  # generation continues at the right edge

    def __call__(self, images: list[list], prompts: list[str]) -> dict:
        texts = [self.processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}] * len(imgs) + [{"type": "text", "text": prompt}]}],
            add_generation_prompt=True, tokenize=False) for imgs, prompt in zip(images, prompts)]
        return dict(self.processor(images=images, text=texts, return_tensors="pt", padding=True))


class InternVLInputs:
    """InternVL's input layout without its processor: each image becomes
    "Image-k: <img><IMG_CONTEXT>...</img>" with one context token per visual token."""

    def __init__(self, tokenizer, image_processor, config):
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.image_processor = image_processor
        vision = config.vision_config
        image_size = vision.image_size[0] if isinstance(vision.image_size, (list, tuple)) else vision.image_size
        patch_size = vision.patch_size[0] if isinstance(vision.patch_size, (list, tuple)) else vision.patch_size
        self.tokens_per_tile = int((image_size // patch_size) ** 2 * config.downsample_ratio**2)

    def __call__(self, images: list[list], prompts: list[str]) -> dict:
        flat = [image for request_images in images for image in request_images]
        pixels = self.image_processor(images=flat, return_tensors="pt")
        tiles = pixels.get("num_patches")
        tiles = [int(n) for n in tiles] if tiles is not None else [1] * len(flat)
        texts, cursor = [], 0
        for request_images, prompt in zip(images, prompts):
            placeholders = []
            for k in range(len(request_images)):
                context = "<IMG_CONTEXT>" * (self.tokens_per_tile * tiles[cursor])
                placeholders.append(f"Image-{k + 1}: <img>{context}</img>\n")
                cursor += 1
            user = "".join(placeholders) + prompt
            if self.tokenizer.chat_template:
                user = self.tokenizer.apply_chat_template([{"role": "user", "content": user}],
                                                          add_generation_prompt=True, tokenize=False)
            texts.append(user)
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                "pixel_values": pixels["pixel_values"]}
