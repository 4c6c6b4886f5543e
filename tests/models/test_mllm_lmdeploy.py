"""The `lmdeploy` backend: selecting it where lmdeploy is not installed is a clear one-line
error (lmdeploy needs CUDA; its pipeline is measured by benchmarks/mllm.py on a GPU), and its
engine settings (tp, session_len, cache_max_entry_count, chat template) reach lmdeploy's
pipeline config: checked against a stand-in module with lmdeploy's names."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

from skyscript_assets.models.mllm import BackendUnavailable, load_backend
from skyscript_assets.models.mllm.lmdeploy_backend import LmdeploySettings


@pytest.mark.skipif(importlib.util.find_spec("lmdeploy") is not None, reason="lmdeploy is installed here")
def test_selecting_lmdeploy_without_it_is_a_one_line_error(tmp_path):
    with pytest.raises(BackendUnavailable) as info:
        load_backend("lmdeploy", model_path=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert "needs the lmdeploy package" in message and "skyscript-assets[gpu]" in message


# --- the engine settings, built without lmdeploy (it needs CUDA) ------------------------------


def fake_lmdeploy() -> types.ModuleType:
    """The part of lmdeploy's API the backend uses, recording what it is given."""
    module = types.ModuleType("lmdeploy")
    module.calls = []

    def recorder(name):
        class Config:
            def __init__(self, **options):
                self.name, self.options = name, options

            @classmethod
            def from_json(cls, path):
                made = cls(model_name=json.loads(Path(path).read_text())["model_name"])
                made.path = path
                return made

        Config.__name__ = name
        return Config

    module.TurbomindEngineConfig = recorder("TurbomindEngineConfig")
    module.PytorchEngineConfig = recorder("PytorchEngineConfig")
    module.ChatTemplateConfig = recorder("ChatTemplateConfig")
    module.GenerationConfig = recorder("GenerationConfig")

    def pipeline(model_path, **options):
        module.calls.append((model_path, options))
        return types.SimpleNamespace(close=lambda: None)

    module.pipeline = pipeline
    return module


def test_a_76b_model_on_four_gpus_is_configured_through_the_backend(monkeypatch, tmp_path):
    lmdeploy = fake_lmdeploy()
    monkeypatch.setitem(sys.modules, "lmdeploy", lmdeploy)
    backend = load_backend(
        "lmdeploy",
        model_path=str(tmp_path / "InternVL2-76B"),
        tp=4,
        session_len=32768,
        cache_max_entry_count=0.5,
        max_batch_size=64,
        chat_template="internvl2-internlm2",
    )
    [(model_path, options)] = lmdeploy.calls
    assert model_path.endswith("InternVL2-76B") and backend.model_id == "lmdeploy:InternVL2-76B"
    engine = options["backend_config"]
    assert engine.name == "TurbomindEngineConfig"
    assert engine.options == {"tp": 4, "session_len": 32768, "cache_max_entry_count": 0.5, "max_batch_size": 64}
    assert options["chat_template_config"].options == {"model_name": "internvl2-internlm2"}
    backend.close()


def test_the_pytorch_engine_and_a_chat_template_file(tmp_path):
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"model_name": "internvl2_5", "system": "You annotate film frames."}))
    settings = LmdeploySettings(engine="pytorch", tp=2, chat_template=str(template))
    assert settings.chat_template_source() == ("file", str(template))
    options = settings.pipeline_options(fake_lmdeploy())
    assert options["backend_config"].name == "PytorchEngineConfig" and options["backend_config"].options["tp"] == 2
    assert options["chat_template_config"].path == str(template)


def test_defaults_leave_the_chat_template_to_lmdeploy():
    options = LmdeploySettings().pipeline_options(fake_lmdeploy())
    assert "chat_template_config" not in options
    assert options["backend_config"].options == {
        "tp": 1,
        "session_len": 16384,
        "cache_max_entry_count": 0.8,
        "max_batch_size": 32,
    }


@pytest.mark.parametrize(
    "bad",
    [
        dict(engine="vllm"),
        dict(tp=0),
        dict(session_len=0),
        dict(cache_max_entry_count=0),
        dict(cache_max_entry_count=1.5),
        dict(max_batch_size=0),
    ],
)
def test_bad_settings_are_refused_before_lmdeploy_is_imported(bad, tmp_path):
    with pytest.raises(ValueError, match="lmdeploy"):
        load_backend("lmdeploy", model_path=str(tmp_path), **bad)


def test_the_mllm_resource_passes_the_engine_settings_through(monkeypatch, tmp_path):
    from skyscript_assets.defs.platform.resources import MllmResource

    lmdeploy = fake_lmdeploy()
    monkeypatch.setitem(sys.modules, "lmdeploy", lmdeploy)
    resource = MllmResource(
        backend="lmdeploy",
        model_path=str(tmp_path / "InternVL2-76B"),
        tp=4,
        session_len=32768,
        cache_max_entry_count=0.5,
        chat_template="internvl2-internlm2",
    )
    resource.load().close()
    [(_, options)] = lmdeploy.calls
    assert options["backend_config"].options == {
        "tp": 4,
        "session_len": 32768,
        "cache_max_entry_count": 0.5,
        "max_batch_size": 32,
    }
    assert options["chat_template_config"].options == {"model_name": "internvl2-internlm2"}
