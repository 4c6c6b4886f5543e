"""The `transformers` backend: a local Hugging Face vision-language model, CPU or GPU.

The model is loaded once from a local folder (never downloaded: `local_files_only`).

Inputs are built the way the folder's `config.json` says, never by trying what happens to load
(with torchvision installed the stock processors load where they fail without it, so a choice by
exception made the GPU image behave unlike the tests):

    model_type "internvl"        HF-native InternVL ("-hf" folders): InternVLInputs, the layout of
                                 the stock InternVLProcessor built from the folder's image processor,
                                 tokenizer and chat template. Each image token the chat template
                                 writes (<IMG_CONTEXT>) becomes <img> + <IMG_CONTEXT> x (tokens per
                                 tile x tiles) + </img>; the same ids with or without torchvision.
    model_type "internvl_chat"   the original OpenGVLab folders (remote code): not loadable here; a
                                 one-line error points to the "-hf" conversion or lmdeploy
    anything else                the folder's own processor (AutoProcessor) with its chat template;
                                 the folder needs a processor config, and a chat template that writes
                                 one image token per image is checked at load time

Requests are sorted longest first and generated in batches sized by `batch_size`: "auto" (the
default) probes for the largest batch that fits the device and backs off on out-of-memory,
remembered per model and device (see batching.py); an integer fixes the size. Generation stops
at the end-of-text token or where the reply's JSON object closes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from skyscript_assets.models.mllm import (
    BackendUnavailable,
    MllmReply,
    MllmRequest,
    decode_rgb,
    one_line,
    replies_in_order,
)
from skyscript_assets.models.mllm.batching import AutoBatcher

# the most requests one batch may hold with batch_size="auto", where max_batch_size is not given
AUTO_CEILING = {"cuda": 512, "cpu": 8}
AUTO_START = 4


class TransformersBackend:
    def __init__(
        self,
        model_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | str = "auto",
        max_batch_size: int = 0,
        max_new_tokens: int = 1024,
        max_tiles: int = 0,
        stop_at_json_end: bool = True,
    ):
        """`batch_size`: "auto" or a fixed number of requests per batch; `max_batch_size`: the
        ceiling of "auto" (0: 512 on CUDA, 8 on CPU); `max_tiles`: InternVL's tiles per image
        (0: the checkpoint's own setting, 1: no tiling)."""
        try:
            import torch

            from skyscript_assets.models.hf import import_transformers

            transformers = import_transformers()
        except ImportError as exc:
            raise BackendUnavailable(
                f"the transformers backend needs torch and transformers ({exc.name} is not installed)"
            ) from None
        folder = Path(model_path)
        if not folder.is_dir():
            raise BackendUnavailable(f"the transformers backend loads from a local folder; {model_path} is not one")
        kind = input_builder_kind(folder)  # before the weights: a folder we cannot feed fails fast
        self.torch = torch
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.needs_gpu = self.device.startswith("cuda")
        self.max_new_tokens = max_new_tokens
        self.stop_at_json_end = stop_at_json_end
        self.model_id = f"transformers:{folder.name}"
        torch_dtype = {
            "auto": torch.bfloat16 if self.needs_gpu else torch.float32,
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
        }[dtype]
        self.model = (
            transformers.AutoModelForImageTextToText.from_pretrained(
                model_path, dtype=torch_dtype, local_files_only=True
            )
            .to(self.device)
            .eval()
        )
        if kind == "internvl":
            self.inputs = InternVLInputs(
                transformers.AutoTokenizer.from_pretrained(model_path, local_files_only=True),
                transformers.AutoImageProcessor.from_pretrained(model_path, local_files_only=True),
                self.model.config,
                max_tiles=max_tiles,
            )
        else:
            self.inputs = ProcessorInputs.load(transformers, model_path)
        key = (str(folder.resolve()), self.device, str(torch_dtype), max_new_tokens, max_tiles)
        if batch_size == "auto":
            ceiling = max_batch_size or AUTO_CEILING["cuda" if self.needs_gpu else "cpu"]
            self.batcher = AutoBatcher(key, start=min(AUTO_START, ceiling), ceiling=ceiling)
        elif isinstance(batch_size, int) and batch_size > 0:
            self.batcher = AutoBatcher.fixed(key, batch_size)
        else:
            raise ValueError(f"batch_size is 'auto' or a positive number, not {batch_size!r}")
        self.generated_tokens = 0  # new tokens written so far (benchmarks read it)

    @property
    def batch_size(self) -> int:
        """The size the next batch starts at (what "auto" has found so far)."""
        return self.batcher.size

    def generate(self, requests: Sequence[MllmRequest]) -> list[MllmReply]:
        # longest first: requests of one batch pad to similar lengths, and the probe meets the
        # heaviest batches while it is still small
        order = sorted(
            range(len(requests)), key=lambda i: (len(requests[i].images), len(requests[i].prompt)), reverse=True
        )
        sorted_replies = self.batcher.run([requests[i] for i in order], self._batch)
        replies: list[MllmReply] = [None] * len(requests)  # type: ignore[list-item]
        for position, index in enumerate(order):
            replies[index] = sorted_replies[position]
        return replies

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
                texts = self._generate_texts(usable)
            except (RuntimeError, ValueError) as exc:  # this batch fails, not the run
                if _is_out_of_memory(exc):
                    raise  # the batcher backs off and retries these requests
                failed.update({index: one_line(f"generate failed: {exc}") for index, _, _ in usable})
        seconds = (time.perf_counter() - started) / max(len(requests), 1)
        return replies_in_order(len(requests), texts, failed, seconds)

    def _generate_texts(self, usable: list) -> dict[int, str]:
        encoded = self.inputs([images for _, images, _ in usable], [prompt for _, _, prompt in usable])
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        if "pixel_values" in encoded:
            encoded["pixel_values"] = encoded["pixel_values"].to(self.model.dtype)
        prompt_length = encoded["input_ids"].shape[1]
        options = {}
        if self.stop_at_json_end:
            options["stopping_criteria"] = json_end_criteria(self.inputs.tokenizer, len(usable))
        with self.torch.inference_mode():
            output = self.model.generate(**encoded, max_new_tokens=self.max_new_tokens, do_sample=False, **options)
        new_tokens = output[:, prompt_length:]
        pad = self.model.generation_config.pad_token_id
        self.generated_tokens += int((new_tokens != pad).sum()) if pad is not None else new_tokens.numel()
        decoded = self.inputs.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return {index: text for (index, _, _), text in zip(usable, decoded)}

    def close(self) -> None:
        del self.model
        if self.needs_gpu:
            self.torch.cuda.empty_cache()


def _is_out_of_memory(exc: BaseException) -> bool:
    from skyscript_assets.models.base import is_out_of_memory

    return is_out_of_memory(exc)


# ---------------------------------------------------------------------------------------------
# choosing the input builder from the folder


def read_model_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackendUnavailable(f"{folder} has no readable config.json: {one_line(exc)}") from None


def input_builder_kind(folder: Path) -> str:
    """ "internvl" or "processor", from the folder's config.json and files; a folder this
    backend cannot feed raises BackendUnavailable (one line)."""
    config = read_model_config(folder)
    model_type = config.get("model_type", "")
    architectures = config.get("architectures") or []
    if model_type == "internvl" or "InternVLForConditionalGeneration" in architectures:
        return "internvl"
    if model_type == "internvl_chat" or "InternVLChatModel" in architectures:
        raise BackendUnavailable(
            f"{folder} is an original OpenGVLab InternVL checkpoint (remote code); the transformers backend "
            "loads the HF-native '-hf' folders: convert it, or serve it with lmdeploy"
        )
    if not any((folder / name).is_file() for name in ("processor_config.json", "preprocessor_config.json")):
        raise BackendUnavailable(
            f"{folder} has no processor_config.json or preprocessor_config.json: "
            f"the transformers backend needs the model's processor ({model_type or 'unknown type'})"
        )
    return "processor"


class ProcessorInputs:
    """Any model whose processor takes (images, chat-templated text)."""

    def __init__(self, processor):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"  # generation continues at the right edge

    @classmethod
    def load(cls, transformers, model_path: str) -> ProcessorInputs:
        try:
            processor = transformers.AutoProcessor.from_pretrained(model_path, local_files_only=True)
        except (ImportError, ValueError, OSError, AttributeError) as exc:
            raise BackendUnavailable(f"cannot load the processor of {model_path}: {one_line(exc)}") from None
        inputs = cls(processor)
        inputs.check_template(model_path)
        return inputs

    def render(self, image_count: int, prompt: str) -> str:
        content = [{"type": "image"}] * image_count + [{"type": "text", "text": prompt}]
        return self.processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )

    def check_template(self, model_path: str) -> None:
        """A chat template that writes no image token makes every request fail; say so at load."""
        token = getattr(self.processor, "image_token", None)
        if not token:
            return
        try:
            written = self.render(2, "x").count(token)
        except Exception as exc:  # a template that cannot take image items at all
            raise BackendUnavailable(
                f"the chat template of {model_path} cannot take images: {one_line(exc)}"
            ) from None
        if written != 2:
            raise BackendUnavailable(
                f"the chat template of {model_path} writes {written} image tokens ({token}) for 2 images"
            )

    def __call__(self, images: list[list], prompts: list[str]) -> dict:
        texts = [self.render(len(imgs), prompt) for imgs, prompt in zip(images, prompts)]
        return dict(self.processor(images=images, text=texts, return_tensors="pt", padding=True))


