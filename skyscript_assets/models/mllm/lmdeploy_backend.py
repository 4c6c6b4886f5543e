"""The `lmdeploy` backend: lmdeploy's in-process pipeline on its turbomind engine, the
paper's setup (InternVL2 on A800s), for GPU pods. lmdeploy is imported only when this
backend is selected; it lives in the `gpu` extra and needs CUDA.
"""

from __future__ import annotations

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


class LmdeployBackend:
    needs_gpu = True

    def __init__(
        self,
        model_path: str,
        *,
        tp: int = 1,
        session_len: int = 16384,
        cache_max_entry_count: float = 0.8,
        max_batch_size: int = 32,
        max_new_tokens: int = 2048,
    ):
        try:
            import lmdeploy
        except ImportError:
            raise BackendUnavailable(
                "the lmdeploy backend needs the lmdeploy package on a CUDA machine: "
                "pip install 'skyscript-assets[gpu]' (or use --backend openai against an lmdeploy api_server)"
            ) from None
        engine = lmdeploy.TurbomindEngineConfig(tp=tp, session_len=session_len, max_batch_size=max_batch_size,
                                                cache_max_entry_count=cache_max_entry_count)
        self.pipeline = lmdeploy.pipeline(model_path, backend_config=engine)
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
