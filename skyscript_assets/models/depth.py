"""Relative depth (Depth Anything V2 through transformers): one depth map per image.

Depth Anything predicts relative inverse depth (disparity): larger means nearer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import load_pretrained, pick_device


class DepthEstimator:
    """`load` once, then `estimate(images)` -> float32 maps the size of each input image."""

    def __init__(self, model, processor, device: str, batch_size: int, model_id: str) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.batch_size = batch_size
        self.model_id = model_id

    @classmethod
    def load(cls, name_or_path: str | Path, device: str = "cpu", *, batch_size: int = 8) -> "DepthEstimator":
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        device = pick_device(device)
        processor = load_pretrained(AutoImageProcessor, name_or_path)
        model = load_pretrained(AutoModelForDepthEstimation, name_or_path).to(device).eval()
        return cls(model, processor, device, batch_size, str(name_or_path))

    def estimate(self, images: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        maps: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            inputs = self.processor(images=batch, return_tensors="pt").to(self.device)
            with torch.no_grad():
                outputs = self.model(**inputs)
            sizes = [image.shape[:2] for image in batch]
            for result in self.processor.post_process_depth_estimation(outputs, target_sizes=sizes):
                maps.append(result["predicted_depth"].float().cpu().numpy())
        return maps
