"""Hub kernels are off before any model loads (models/hf.py), so a model loads on an image
whose `kernels` package is missing or of another version, as on the CUDA image where every
transformers model failed with "Kernels are not available"."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tiny_lm import build_tiny_causal_lm  # noqa: E402
from tiny_vlm import build_tiny_internvl  # noqa: E402

from skyscript_assets.models.hf import HUB_KERNELS_VARIABLE, import_transformers  # noqa: E402
from skyscript_assets.models.mllm import load_backend  # noqa: E402
from skyscript_assets.models.text_generation import load_text_generator  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[2] / "skyscript_assets"


@pytest.fixture
def image_without_kernels(monkeypatch):
    """What the CUDA image looked like: hub kernels on by default (the variable unset) and no
    compatible `kernels` package."""
    import transformers.modeling_utils as modeling_utils

    monkeypatch.delenv(HUB_KERNELS_VARIABLE, raising=False)
    monkeypatch.setattr(modeling_utils, "is_kernels_available", lambda: False)


@pytest.fixture(scope="module")
def tiny_internvl(tmp_path_factory):
    return build_tiny_internvl(tmp_path_factory.mktemp("internvl"))


def test_the_simulated_image_fails_as_the_gpu_image_did(image_without_kernels, tiny_internvl):
    with pytest.raises(ValueError, match="Kernels are not available"):
        transformers.AutoModelForImageTextToText.from_pretrained(tiny_internvl, local_files_only=True)


def test_the_mllm_backend_loads_there_with_hub_kernels_off(image_without_kernels, tiny_internvl):
    backend = load_backend("transformers", model_path=str(tiny_internvl), max_new_tokens=2)
    assert os.environ[HUB_KERNELS_VARIABLE] == "0"
    assert backend.model.use_kernels is False
    backend.close()


def test_the_text_generator_loads_there_too(image_without_kernels, tmp_path):
    generator = load_text_generator("transformers", model_path=str(build_tiny_causal_lm(tmp_path / "lm")))
    assert generator.model.use_kernels is False
    generator.close()


def test_an_operator_can_still_turn_hub_kernels_on(monkeypatch):
    monkeypatch.setenv(HUB_KERNELS_VARIABLE, "1")
    import_transformers()
    from transformers.integrations.hub_kernels import _kernels_enabled

    assert _kernels_enabled()


def test_transformers_is_imported_in_one_place_only():
    """Every model load goes through models/hf.py, so the setting precedes all of them."""
    importing = re.compile(r"^\s*(import transformers\b|from transformers\b)", re.MULTILINE)
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "hf.py" and importing.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_gpu_image_sets_it_too():
    dockerfile = (PACKAGE.parent / "deployments" / "Dockerfile.gpu").read_text(encoding="utf-8")
    assert re.search(r"\bUSE_HUB_KERNELS=0\b", dockerfile)
