"""What every model backend shares: where its weights are, which device it runs on,
and the one error a missing model raises (so a stage records "not run", never a fake)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skyscript_assets.schema import LossRecord


class WeightsMissing(RuntimeError):
    """The model's weights are not on this machine; the step is recorded as not run.

    `str(err)` is the one-line reason: "not run: no weights at PATH".
    """

    def __init__(self, location: str | Path, hint: str = "") -> None:
        self.location = str(location)
        message = f"not run: no weights at {self.location}"
        super().__init__(f"{message} ({hint})" if hint else message)


def is_rgb_image(image) -> bool:
    """What every model here takes: an (H, W, 3) uint8 array with pixels in it."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] > 0
        and image.shape[1] > 0
    )


def bad_image_loss(stage: str, item: str, image) -> LossRecord:
    shape = getattr(image, "shape", None)
    return LossRecord(
        stage=stage,
        item=item,
        reason="unusable_image",
        detail=f"expected an RGB uint8 image, got {type(image).__name__} {shape} "
        f"{getattr(image, 'dtype', '')}".strip(),
    )


def pick_device(device: str = "cpu") -> str:
    """'auto' means CUDA when torch sees one, else CPU; anything else is taken as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_pretrained(loader, name_or_path: str | Path, **kwargs):
    """`loader.from_pretrained` from a local folder or the HF cache only (never a download).

    A missing folder or an uncached repo id becomes `WeightsMissing`.
    """
    source = str(name_or_path)
    local = Path(source).expanduser()
    looks_like_path = local.is_absolute() or source.startswith((".", "~")) or local.exists()
    if (
        looks_like_path
        and not (local / "config.json").is_file()
        and not (local / "preprocessor_config.json").is_file()
    ):
        raise WeightsMissing(local)
    try:
        return loader.from_pretrained(str(local) if looks_like_path else source, local_files_only=True, **kwargs)
    except OSError as err:  # transformers' "not found in the cache / no file named ..." errors
        raise WeightsMissing(source, "local folder or HF cache") from err


class PretrainedModel:
    """A transformers model and its processor, loaded once from local files, run in batches."""

    model_class = "AutoModel"  # the transformers class that loads the weights
    processor_class = "AutoImageProcessor"

    def __init__(self, model, processor, device: str, batch_size: int, model_id: str) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.batch_size = batch_size
        self.model_id = model_id

    @classmethod
    def _from_local(cls, name_or_path: str | Path, device: str, batch_size: int, **options):
        from skyscript_assets.models.hf import import_transformers

        transformers = import_transformers()
        device = pick_device(device)
        processor = load_pretrained(getattr(transformers, cls.processor_class), name_or_path)
        model = load_pretrained(getattr(transformers, cls.model_class), name_or_path).to(device).eval()
        return cls(model, processor, device, batch_size, str(name_or_path), **options)


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError, or the RuntimeError older code paths raise for it."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def run_in_batches(items: list, batch_size: int, run_batch, on_halve=None) -> list:
    """`run_batch` over consecutive batches of `items`, one output per item, in order.

    A GPU out-of-memory error halves the batch size and retries the same batch (a long
    video or a crowded frame should cost speed, not the run); at one item it is raised.
    The smaller size is kept for the rest of the call."""
    outputs: list = []
    size, start = max(1, batch_size), 0
    while start < len(items):
        batch = items[start : start + size]
        try:
            results = list(run_batch(batch))
        except Exception as exc:
            if not is_out_of_memory(exc) or size == 1:
                raise
            size = max(1, size // 2)
            _release_gpu_memory()
            if on_halve is not None:
                on_halve(size)
            continue
        outputs.extend(results)
        start += len(batch)
    return outputs


def _release_gpu_memory() -> None:
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