class InternVLInputs:
    """The stock InternVLProcessor's input layout, built from the folder's image processor,
    tokenizer and chat template (the stock processor needs torchvision; this does not, and gives
    the same ids). Images are labelled "Image-k: " before their image token, InternVL's
    multi-image convention. A chat template that writes no image token (text-only) is used with
    the placeholders written into the text."""

    def __init__(self, tokenizer, image_processor, config, *, max_tiles: int = 0):
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.image_processor = image_processor
        self.image_token = getattr(tokenizer, "context_image_token", None) or "<IMG_CONTEXT>"
        self.start_token = getattr(tokenizer, "start_image_token", None) or "<img>"
        self.end_token = getattr(tokenizer, "end_image_token", None) or "</img>"
        vision = config.vision_config
        image_size = vision.image_size[0] if isinstance(vision.image_size, (list, tuple)) else vision.image_size
        patch_size = vision.patch_size[0] if isinstance(vision.patch_size, (list, tuple)) else vision.patch_size
        self.tokens_per_tile = int((image_size // patch_size) ** 2 * config.downsample_ratio**2)
        # the stock processor tiles (crop_to_patches) unless told otherwise
        self.image_options: dict = {"crop_to_patches": max_tiles != 1}
        if max_tiles > 1:
            self.image_options["max_patches"] = max_tiles
        self.template_writes_images = self._template_writes_images()

    def _template_writes_images(self) -> bool:
        if not self.tokenizer.chat_template:
            return False
        try:
            text = self._apply_template([{"type": "image"}, {"type": "image"}, {"type": "text", "text": "x"}])
        except Exception:  # a text-only template may fail on structured content
            return False
        return text.count(self.image_token) == 2

    def _apply_template(self, content) -> str:
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )

    def render(self, image_count: int, prompt: str) -> str:
        """The chat text with one image token per image (expanded later)."""
        if self.template_writes_images:
            content = []
            for k in range(image_count):
                content += [{"type": "text", "text": f"Image-{k + 1}: "}, {"type": "image"}]
            return self._apply_template(content + [{"type": "text", "text": prompt}])
        user = "".join(f"Image-{k + 1}: {self.image_token}\n" for k in range(image_count)) + prompt
        return self._apply_template(user) if self.tokenizer.chat_template else user

    def __call__(self, images: list[list], prompts: list[str]) -> dict:
        flat = [image for request_images in images for image in request_images]
        pixels = self.image_processor(images=flat, return_tensors="pt", **self.image_options)
        tiles = pixels.get("num_patches")
        tiles = [int(n) for n in tiles] if tiles is not None else [1] * len(flat)
        texts, cursor = [], 0
        for request_images, prompt in zip(images, prompts):
            pieces = self.render(len(request_images), prompt).split(self.image_token)
            if len(pieces) - 1 != len(request_images):
                raise ValueError(f"the prompt holds {len(pieces) - 1} image tokens for {len(request_images)} images")
            text = pieces[0]
            for piece in pieces[1:]:
                text += self.start_token + self.image_token * (self.tokens_per_tile * tiles[cursor]) + self.end_token
                text += piece
                cursor += 1
            texts.append(text)
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "pixel_values": pixels["pixel_values"],
        }


