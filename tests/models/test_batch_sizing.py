"""Automatic batch sizing (models/mllm/batching.py): the largest batch that fits, found by
probing upward and backing off on out-of-memory, remembered per model and device; and the
transformers backend on it: requests sorted longest first, replies in request order,
generation that stops where the reply's JSON closes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from skyscript_assets.models.mllm import MllmRequest
from skyscript_assets.models.mllm.batching import AutoBatcher, forget, known_fit
from skyscript_assets.models.mllm.transformers_backend import JsonEnd


class FakeOutOfMemory(RuntimeError):
    pass


FakeOutOfMemory.__name__ = "OutOfMemoryError"  # what torch.cuda raises


@pytest.fixture(autouse=True)
def clean_memory_of_fits():
    forget()
    yield
    forget()


def device_that_fits(limit: int, seen: list[int]):
    """A run_batch whose device holds at most `limit` items: more raise out-of-memory."""

    def run(batch):
        seen.append(len(batch))
        if len(batch) > limit:
            raise FakeOutOfMemory(f"CUDA out of memory. Tried to allocate {len(batch)} GiB")
        return [x * 10 for x in batch]

    return run


def test_the_probe_finds_the_largest_batch_that_fits_and_loses_nothing():
    seen, resizes = [], []
    batcher = AutoBatcher(
        ("model", "cuda:0"),
        start=4,
        ceiling=64,
        release=lambda: None,
        on_resize=lambda size, why: resizes.append((size, why)),
    )
    outputs = batcher.run(list(range(100)), device_that_fits(12, seen))
    assert outputs == [x * 10 for x in range(100)]  # every item once, in order
    # 4, 8 fit; 16 does not; bisection between 8 and 16: 12 fits, 14 and 13 do not; then 12 stays
    assert seen[:8] == [4, 8, 16, 8, 12, 14, 12, 13]
    assert set(seen[8:-1]) == {12}
    assert batcher.size == 12
    assert known_fit(("model", "cuda:0")).fits == 12 and known_fit(("model", "cuda:0")).fails == 13
    assert (8, "out of memory at 16") in resizes and (12, "out of memory at 13") in resizes


def test_what_was_learnt_is_remembered_per_model_and_device():
    AutoBatcher(("model", "cuda:0"), start=4, ceiling=64, release=lambda: None).run(
        list(range(100)), device_that_fits(12, [])
    )
    seen = []
    again = AutoBatcher(("model", "cuda:0"), start=4, ceiling=64, release=lambda: None)
    assert again.size == 12
    again.run(list(range(30)), device_that_fits(12, seen))
    assert seen == [12, 12, 6]  # no probe, no out-of-memory
    other_device = AutoBatcher(("model", "cuda:1"), start=4, ceiling=64, release=lambda: None)
    assert other_device.size == 4


def test_heavier_inputs_later_back_off_below_what_fitted_before():
    batcher = AutoBatcher(("model", "cuda:0"), start=4, ceiling=64, release=lambda: None)
    batcher.run(list(range(100)), device_that_fits(12, []))
    seen = []
    assert batcher.run(list(range(20)), device_that_fits(5, seen)) == [x * 10 for x in range(20)]
    assert seen[0] == 12 and seen[1] == 6 and 5 in seen and max(seen[2:]) <= 6
    assert batcher.size <= 5


def test_the_ceiling_caps_the_probe_and_memory_is_released_after_each_failure():
    released = []
    batcher = AutoBatcher(("model", "cuda:0"), start=4, ceiling=16, release=lambda: released.append(1))
    seen = []
    batcher.run(list(range(64)), device_that_fits(1000, seen))
    assert max(seen) == 16 and released == []
    forget()
    batcher = AutoBatcher(("model", "cuda:0"), start=4, ceiling=16, release=lambda: released.append(1))
    batcher.run(list(range(64)), device_that_fits(6, []))
    assert len(released) >= 1


def test_a_fixed_size_never_grows_and_halves_on_out_of_memory():
    seen = []
    assert AutoBatcher.fixed(("model", "cpu"), 4, release=lambda: None).run(
        list(range(10)), device_that_fits(100, seen)
    ) == [x * 10 for x in range(10)]
    assert seen == [4, 4, 2]
    seen = []
    AutoBatcher.fixed(("other", "cpu"), 8, release=lambda: None).run(list(range(10)), device_that_fits(3, seen))
    assert seen[:3] == [8, 4, 2] and max(seen[3:]) <= 2


def test_out_of_memory_at_one_item_and_other_errors_are_raised():
    batcher = AutoBatcher(("model", "cuda:0"), start=1, ceiling=8, release=lambda: None)
    with pytest.raises(RuntimeError, match="out of memory"):
        batcher.run([1, 2], device_that_fits(0, []))

    def broken(batch):
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError):
        AutoBatcher(("model", "cuda:2"), start=4, ceiling=8).run([1, 2, 3], broken)


@pytest.mark.parametrize(
    "pieces, stops_after",
    [
        (['{"frames": [', '{"a": 1}', "]}", " trailing"], 2),
        (["Sure: ", '{"t": "a } and {"', ', "u": "\\"}"', "}", "more"], 3),
        (['```json\n{"a"', ': {"b": {}}', "}\n```"], 2),
        (["no json at all", " } stray brace"], None),
    ],
)
def test_json_end_is_where_the_first_object_closes(pieces, stops_after):
    tracker = JsonEnd()
    stopped = [tracker.feed(piece) for piece in pieces]
    assert stopped.index(True) == stops_after if stops_after is not None else not any(stopped)


# --- the transformers backend on a tiny model -----------------------------------------------


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 60, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_vlm import build_tiny_internvl

    return build_tiny_internvl(tmp_path_factory.mktemp("tiny_internvl"))


def mixed_requests(count: int) -> list[MllmRequest]:
    return [
        MllmRequest(tuple(png(100 + i * 3 + k) for k in range(1 + i % 3)), "Describe each image as JSON." + "!" * i)
        for i in range(count)
    ]


def recording(backend, sizes: list[int], image_counts: list[list[int]] | None = None):
    inner = backend._batch

    def run(batch):
        sizes.append(len(batch))
        if image_counts is not None:
            image_counts.append([len(r.images) for r in batch])
        return inner(batch)

    backend._batch = run


def test_auto_batches_on_the_tiny_model_grow_to_the_ceiling_and_keep_request_order(tiny_model):
    from skyscript_assets.models.mllm import load_backend

    requests = mixed_requests(14)
    one_by_one = load_backend("transformers", model_path=str(tiny_model), batch_size=1, max_new_tokens=6)
    expected = [one_by_one.generate([r])[0].text for r in requests]
    one_by_one.close()

    backend = load_backend("transformers", model_path=str(tiny_model), max_new_tokens=6, max_batch_size=8)
    assert backend.batch_size == 4  # "auto" by default; on CPU it starts at 4 ...
    sizes, image_counts = [], []
    recording(backend, sizes, image_counts)
    replies = backend.generate(requests)
    assert sizes == [4, 8, 2] and backend.batch_size == 8  # ... and grows to its ceiling
    # longest requests first: the first batch holds the three-image requests
    assert image_counts[0] == [3, 3, 3, 3] and sorted(sum(image_counts, []), reverse=True) == sum(image_counts, [])
    assert [r.text for r in replies] == expected and all(r.error is None for r in replies)
    assert backend.generated_tokens > 0
    backend.close()


def test_the_tiny_model_backs_off_on_out_of_memory_and_loses_no_request(tiny_model, monkeypatch):
    import torch

    from skyscript_assets.models.mllm import load_backend

    backend = load_backend("transformers", model_path=str(tiny_model), max_new_tokens=4, max_batch_size=32)
    real_generate = backend.model.generate
    generated_sizes = []

    def generate_on_a_small_device(**inputs):
        generated_sizes.append(inputs["input_ids"].shape[0])
        if inputs["input_ids"].shape[0] > 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_generate(**inputs)

    monkeypatch.setattr(backend.model, "generate", generate_on_a_small_device)
    replies = backend.generate(mixed_requests(24))
    assert all(r.text is not None and r.error is None for r in replies)
    # 4 fits, 8 does not, back to 4; 6 does not, back to 4; 5 fits and stays
    assert generated_sizes[:6] == [4, 8, 4, 6, 4, 5] and max(generated_sizes[6:]) <= 5 and backend.batch_size == 5
    backend.close()


def test_generation_stops_where_the_json_closes():
    pytest.importorskip("torch")
    import torch
    from tiny_vlm import internvl_tokenizer

    from skyscript_assets.models.mllm.transformers_backend import json_end_criteria

    tokenizer = internvl_tokenizer()
    texts = ['{"frames": [{"scene": {"name": "park"}}]} and then more', 'Describe {"number": "1}"}']
    rows = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    criteria = json_end_criteria(tokenizer, batch=2)
    width = max(len(r) for r in rows)
    rows = [r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows]
    stopped_at = [None, None]
    for step in range(1, width + 1):
        done = criteria[0](torch.tensor([r[:step] for r in rows]), None).tolist()
        for row, flag in enumerate(done):
            if flag and stopped_at[row] is None:
                stopped_at[row] = step
    decoded = [tokenizer.decode(r[:n]) for r, n in zip(rows, stopped_at)]
    assert decoded == ['{"frames": [{"scene": {"name": "park"}}]}', 'Describe {"number": "1}"}']
