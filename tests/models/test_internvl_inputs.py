"""InternVL inputs are chosen from the folder's config, not from what is installed: the same
ids with or without torchvision (whose presence made the stock AutoProcessor load, with a chat
template that wrote no image token, and every request fail on the GPU image). The tiny model
is saved as the real "-hf" checkpoints are."""

from __future__ import annotations

import importlib.util
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tiny_vlm import TEXT_ONLY_CHAT_TEMPLATE, build_tiny_internvl, build_tiny_llava  # noqa: E402

from skyscript_assets.models.mllm import BackendUnavailable, MllmRequest, load_backend  # noqa: E402
from skyscript_assets.models.mllm.transformers_backend import InternVLInputs, ProcessorInputs, input_builder_kind  # noqa: E402
from skyscript_assets.stages.annotation.annotate import KeyframeInput, annotate_keyframes  # noqa: E402


def _torchvision_works() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:  # PyPI's CUDA torchvision beside the CPU torch file fails at import
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


HAS_TORCHVISION = _torchvision_works()
needs_torchvision = pytest.mark.skipif(
    not HAS_TORCHVISION,
    reason="needs a torchvision that imports beside this torch (GPU images have one; "
    "no CPU build for torch 2.13 is on the package indexes)",
)


def png(seed: int, size=(40, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_internvl(tmp_path_factory):
    return build_tiny_internvl(tmp_path_factory.mktemp("internvl"))


def test_the_tiny_model_is_saved_like_a_real_hf_checkpoint(tiny_internvl):
    processor_config = json.loads((tiny_internvl / "processor_config.json").read_text())
    assert processor_config["processor_class"] == "InternVLProcessor" and processor_config["image_seq_length"] == 1
    assert (tiny_internvl / "preprocessor_config.json").is_file()
    template = (tiny_internvl / "chat_template.jinja").read_text()
    assert "content['type'] == 'image'" in template and "<IMG_CONTEXT>" in template


def test_the_builder_follows_the_config(tiny_internvl, tmp_path):
    assert input_builder_kind(tiny_internvl) == "internvl"
    assert input_builder_kind(build_tiny_llava(tmp_path / "llava")) == "processor"
    original = tmp_path / "InternVL2-76B"
    original.mkdir()
    (original / "config.json").write_text(
        json.dumps({"model_type": "internvl_chat", "architectures": ["InternVLChatModel"]})
    )
    with pytest.raises(BackendUnavailable, match="original OpenGVLab InternVL checkpoint.*-hf"):
        load_backend("transformers", model_path=str(original))
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"model_type": "llava"}))
    with pytest.raises(BackendUnavailable, match="no processor_config.json"):
        input_builder_kind(bare)


def test_internvl_goes_through_its_own_builder_whatever_is_installed(tiny_internvl):
    backend = load_backend("transformers", model_path=str(tiny_internvl), max_new_tokens=2)
    assert isinstance(backend.inputs, InternVLInputs) and backend.inputs.template_writes_images
    text = backend.inputs.render(2, "Describe.")
    assert text == (
        "<|im_start|>user\nImage-1: <IMG_CONTEXT>\nImage-2: <IMG_CONTEXT>\nDescribe.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    encoded = backend.inputs([[Image.open(io.BytesIO(png(1)))] * 2], ["Describe."])
    context = backend.inputs.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    tiles = encoded["pixel_values"].shape[0]
    assert int((encoded["input_ids"] == context).sum()) == tiles * backend.inputs.tokens_per_tile
    backend.close()


def test_a_text_only_chat_template_still_gets_its_image_tokens(tmp_path):
    folder = build_tiny_internvl(tmp_path / "text_only", chat_template=TEXT_ONLY_CHAT_TEMPLATE)
    backend = load_backend("transformers", model_path=str(folder), max_new_tokens=4)
    assert backend.inputs.template_writes_images is False
    assert backend.inputs.render(1, "Describe.").count("<IMG_CONTEXT>") == 1
    replies = backend.generate([MllmRequest((png(1), png(2)), "Describe."), MllmRequest((png(3),), "Describe.")])
    backend.close()
    assert all(r.text is not None and r.error is None for r in replies)


def test_a_processor_whose_template_writes_no_image_token_fails_at_load(tmp_path):
    folder = build_tiny_llava(tmp_path / "llava")
    (folder / "chat_template.jinja").write_text(TEXT_ONLY_CHAT_TEMPLATE)
    with pytest.raises(BackendUnavailable, match="writes 0 image tokens"):
        load_backend("transformers", model_path=str(folder))


def test_the_tiny_internvl_annotates_end_to_end_without_losses(tiny_internvl):
    """The test that failed on the GPU image (torchvision installed): every request lost."""
    images = {f"mem://kf{i}": png(i, size=(720 // 10, 1280 // 10)) for i in range(7)}
    keyframes = [
        KeyframeInput(f"ep01/shot{i // 3:04d}/kf{i % 3}", f"shot{i // 3}", uri) for i, uri in enumerate(images)
    ]
    backend = load_backend("transformers", model_path=str(tiny_internvl), max_new_tokens=8)
    raws, losses = annotate_keyframes(backend, keyframes, max_images_per_request=4, read_image=images.__getitem__)
    backend.close()
    assert losses == []
    assert sorted(item for raw in raws for item in raw.items) == sorted(kf.item for kf in keyframes)
    assert all(isinstance(raw.text, str) for raw in raws)


@needs_torchvision
def test_with_torchvision_the_stock_processor_loads_the_tiny_folder_and_agrees_with_the_backend(tiny_internvl):
    stock = transformers.AutoProcessor.from_pretrained(tiny_internvl, local_files_only=True)
    assert type(stock).__name__ == "InternVLProcessor"
    backend = load_backend("transformers", model_path=str(tiny_internvl), max_new_tokens=2)
    assert isinstance(backend.inputs, InternVLInputs)  # chosen from the config, not from what loads
    images = [[Image.open(io.BytesIO(png(1))), Image.open(io.BytesIO(png(2)))], [Image.open(io.BytesIO(png(3)))]]
    prompts = ["Describe each image as JSON.", "Describe."]
    ours = backend.inputs(images, prompts)
    texts = [
        stock.apply_chat_template(
            [
                {
                    "role": "user",
                    "content": [
                        part
                        for k in range(len(imgs))
                        for part in ({"type": "text", "text": f"Image-{k + 1}: "}, {"type": "image"})
                    ]
                    + [{"type": "text", "text": prompt}],
                }
            ],
            add_generation_prompt=True,
            tokenize=False,
        )
        for imgs, prompt in zip(images, prompts)
    ]
    theirs = stock(images=images, text=texts, return_tensors="pt", padding=True)
    backend.close()
    assert ours["input_ids"].tolist() == theirs["input_ids"].tolist()
    assert ours["attention_mask"].tolist() == theirs["attention_mask"].tolist()
    assert ours["pixel_values"].shape == theirs["pixel_values"].shape


def test_processor_models_keep_the_processor_path(tmp_path):
    backend = load_backend("transformers", model_path=str(build_tiny_llava(tmp_path / "llava")), max_new_tokens=2)
    assert isinstance(backend.inputs, ProcessorInputs)
    backend.close()