# ---------------------------------------------------------------------------------------------
# stopping where the JSON ends


class JsonEnd:
    """Follows generated text piece by piece and says when its first JSON object has closed:
    braces counted outside strings, escapes inside strings honoured."""

    def __init__(self) -> None:
        self.depth = 0
        self.started = False
        self.in_string = False
        self.escaped = False
        self.done = False

    def feed(self, text: str) -> bool:
        for char in text:
            if self.done:
                break
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
            elif char == '"' and self.started:
                self.in_string = True
            elif char == "{":
                self.depth += 1
                self.started = True
            elif char == "}" and self.started:
                self.depth -= 1
                if self.depth == 0:
                    self.done = True
        return self.done


def json_end_criteria(tokenizer, batch: int):
    """A transformers stopping criterion that ends each row of the batch where its JSON closes."""
    import torch

    from skyscript_assets.models.hf import import_transformers

    transformers = import_transformers()

    pieces: dict[int, str] = {}

    def piece(token_id: int) -> str:
        if token_id not in pieces:
            pieces[token_id] = tokenizer.decode([token_id], skip_special_tokens=True)
        return pieces[token_id]

    class JsonEndCriterion(transformers.StoppingCriteria):
        def __init__(self) -> None:
            self.rows = [JsonEnd() for _ in range(batch)]

        def __call__(self, input_ids, scores, **kwargs):
            last = input_ids[:, -1].tolist()
            done = [row.feed(piece(token)) if not row.done else True for row, token in zip(self.rows, last)]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return transformers.StoppingCriteriaList([JsonEndCriterion()])
