"""Relative depth (Depth Anything V2 through transformers): one depth map per image.

Depth Anything predicts relative inverse depth (disparity): larger means nearer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skyscript_assets.models.base import PretrainedModel, run_in_batches


class DepthEstimator(PretrainedModel):
    """`load` once, then `estimate(images)` -> float32 maps the size of each input image."""

    model_class = "AutoModelForDepthEstimation"

    @classmethod
    def load(cls, name_or_path: str | Path, device: str = "cpu", *, batch_size: int = 8) -> DepthEstimator:
        return cls._from_local(name_or_path, device, batch_size)

    def estimate(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Depth of each RGB image. Batches hold images of one size only: the processor keeps
        the aspect ratio, so differently shaped images cannot share a tensor."""
        import torch

        maps: list[np.ndarray | None] = [None] * len(images)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(image.shape, []).append(index)

        def run(batch: list[int]) -> list[np.ndarray]:
            inputs = self.processor(images=[images[i] for i in batch], return_tensors="pt").to(self.device)
            with torch.no_grad():
                outputs = self.model(**inputs)
            sizes = [images[i].shape[:2] for i in batch]
            return [
                r["predicted_depth"].float().cpu().numpy()
                for r in self.processor.post_process_depth_estimation(outputs, target_sizes=sizes)
            ]

        for indices in by_size.values():
            for index, depth in zip(indices, run_in_batches(indices, self.batch_size, run)):
                maps[index] = depth
        return maps
