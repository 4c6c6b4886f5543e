"""The `transformers` backend end to end on a tiny random InternVL model the test builds."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_vlm import build_tiny_internvl, build_tiny_llava  # noqa: E402

from skyscript_assets.models.mllm import BackendUnavailable, MllmRequest, load_backend  # noqa: E402
from skyscript_assets.stages.annotation.clean_json import CleanOutcome, clean_raw_output  # noqa: E402


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 60, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_internvl(tmp_path_factory.mktemp("tiny_internvl"))


def test_tiny_internvl_generates_and_its_garbage_ends_as_losses(tiny_model):
    backend = load_backend("transformers", model_path=str(tiny_model), batch_size=2, max_new_tokens=12)
    assert backend.model_id == "transformers:" + tiny_model.name and backend.needs_gpu is False
    requests = [
        MllmRequest((png(1), png(2)), "Describe each image as JSON."),
        MllmRequest((png(3),), "Describe each image as JSON."),
        MllmRequest((b"not an image",), "x"),
    ]
    replies = backend.generate(requests)
    backend.close()
    assert [r.text is not None for r in replies] == [True, True, False]
    assert "unreadable image" in replies[2].error
    for reply, items in zip(replies[:2], (["kf1", "kf2"], ["kf3"])):
        cleaned = clean_raw_output(reply.text, items)
        assert cleaned.outcome is CleanOutcome.LOST  # random weights write no annotation
        assert cleaned.frames == [] and all(f.stage == "cleaned_json" for f in cleaned.losses)
        assert [f.item for f in cleaned.losses] == items


def test_batched_and_single_generation_agree(tiny_model):
    """Left padding in a batch must not change a request's greedy output."""
    backend = load_backend("transformers", model_path=str(tiny_model), batch_size=2, max_new_tokens=8)
    short = MllmRequest((png(5),), "Describe.")
    long = MllmRequest((png(6), png(7)), "Describe each image as JSON, carefully.")
    together = backend.generate([short, long])
    alone = backend.generate([short]) + backend.generate([long])
    backend.close()
    assert together[0].text != together[1].text  # the output depends on the input ...
    assert [r.text for r in together] == [r.text for r in alone]  # ... and not on its batch-mates


def test_a_model_with_a_loadable_processor_goes_through_it(tmp_path):
    """LLaVA's processor needs no torchvision: the generic AutoProcessor path, batched."""
    from skyscript_assets.models.mllm.transformers_backend import ProcessorInputs

    backend = load_backend(
        "transformers", model_path=str(build_tiny_llava(tmp_path / "llava")), batch_size=2, max_new_tokens=8
    )
    assert isinstance(backend.inputs, ProcessorInputs)
    short, long = MllmRequest((png(1),), "describe"), MllmRequest((png(2), png(3)), "describe the image as JSON")
    together = backend.generate([short, long])
    alone = backend.generate([short]) + backend.generate([long])
    backend.close()
    assert together[0].text != together[1].text
    assert [r.text for r in together] == [r.text for r in alone]
    assert clean_raw_output(together[1].text, ["kf1", "kf2"]).outcome is CleanOutcome.LOST


def test_a_model_path_that_is_not_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BackendUnavailable, match="loads from a local folder"):
        load_backend("transformers", model_path=str(tmp_path / "missing"))


@pytest.mark.gpu
def test_tiny_internvl_on_cuda_in_bfloat16(tiny_model):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    backend = load_backend("transformers", model_path=str(tiny_model), device="cuda", max_new_tokens=8)
    assert backend.needs_gpu is True and backend.model.dtype == torch.bfloat16
    replies = backend.generate([MllmRequest((png(1), png(2)), "Describe."), MllmRequest((png(3),), "Describe.")])
    backend.close()
    assert all(isinstance(r.text, str) and r.error is None for r in replies)
