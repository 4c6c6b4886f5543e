"""Multimodal LLM backends behind one interface: requests of (images, prompt) -> raw texts.

    backend = load_backend("openai", base_url="http://lmdeploy:23333/v1", model="InternVL2-76B")
    replies = backend.generate([MllmRequest(images=(jpeg_bytes, ...), prompt=text), ...])
    backend.close()

Backends (each loads its model once, in its constructor; heavy imports happen only when
that backend is selected):

    openai        any OpenAI-compatible chat-completions server (lmdeploy api_server, vLLM,
                  a hosted API); bounded concurrency, retries with backoff
    lmdeploy      in-process lmdeploy.pipeline with a turbomind engine (GPU; `gpu` extra)
    transformers  a local Hugging Face vision-language model from a path (CPU or GPU)
    baseline      offline CPU annotator from pixels (faces, shot size, brightness, OCR)

A reply never raises for one bad request: it carries `error` (one line) instead of `text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

BACKENDS = ("baseline", "openai", "lmdeploy", "transformers")


@dataclass(frozen=True)
class MllmRequest:
    images: tuple[bytes, ...]  # encoded images (JPEG, PNG or WebP), in the order the prompt refers to
    prompt: str


@dataclass(frozen=True)
class MllmReply:
    text: str | None  # the model's output, verbatim
    error: str | None = None  # one line, when no text came back
    seconds: float = 0.0


class MllmBackend(Protocol):
    model_id: str  # goes into provenance: which model produced a row
    needs_gpu: bool  # the asset runs in the `gpu` pool when true

    def generate(self, requests: Sequence[MllmRequest]) -> list[MllmReply]: ...

    def close(self) -> None: ...


class BackendUnavailable(RuntimeError):
    """A backend cannot start here (a missing package, no GPU); the message is one line."""


def load_backend(name: str, **config) -> MllmBackend:
    """Build the backend `name` with its keyword configuration (see each backend class)."""
    if name == "baseline":
        from skyscript_assets.models.mllm.baseline import BaselineAnnotator

        return BaselineAnnotator(**config)
    if name == "openai":
        from skyscript_assets.models.mllm.openai_chat import OpenAIBackend

        return OpenAIBackend(**config)
    if name == "lmdeploy":
        from skyscript_assets.models.mllm.lmdeploy_backend import LmdeployBackend

        return LmdeployBackend(**config)
    if name == "transformers":
        from skyscript_assets.models.mllm.transformers_backend import TransformersBackend

        return TransformersBackend(**config)
    raise ValueError(f"unknown MLLM backend {name!r}; choose one of {', '.join(BACKENDS)}")


def image_mime_type(data: bytes) -> str | None:
    """The MIME type of an encoded image from its magic bytes, or None if not JPEG/PNG/WebP."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_rgb(data: bytes):
    """An encoded image as a PIL RGB image; raises ValueError when it cannot be read."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"unreadable image: {exc}") from None


def replies_in_order(count: int, texts: dict[int, str], errors: dict[int, str], seconds: float) -> list[MllmReply]:
    """One reply per request index: its text, or else its error."""
    return [
        MllmReply(texts[i], seconds=seconds) if i in texts else MllmReply(None, error=errors[i], seconds=seconds)
        for i in range(count)
    ]


def one_line(text: object, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]
