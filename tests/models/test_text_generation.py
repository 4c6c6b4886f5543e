"""Text generation with n samples per prompt: the openai backend against a real local HTTP
server, the transformers backend on a tiny causal LM the test builds, lmdeploy's selection."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
from fake_chat_server import FakeChatServer

from skyscript_assets.models.base import WeightsMissing
from skyscript_assets.models.mllm import BackendUnavailable
from skyscript_assets.models.text_generation import (
    TEMPERATURE_BESIDE_GREEDY,
    GenerationFailed,
    decodings,
    derived_seed,
    load_text_generator,
)

PROMPT = "Rewrite it. Shot record (Fountain draft):\nINT. CAFE - DAY\n\nEmma waits.\n\nStyle of this version: warm."


@pytest.fixture
def server():
    with FakeChatServer() as fake:
        yield fake


def openai_generator(server, **config):
    return load_text_generator(
        "openai", base_url=server.base_url, model="restorer", backoff_s=0.01, max_retries=2, timeout_s=2, **config
    )


def test_one_request_carries_n_samples_and_the_seed(server):
    texts = openai_generator(server).generate(
        PROMPT + " scenario=restore", n=6, seed=41, temperature=0.9, max_tokens=300
    )
    assert len(texts) == 6
    assert len(server.bodies) == 1
    body = server.bodies[0]
    assert (body["n"], body["seed"], body["temperature"], body["max_tokens"]) == (6, 41, 0.9, 300)
    assert all(t.startswith("INT. CAFE - DAY") for t in texts)
    assert texts[3] == texts[2] and len(set(texts)) == 5  # the fake repeats every fourth sample


def test_a_server_returning_fewer_choices_is_topped_up(server):
    texts = openai_generator(server).generate(
        PROMPT + " scenario=restore_max2", n=5, seed=3, temperature=0.9, max_tokens=300
    )
    assert len(texts) == 5
    assert [b.get("n", 1) for b in server.bodies] == [5, 3, 1]  # 2 + 2 + 1 came back
    assert [b["seed"] for b in server.bodies] == [3, 4, 5]  # top-ups do not repeat the first samples


def test_a_server_refusing_n_is_asked_one_sample_at_a_time(server):
    generator = openai_generator(server, max_top_ups=8)
    texts = generator.generate(PROMPT + " scenario=restore_no_n", n=3, seed=0, temperature=0.9, max_tokens=300)
    assert len(texts) == 3
    assert server.bodies[0]["n"] == 3 and all("n" not in b for b in server.bodies[1:])
    assert len(server.bodies) == 4  # the refused one, then three single samples


def test_greedy_with_n_samples_is_one_greedy_request_then_the_rest_sampled(server):
    texts = openai_generator(server).generate(
        PROMPT + " scenario=restore", n=4, seed=7, temperature=0.0, max_tokens=300
    )
    assert len(texts) == 4 and decodings(4, 0.0) == ["greedy", "sampled", "sampled", "sampled"]
    assert [(b.get("n", 1), b["temperature"], b["seed"]) for b in server.bodies] == [
        (1, 0.0, 7),
        (3, TEMPERATURE_BESIDE_GREEDY, 8),
    ]


def test_decodings_say_how_each_sample_is_decoded():
    assert decodings(3, 0.9) == ["sampled"] * 3
    assert decodings(1, 0) == ["greedy"] and decodings(0, 0) == []


def test_failure_after_retries_is_generation_failed_in_one_line(server):
    with pytest.raises(GenerationFailed) as info:
        openai_generator(server).generate(PROMPT + " scenario=always_500", n=4, seed=0, temperature=0.9, max_tokens=50)
    assert "gave up after 3 attempts" in str(info.value) and "\n" not in str(info.value)


def test_derived_seeds_are_stable_and_spread():
    assert derived_seed(0, "d/ep1/scene-0001", 0) == derived_seed(0, "d/ep1/scene-0001", 0)
    assert len({derived_seed(0, "d/ep1/scene-0001", i) for i in range(100)}) == 100
    assert 0 <= derived_seed("x") < 2**31


# --- transformers ---------------------------------------------------------------------------

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tiny_lm import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


def test_transformers_samples_n_texts_reproducibly_from_a_seed(tiny_lm):
    generator = load_text_generator("transformers", model_path=str(tiny_lm), device="cpu", samples_per_batch=2)
    assert generator.model_id == f"transformers:{tiny_lm.name}"
    first = generator.generate(PROMPT, n=5, seed=11, temperature=1.0, max_tokens=12)
    again = generator.generate(PROMPT, n=5, seed=11, temperature=1.0, max_tokens=12)
    other = generator.generate(PROMPT, n=5, seed=12, temperature=1.0, max_tokens=12)
    generator.close()
    # A sample may end at once (an empty text, recorded downstream as a loss): not all of them.
    assert len(first) == 5 and all(isinstance(t, str) for t in first) and sum(1 for t in first if t) >= 3
    assert first == again
    assert first != other
    assert len(set(first)) > 1  # sampled, not five greedy copies


def test_transformers_greedy_with_n_4_gives_one_greedy_and_three_sampled(tiny_lm):
    """Greedy search refuses num_return_sequences > 1 (on CPU and CUDA alike): at temperature 0
    the first text is the greedy decoding and the other three are sampled, as `decodings` says."""
    generator = load_text_generator("transformers", model_path=str(tiny_lm), device="cpu", samples_per_batch=2)
    texts = generator.generate(PROMPT, n=4, seed=3, temperature=0.0, max_tokens=12)
    again = generator.generate(PROMPT, n=4, seed=3, temperature=0.0, max_tokens=12)
    [greedy] = generator.generate(PROMPT, n=1, seed=99, temperature=0.0, max_tokens=12)
    generator.close()
    assert len(texts) == 4 and texts == again
    assert decodings(4, 0.0) == ["greedy", "sampled", "sampled", "sampled"]
    assert texts[0] == greedy  # greedy does not depend on the seed
    assert len(set(texts[1:])) > 1  # the others sampled, not three greedy copies


def test_transformers_without_weights_is_weights_missing(tmp_path):
    with pytest.raises(WeightsMissing) as info:
        load_text_generator("transformers", model_path=str(tmp_path / "absent"))
    assert str(info.value).startswith("not run: no weights at")


# --- lmdeploy -------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("lmdeploy") is not None, reason="lmdeploy is installed here")
def test_selecting_lmdeploy_without_it_is_a_one_line_error(tmp_path):
    with pytest.raises(BackendUnavailable) as info:
        load_text_generator("lmdeploy", model_path=str(tmp_path))
    assert "\n" not in str(info.value) and "skyscript-assets[gpu]" in str(info.value)


def test_lmdeploy_without_cuda_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdeploy", types.ModuleType("lmdeploy"))  # importable, but no GPU here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendUnavailable) as info:
        load_text_generator("lmdeploy", model_path=str(tmp_path))
    assert "needs a CUDA GPU" in str(info.value) and "\n" not in str(info.value)


def test_lmdeploy_sends_the_n_copies_in_one_call_with_prefix_caching(tmp_path, monkeypatch):
    """lmdeploy cannot run on CPU; a recording stand-in for its module checks what the backend
    asks of it: prefix caching on, the prompt n times in one pipeline call, one seed per sample."""
    calls = {}
    fake = types.ModuleType("lmdeploy")
    fake.TurbomindEngineConfig = lambda **kw: calls.setdefault("engine", kw)
    fake.GenerationConfig = lambda **kw: kw

    def pipeline(model_path, backend_config):
        def run(prompts, gen_config):
            calls["prompts"], calls["configs"] = prompts, gen_config
            return [types.SimpleNamespace(text=f"sample {c['random_seed']}") for c in gen_config]

        return run

    fake.pipeline = pipeline
    monkeypatch.setitem(sys.modules, "lmdeploy", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    generator = load_text_generator("lmdeploy", model_path=str(tmp_path / "Qwen2-7B"))
    texts = generator.generate(PROMPT, n=3, seed=100, temperature=0.8, max_tokens=64)
    assert calls["engine"]["enable_prefix_caching"] is True
    assert calls["prompts"] == [PROMPT] * 3
    assert [c["random_seed"] for c in calls["configs"]] == [100, 101, 102]
    assert all(c["do_sample"] and c["max_new_tokens"] == 64 for c in calls["configs"])
    assert texts == ["sample 100", "sample 101", "sample 102"] and generator.model_id == "lmdeploy:Qwen2-7B"
    generator.generate(PROMPT, n=3, seed=100, temperature=0.0, max_tokens=64)  # greedy asked: one greedy, two sampled
    assert [(c["do_sample"], c.get("top_k")) for c in calls["configs"]] == [(False, 1), (True, None), (True, None)]
    assert calls["configs"][1]["temperature"] == TEMPERATURE_BESIDE_GREEDY
