"""A GPU out-of-memory error halves the batch and retries; other errors are not swallowed."""

import numpy as np
import pytest

from skyscript_assets.models.base import run_in_batches


class FakeOutOfMemory(RuntimeError):
    pass


FakeOutOfMemory.__name__ = "OutOfMemoryError"  # what torch.cuda raises


def test_batches_halve_on_out_of_memory_and_give_every_output_in_order():
    seen, halvings = [], []

    def run(batch):
        seen.append(len(batch))
        if len(batch) > 2:
            raise FakeOutOfMemory("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]

    assert run_in_batches(list(range(7)), 8, run, on_halve=halvings.append) == [x * 10 for x in range(7)]
    assert halvings == [4, 2] and seen == [7, 4, 2, 2, 2, 1]


def test_out_of_memory_at_one_item_and_other_errors_are_raised():
    with pytest.raises(RuntimeError, match="out of memory"):
        run_in_batches([1, 2], 2, lambda batch: (_ for _ in ()).throw(RuntimeError("CUDA error: out of memory")))
    with pytest.raises(ValueError):
        run_in_batches([1, 2], 2, lambda batch: (_ for _ in ()).throw(ValueError("bad input")))


def test_the_detector_wrapper_survives_out_of_memory(monkeypatch):
    """Through the real wrapper code: an OOM on big batches costs batches, not results."""
    from skyscript_assets.models.detector import OpenVocabularyDetector

    detector = OpenVocabularyDetector.__new__(OpenVocabularyDetector)
    detector.batch_size = 4
    detector._prompt_chunks = lambda names: [names]
    calls = []

    def fake_run(images, chunks):
        calls.append(len(images))
        if len(images) > 1:
            raise FakeOutOfMemory("out of memory")
        return [[f"box-of-{chunks[0][0]}"]]

    monkeypatch.setattr(detector, "_run", fake_run)
    images = [np.zeros((8, 8, 3), np.uint8)] * 3
    found = detector.detect(images, [["cat"], ["dog"], ["cup"]])
    assert found == [["box-of-cat"], ["box-of-dog"], ["box-of-cup"]]
    assert calls == [3, 2, 1, 1, 1]  # 4 -> 2 -> 1 after two out-of-memory errors
