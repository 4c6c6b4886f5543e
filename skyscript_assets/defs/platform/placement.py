"""Where each model runs, decided when the Definitions are built (like the GPU placement in
k8s.py): a step that loads its model in-process holds GPUs (pool `gpu`, with its GPU count in
`op_tags`); a step that calls a server (lmdeploy's api_server, any OpenAI-compatible one) or
runs on CPU holds none, so its pod never reserves a GPU it does not use.

SKYSCRIPT_MLLM_BACKEND and SKYSCRIPT_RESTORE_BACKEND name the backends (as the resources of
the k8s profile read them); SKYSCRIPT_MLLM_TP and SKYSCRIPT_RESTORE_TP their GPUs (tensor
parallelism).
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from skyscript_assets.defs.platform.k8s import GPU_POOL, gpu_op_tags

IN_PROCESS_GPU_BACKENDS = ("lmdeploy", "transformers")


@dataclass(frozen=True)
class ModelPlacement:
    backend: str
    gpus: int = 1

    @property
    def pool(self) -> str | None:
        return GPU_POOL if self.backend in IN_PROCESS_GPU_BACKENDS else None

    @property
    def op_tags(self) -> dict:
        return gpu_op_tags(self.gpus) if self.pool else {}


def mllm_placement(env: Mapping[str, str] = os.environ) -> ModelPlacement:
    """The keyframe annotator: the offline baseline on a laptop, the lmdeploy server on the cluster."""
    default = "openai" if env.get("SKYSCRIPT_PROFILE", "local").strip().lower() == "k8s" else "baseline"
    return ModelPlacement(env.get("SKYSCRIPT_MLLM_BACKEND") or default, _gpus(env.get("SKYSCRIPT_MLLM_TP")))


def restoration_placement(env: Mapping[str, str] = os.environ) -> ModelPlacement:
    """The restoration LLM: a server when its URL is set, in-process lmdeploy when only weights are, else none."""
    backend = env.get("SKYSCRIPT_RESTORE_BACKEND") or (
        "openai"
        if env.get("SKYSCRIPT_RESTORE_BASE_URL")
        else "lmdeploy"
        if env.get("SKYSCRIPT_RESTORE_MODEL_PATH")
        else ""
    )
    return ModelPlacement(backend, _gpus(env.get("SKYSCRIPT_RESTORE_TP")))


def _gpus(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        raise ValueError(f"a tensor-parallel size must be a whole number of GPUs, got {value!r}") from None
