"""Open-vocabulary object detection (Grounding DINO through transformers).

The text prompt is the frame's object names ("cup. remote control."); each box gets the
name whose tokens it matches best. Boxes come back in pixel coordinates of the input
image (x0, y0, x1, y1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skyscript_assets.models.base import PretrainedModel, run_in_batches


@dataclass(frozen=True)
class Detection:
    name: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float


class OpenVocabularyDetector(PretrainedModel):
    """Grounding DINO: `load` once, then `detect(images, names_per_image)` in batches.

    A box is kept when its best token probability reaches `box_threshold` and the name it
    is given (the name whose tokens it matches best) reaches `text_threshold`, as in
    Grounding DINO's own post-processing.
    """

    model_class = "AutoModelForZeroShotObjectDetection"
    processor_class = "AutoProcessor"

    def __init__(
        self,
        model,
        processor,
        device: str,
        batch_size: int,
        model_id: str,
        *,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
    ) -> None:
        super().__init__(model, processor, device, batch_size, model_id)
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold

    @classmethod
    def load(
        cls,
        name_or_path: str | Path,
        device: str = "cpu",
        *,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        batch_size: int = 8,
    ) -> OpenVocabularyDetector:
        return cls._from_local(
            name_or_path, device, batch_size, box_threshold=box_threshold, text_threshold=text_threshold
        )

    def detect(self, images: list[np.ndarray], names_per_image: list[list[str]]) -> list[list[Detection]]:
        """RGB uint8 images and, for each, the object names to ground; returns boxes per image."""
        if len(images) != len(names_per_image):
            raise ValueError("one list of object names per image")
        results: list[list[Detection]] = [[] for _ in images]
        jobs = []  # (image index, chunk of names): long vocabularies are split to fit the text encoder
        for index, names in enumerate(names_per_image):
            for chunk in self._prompt_chunks(unique_object_names(names)):
                jobs.append((index, chunk))
        found_per_job = run_in_batches(
            jobs, self.batch_size, lambda batch: self._run([images[i] for i, _ in batch], [c for _, c in batch])
        )
        for (index, _), found in zip(jobs, found_per_job):
            results[index].extend(found)
        return results

    def _run(self, images: list[np.ndarray], chunks: list[list[str]]) -> list[list[Detection]]:
        import torch

        prompts = [" ".join(f"{name}." for name in chunk) for chunk in chunks]
        inputs = self.processor(images=images, text=prompts, return_tensors="pt", padding=True).to(self.device)
        with torch.no_grad():
            outputs = self.model(**inputs)
        token_probs = outputs.logits.sigmoid().float().cpu().numpy()  # (batch, queries, text tokens)
        boxes = outputs.pred_boxes.float().cpu().numpy()  # (batch, queries, 4): cx, cy, w, h relative
        found = []
        for b, (image, chunk) in enumerate(zip(images, chunks)):
            spans = self._name_spans(chunk)
            height, width = image.shape[:2]
            per_image = []
            for q in range(token_probs.shape[1]):
                if token_probs[b, q].max() < self.box_threshold:
                    continue
                name, score = max(
                    ((n, float(token_probs[b, q, a:z].max())) for n, (a, z) in spans.items()), key=lambda item: item[1]
                )
                if score < self.text_threshold:
                    continue
                per_image.append(Detection(name, _to_pixels(boxes[b, q], width, height), score))
            found.append(per_image)
        return found

    def _name_spans(self, names: list[str]) -> dict[str, tuple[int, int]]:
        """Token positions of each name in the prompt: [CLS] name . name . ... [SEP]."""
        spans, position = {}, 1
        for name in names:
            length = len(self.processor.tokenizer.tokenize(name))
            spans[name] = (position, position + max(length, 1))
            position += length + 1  # the '.' that ends each name
        return spans

    def _prompt_chunks(self, names: list[str]) -> list[list[str]]:
        limit = int(getattr(self.model.config, "max_text_len", 256)) - 2  # room for [CLS] and [SEP]
        chunks, current, used = [], [], 0
        for name in names:
            cost = len(self.processor.tokenizer.tokenize(name)) + 1
            if current and used + cost > limit:
                chunks.append(current)
                current, used = [], 0
            if cost > limit:  # longer than the whole prompt: it cannot be asked, so it stays ungrounded
                continue
            current.append(name)
            used += cost
        if current:
            chunks.append(current)
        return chunks


def normalize_object_name(name: str) -> str:
    """The form a name takes in the prompt and in `Detection.name`: lowercase, no dots."""
    return " ".join(str(name).replace(".", " ").split()).lower()


def unique_object_names(names: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        cleaned = normalize_object_name(name)
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def _to_pixels(box: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    cx, cy, w, h = (float(v) for v in box)
    x0, y0 = max(0.0, (cx - w / 2) * width), max(0.0, (cy - h / 2) * height)
    x1, y1 = min(float(width), (cx + w / 2) * width), min(float(height), (cy + h / 2) * height)
    return (x0, y0, x1, y1)
