"""The `lmdeploy` backend: lmdeploy's in-process pipeline, the paper's setup (InternVL2-76B on
A800s), for GPU pods. lmdeploy is imported only when this backend is selected; it lives in the
`gpu` extra and needs CUDA.

    backend = LmdeployBackend("/models/InternVL2-76B", tp=4, session_len=16384,
                              cache_max_entry_count=0.5, chat_template="internvl2-internlm2")

The engine settings (LmdeploySettings) are plain values, checked before lmdeploy is imported:

    engine                  "turbomind" (TurbomindEngineConfig) or "pytorch" (PytorchEngineConfig)
    tp                      tensor parallelism: the GPUs one model is split over (a 76B model: 4)
    session_len             the longest prompt + reply in tokens (images count: 256 per tile)
    cache_max_entry_count   the share of free GPU memory given to the KV cache (0 < x <= 1)
    max_batch_size          requests the engine runs at once
    chat_template           "" lets lmdeploy pick the model's template; otherwise one of its builtin
                            template names, or the path of a chat template JSON file
                            (ChatTemplateConfig.from_json)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from skyscript_assets.models.mllm import (
    BackendUnavailable,
    MllmReply,
    MllmRequest,
    decode_rgb,
    one_line,
    replies_in_order,
)

ENGINES = {"turbomind": "TurbomindEngineConfig", "pytorch": "PytorchEngineConfig"}


@dataclass(frozen=True)
class LmdeploySettings:
    engine: str = "turbomind"
    tp: int = 1
    session_len: int = 16384
    cache_max_entry_count: float = 0.8
    max_batch_size: int = 32
    chat_template: str = ""

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"lmdeploy engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.tp < 1 or self.session_len < 1 or self.max_batch_size < 1:
            raise ValueError("lmdeploy tp, session_len and max_batch_size must be at least 1")
        if not 0 < self.cache_max_entry_count <= 1:
            raise ValueError(
                f"lmdeploy cache_max_entry_count is a share of GPU memory in (0, 1], not {self.cache_max_entry_count}"
            )

    def engine_options(self) -> dict:
        """The keyword arguments of the engine config class."""
        return {
            "tp": self.tp,
            "session_len": self.session_len,
            "cache_max_entry_count": self.cache_max_entry_count,
            "max_batch_size": self.max_batch_size,
        }

    def chat_template_source(self) -> tuple[str, str] | None:
        """("file", path) for a JSON file, ("name", name) for a builtin one, None for lmdeploy's pick."""
        if not self.chat_template:
            return None
        if self.chat_template.endswith(".json") or Path(self.chat_template).is_file():
            return "file", self.chat_template
        return "name", self.chat_template

    def pipeline_options(self, lmdeploy) -> dict:
        """The keyword arguments of `lmdeploy.pipeline(model_path, **options)` (lmdeploy passed in)."""
        options = {"backend_config": getattr(lmdeploy, ENGINES[self.engine])(**self.engine_options())}
        source = self.chat_template_source()
        if source is not None:
            kind, value = source
            options["chat_template_config"] = (
                lmdeploy.ChatTemplateConfig.from_json(value)
                if kind == "file"
                else lmdeploy.ChatTemplateConfig(model_name=value)
            )
        return options


class LmdeployBackend:
    needs_gpu = True

    def __init__(
        self,
        model_path: str,
        *,
        engine: str = "turbomind",
        tp: int = 1,
        session_len: int = 16384,
        cache_max_entry_count: float = 0.8,
        max_batch_size: int = 32,
        chat_template: str = "",
        max_new_tokens: int = 2048,
    ):
        self.settings = LmdeploySettings(
            engine=engine,
            tp=tp,
            session_len=session_len,
            cache_max_entry_count=cache_max_entry_count,
            max_batch_size=max_batch_size,
            chat_template=chat_template,
        )
        try:
            import lmdeploy
        except ImportError:
            raise BackendUnavailable(
                "the lmdeploy backend needs the lmdeploy package on a CUDA machine: "
                "pip install 'skyscript-assets[gpu]' (or use --backend openai against an lmdeploy api_server)"
            ) from None
        self.pipeline = lmdeploy.pipeline(model_path, **self.settings.pipeline_options(lmdeploy))
        self.generation = lmdeploy.GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0, top_k=1)
        self.model_id = f"lmdeploy:{Path(model_path).name}"

    def generate(self, requests: Sequence[MllmRequest]) -> list[MllmReply]:
        started = time.perf_counter()
        prompts, errors = [], {}
        for index, request in enumerate(requests):
            try:
                prompts.append((index, (request.prompt, [decode_rgb(image) for image in request.images])))
            except ValueError as exc:
                errors[index] = one_line(exc)
        texts: dict[int, str] = {}
        if prompts:
            try:  # the pipeline batches and schedules the whole list itself
                responses = self.pipeline([prompt for _, prompt in prompts], gen_config=self.generation)
                texts = {index: response.text for (index, _), response in zip(prompts, responses)}
            except RuntimeError as exc:
                errors.update({index: one_line(f"lmdeploy failed: {exc}") for index, _ in prompts})
        seconds = (time.perf_counter() - started) / max(len(requests), 1)
        return replies_in_order(len(requests), texts, errors, seconds)

    def close(self) -> None:
        close = getattr(self.pipeline, "close", None)
        if close is not None:
            close()
