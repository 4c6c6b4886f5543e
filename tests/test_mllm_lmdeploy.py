"""The `lmdeploy` backend: selecting it where lmdeploy is not installed is a clear one-line
error (lmdeploy needs CUDA; its pipeline is measured by benchmarks/mllm.py on a GPU)."""

from __future__ import annotations

import importlib.util

import pytest

from skyscript_assets.models.mllm import BackendUnavailable, load_backend


@pytest.mark.skipif(importlib.util.find_spec("lmdeploy") is not None, reason="lmdeploy is installed here")
def test_selecting_lmdeploy_without_it_is_a_one_line_error(tmp_path):
    with pytest.raises(BackendUnavailable) as info:
        load_backend("lmdeploy", model_path=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert "needs the lmdeploy package" in message and "skyscript-assets[gpu]" in message
