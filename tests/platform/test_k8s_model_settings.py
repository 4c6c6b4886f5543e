"""The k8s environment reaches the LLMs' lmdeploy settings: SKYSCRIPT_MLLM_* and
SKYSCRIPT_RESTORE_* build the resources of the k8s profile (backend, weights, tp, session_len,
cache_max_entry_count, chat template), the resources hand them to the engines (a stand-in
lmdeploy module records them), the commented defaults in helm/dagster/values.yaml are the
resources' real defaults, and helm/lmdeploy passes the same settings to its api_server."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import dagster as dg
import pytest
import yaml

from skyscript_assets.defs.platform.placement import mllm_placement, restoration_placement
from skyscript_assets.defs.platform.profiles import k8s_resources
from skyscript_assets.defs.platform.resources import MllmResource, RestorationLlmResource

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = re.compile(r"^SKYSCRIPT_(MLLM|RESTORE)_")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if VARIABLES.match(name):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SKYSCRIPT_PROFILE", "k8s")


def _set(monkeypatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_the_mllm_is_the_api_server_unless_the_environment_loads_it_in_process(monkeypatch):
    served = k8s_resources()["mllm"]
    assert served.backend == "openai"
    assert isinstance(served.base_url, dg.EnvVar) and served.base_url.env_var_name == "SKYSCRIPT_MLLM_BASE_URL"
    assert served.model.env_var_name == "SKYSCRIPT_MLLM_MODEL"

    _set(
        monkeypatch,
        {
            "SKYSCRIPT_MLLM_BACKEND": "lmdeploy",
            "SKYSCRIPT_MLLM_MODEL_PATH": "/models/InternVL2-76B",
            "SKYSCRIPT_MLLM_TP": "4",
            "SKYSCRIPT_MLLM_SESSION_LEN": "32768",
            "SKYSCRIPT_MLLM_CACHE_MAX_ENTRY_COUNT": "0.5",
            "SKYSCRIPT_MLLM_CHAT_TEMPLATE": "internvl2-internlm2",
        },
    )
    mllm = k8s_resources()["mllm"]
    assert (
        mllm.backend,
        mllm.model_path,
        mllm.tp,
        mllm.session_len,
        mllm.cache_max_entry_count,
        mllm.chat_template,
    ) == ("lmdeploy", "/models/InternVL2-76B", 4, 32768, 0.5, "internvl2-internlm2")
    # the step's pool and GPU count come from the same variables (placement.py)
    assert mllm_placement().gpus == mllm.tp == 4 and mllm_placement().pool == "gpu"

    monkeypatch.setenv("SKYSCRIPT_MLLM_BACKEND", "transformers")
    for name in (
        "SKYSCRIPT_MLLM_TP",
        "SKYSCRIPT_MLLM_SESSION_LEN",
        "SKYSCRIPT_MLLM_CACHE_MAX_ENTRY_COUNT",
        "SKYSCRIPT_MLLM_CHAT_TEMPLATE",
    ):
        monkeypatch.delenv(name)
    local = k8s_resources()["mllm"]
    defaults = MllmResource()
    assert (local.backend, local.tp, local.session_len, local.cache_max_entry_count, local.chat_template) == (
        "transformers",
        defaults.tp,
        defaults.session_len,
        defaults.cache_max_entry_count,
        defaults.chat_template,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SKYSCRIPT_MLLM_BACKEND": "vllm"}, "SKYSCRIPT_MLLM_BACKEND='vllm': choose one of"),
        (
            {"SKYSCRIPT_MLLM_BACKEND": "lmdeploy", "SKYSCRIPT_MLLM_TP": "four"},
            "SKYSCRIPT_MLLM_TP='four': expected a whole number",
        ),
        ({"SKYSCRIPT_MLLM_BACKEND": "lmdeploy", "SKYSCRIPT_MLLM_TP": "0"}, "must be at least 1"),
        ({"SKYSCRIPT_MLLM_BACKEND": "lmdeploy", "SKYSCRIPT_MLLM_CACHE_MAX_ENTRY_COUNT": "80"}, r"in \(0, 1\]"),
        ({"SKYSCRIPT_RESTORE_BACKEND": "tgi"}, "SKYSCRIPT_RESTORE_BACKEND='tgi'"),
        (
            {"SKYSCRIPT_RESTORE_MODEL_PATH": "/models/q", "SKYSCRIPT_RESTORE_SESSION_LEN": "8k"},
            "SKYSCRIPT_RESTORE_SESSION_LEN",
        ),
    ],
)
def test_malformed_settings_fail_when_the_definitions_load_in_one_line(monkeypatch, env, message):
    _set(monkeypatch, env)
    with pytest.raises(ValueError, match=message) as caught:
        k8s_resources()
    assert "\n" not in str(caught.value)


def test_the_restoration_llm_takes_its_engine_settings_from_the_environment(monkeypatch):
    _set(
        monkeypatch,
        {
            "SKYSCRIPT_RESTORE_MODEL_PATH": "/models/Qwen2-72B-Instruct",
            "SKYSCRIPT_RESTORE_TP": "2",
            "SKYSCRIPT_RESTORE_SESSION_LEN": "16384",
            "SKYSCRIPT_RESTORE_CACHE_MAX_ENTRY_COUNT": "0.6",
            "SKYSCRIPT_RESTORE_CHAT_TEMPLATE": "qwen",
        },
    )
    restoration = k8s_resources()["restoration_llm"]
    assert (
        restoration.backend,
        restoration.model_path,
        restoration.tp,
        restoration.session_len,
        restoration.cache_max_entry_count,
        restoration.chat_template,
    ) == ("lmdeploy", "/models/Qwen2-72B-Instruct", 2, 16384, 0.6, "qwen")
    assert restoration_placement().gpus == 2
    # a server URL wins the inferred choice; the engine settings then do not apply
    monkeypatch.setenv("SKYSCRIPT_RESTORE_BASE_URL", "http://vllm.skyscript.svc:8000/v1")
    assert k8s_resources()["restoration_llm"].backend == "openai"


def test_the_resources_hand_the_engine_settings_to_lmdeploy(monkeypatch, tmp_path):
    """lmdeploy needs CUDA: a stand-in module with its names records what the engines get."""
    import torch

    calls = []
    fake = types.ModuleType("lmdeploy")

    def config(name):
        return lambda **options: (name, options)

    fake.TurbomindEngineConfig = config("turbomind")
    fake.PytorchEngineConfig = config("pytorch")
    fake.ChatTemplateConfig = config("chat_template")
    fake.GenerationConfig = config("generation")
    fake.pipeline = lambda model_path, **options: (
        calls.append((model_path, options)) or types.SimpleNamespace(close=lambda: None)
    )
    monkeypatch.setitem(sys.modules, "lmdeploy", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    RestorationLlmResource(
        backend="lmdeploy",
        model_path=str(tmp_path / "Qwen2-72B"),
        tp=2,
        session_len=16384,
        cache_max_entry_count=0.6,
        chat_template="qwen",
    ).load()
    MllmResource(
        backend="lmdeploy",
        model_path=str(tmp_path / "InternVL2-76B"),
        tp=4,
        session_len=32768,
        cache_max_entry_count=0.5,
        chat_template="internvl2-internlm2",
    ).load()
    (text_path, text_options), (mllm_path, mllm_options) = calls
    assert text_path.endswith("Qwen2-72B") and mllm_path.endswith("InternVL2-76B")
    engine, settings = text_options["backend_config"]
    assert engine == "turbomind" and settings["enable_prefix_caching"] is True
    assert (settings["tp"], settings["session_len"], settings["cache_max_entry_count"]) == (2, 16384, 0.6)
    assert text_options["chat_template_config"] == ("chat_template", {"model_name": "qwen"})
    assert mllm_options["backend_config"][1]["tp"] == 4 and mllm_options["backend_config"][1]["session_len"] == 32768
    assert mllm_options["chat_template_config"] == ("chat_template", {"model_name": "internvl2-internlm2"})
    # without a chat template lmdeploy picks the model's own
    calls.clear()
    RestorationLlmResource(backend="lmdeploy", model_path=str(tmp_path / "Qwen2-7B")).load()
    assert "chat_template_config" not in calls[0][1]


# --- Helm values ---------------------------------------------------------------------------------


def _commented_model_env() -> dict[str, str]:
    """The commented SKYSCRIPT_MLLM_* / SKYSCRIPT_RESTORE_* entries of the user deployment's env,
    uncommented as an operator would."""
    lines = (ROOT / "helm" / "dagster" / "values.yaml").read_text().splitlines()
    entries, current = [], None
    for line in lines:
        match = re.match(r"^\s*# - name: (SKYSCRIPT_(?:MLLM|RESTORE)_\w+)", line)
        if match:
            current = {"name": match.group(1)}
            entries.append(current)
            continue
        value = re.match(r"^\s*#   value: (.*)$", line)
        if value and current is not None:
            current["value"] = yaml.safe_load(value.group(1).split("  #")[0])
            current = None
    return {e["name"]: e["value"] for e in entries}


def test_the_dagster_values_expose_every_engine_setting_with_the_real_defaults(monkeypatch):
    env = _commented_model_env()
    for prefix in ("SKYSCRIPT_MLLM", "SKYSCRIPT_RESTORE"):
        for suffix in ("BACKEND", "MODEL_PATH", "TP", "SESSION_LEN", "CACHE_MAX_ENTRY_COUNT", "CHAT_TEMPLATE"):
            assert f"{prefix}_{suffix}" in env, f"{prefix}_{suffix} is not in helm/dagster/values.yaml"
    assert all(isinstance(v, str) for v in env.values())  # env values must be strings in a pod spec
    # uncommented as they stand, they build in-process resources whose settings are the defaults
    _set(monkeypatch, env)
    resources = k8s_resources()
    for built, default in (
        (resources["mllm"], MllmResource()),
        (resources["restoration_llm"], RestorationLlmResource()),
    ):
        assert built.backend == "lmdeploy" and built.model_path.startswith("/models/")
        assert (built.tp, built.session_len, built.cache_max_entry_count, built.chat_template) == (
            default.tp,
            default.session_len,
            default.cache_max_entry_count,
            default.chat_template,
        )


def _lmdeploy_args(values: dict | None = None) -> tuple[list[str], int]:
    import helm_python as helm

    rendered = helm.Chart.load(ROOT / "helm" / "lmdeploy").render(
        values or {}, name="lmdeploy-internvl2", namespace="skyscript"
    )
    docs = [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container["args"], container["resources"]["limits"]["nvidia.com/gpu"]


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_the_lmdeploy_chart_passes_the_engine_settings_to_the_api_server():
    args, gpus = _lmdeploy_args(
        {
            "server": {
                "tp": 8,
                "sessionLen": 32768,
                "cacheMaxEntryCount": 0.5,
                "maxBatchSize": 64,
                "chatTemplate": "internvl2-internlm2",
            }
        }
    )
    assert (_flag(args, "--tp"), _flag(args, "--session-len"), _flag(args, "--cache-max-entry-count")) == (
        "8",
        "32768",
        "0.5",
    )
    assert _flag(args, "--max-batch-size") == "64" and _flag(args, "--chat-template") == "internvl2-internlm2"
    assert gpus == 8
    defaults, _ = _lmdeploy_args()
    assert "--chat-template" not in defaults and "--max-batch-size" not in defaults  # lmdeploy's own choice
    # the server's defaults are those of the in-process backend
    assert int(_flag(defaults, "--session-len")) == MllmResource().session_len
    assert float(_flag(defaults, "--cache-max-entry-count")) == MllmResource().cache_max_entry_count
