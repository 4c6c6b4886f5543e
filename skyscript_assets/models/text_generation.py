"""Text generation with `n` samples per prompt, for script restoration and relationship labels.

    generator = load_text_generator("openai", base_url="http://lmdeploy:23333/v1", model="Qwen2-72B")
    texts = generator.generate(prompt, n=10, seed=7, temperature=0.9, max_tokens=1024)
    generator.close()

Backends (each loads once, in its constructor; heavy imports only when selected):

    openai        any OpenAI-compatible server (lmdeploy api_server, vLLM, a hosted API): one
                  request with `n` samples, topped up by further requests when the server
                  returns fewer; retries with backoff and an overall deadline per request
                  (`deadline_s`, see OpenAIChatClient)
    transformers  a local causal LM folder (AutoModelForCausalLM), sampling with
                  num_return_sequences=n from a seed, CPU or GPU
    lmdeploy      in-process lmdeploy.pipeline (turbomind) with prefix caching on, so the n
                  copies of one prompt share its prefix; GPU only (`gpu` extra)

`generate` returns at most `n` texts and raises `GenerationFailed` (one line) when no sample
came back; callers record that as a loss, never as a crash. The i-th text was decoded as
`decodings(n, temperature)[i]` says: all sampled above temperature 0; at temperature 0 the
first greedy and the other n - 1 sampled (n greedy decodings of one prompt are one text n
times, and transformers refuses greedy search with num_return_sequences > 1).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from skyscript_assets.models.base import is_out_of_memory, load_pretrained, pick_device, run_in_batches
from skyscript_assets.models.mllm import BackendUnavailable, one_line

TEXT_BACKENDS = ("openai", "transformers", "lmdeploy")
GREEDY, SAMPLED = "greedy", "sampled"
# The temperature of the n - 1 samples asked beside the greedy one when n > 1 at temperature 0.
TEMPERATURE_BESIDE_GREEDY = 0.7


def decodings(n: int, temperature: float) -> list[str]:
    """How each of the `n` samples of one prompt is decoded, in the order `generate` returns
    them: all `sampled` at `temperature` above 0; at 0 (greedy asked) the first `greedy` and
    the rest `sampled` at TEMPERATURE_BESIDE_GREEDY. A backend that returns fewer than `n`
    returns the first ones of this list."""
    if n <= 0:
        return []
    return [SAMPLED] * n if temperature > 0 else [GREEDY] + [SAMPLED] * (n - 1)


def sampling_temperature(temperature: float) -> float:
    """The temperature of the `sampled` decodings of a request asking for `temperature`."""
    return temperature if temperature > 0 else TEMPERATURE_BESIDE_GREEDY


class GenerationFailed(RuntimeError):
    """No sample came back for a prompt (the server failed after its retries, generate raised)."""


class TextGenerator(Protocol):
    model_id: str
    max_concurrency: int  # prompts worth sending at once (a server takes many, a local model one)

    def generate(self, prompt: str, *, n: int, seed: int, temperature: float, max_tokens: int) -> list[str]:
        """At most `n` texts, decoded as `decodings(n, temperature)` says, in that order."""
        ...

    def close(self) -> None: ...


def load_text_generator(name: str, **config) -> TextGenerator:
    if name == "openai":
        return OpenAITextGenerator(**config)
    if name == "transformers":
        return TransformersTextGenerator(**config)
    if name == "lmdeploy":
        return LmdeployTextGenerator(**config)
    raise ValueError(f"unknown text backend {name!r}; choose one of {', '.join(TEXT_BACKENDS)}")


def derived_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (Python's hash() changes between processes)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class OpenAITextGenerator:
    def __init__(self, base_url: str, model: str, *, max_concurrency: int = 8, max_top_ups: int = 4, **client_config):
        from skyscript_assets.models.mllm.openai_chat import OpenAIChatClient

        self.client = OpenAIChatClient(base_url, model, **client_config)
        self.model_id = f"openai:{model}"
        self.max_concurrency = max_concurrency
        self.max_top_ups = max_top_ups

    def generate(self, prompt: str, *, n: int, seed: int, temperature: float, max_tokens: int) -> list[str]:
        messages = [{"role": "user", "content": prompt}]
        plan = decodings(n, temperature)
        if not plan or plan[0] == SAMPLED:
            return self._samples(messages, [], n, seed=seed, temperature=temperature, max_tokens=max_tokens)
        # greedy asked: one request at temperature 0, then the n - 1 others sampled (their own seeds)
        texts = self._samples(messages, [], 1, seed=seed, temperature=0.0, max_tokens=max_tokens)
        if n > 1:
            texts = self._samples(
                messages, texts, n, seed=seed + 1, temperature=sampling_temperature(temperature), max_tokens=max_tokens
            )
        return texts

    def _samples(
        self, messages: list[dict], texts: list[str], n: int, *, seed: int, temperature: float, max_tokens: int
    ) -> list[str]:
        """`texts` topped up to `n` samples; GenerationFailed when none at all came back."""
        from skyscript_assets.models.mllm.openai_chat import ChatError

        texts = list(texts)
        for attempt in range(1 + self.max_top_ups):
            try:
                # a top-up asks for what is missing, with its own seed so it does not repeat the first samples
                texts += self.client.complete_choices(
                    messages, n=n - len(texts), max_tokens=max_tokens, temperature=temperature, seed=seed + attempt
                )[: n - len(texts)]
            except ChatError as exc:
                if not texts:
                    raise GenerationFailed(self.client.redact(exc)) from None  # the key never reaches a loss
                break  # keep what came back; the caller records the missing samples
            if len(texts) >= n:
                break
        return texts

    def close(self) -> None:
        pass


class TransformersTextGenerator:
    """A local causal LM folder (never downloaded); samples in batches that halve on GPU OOM."""

    max_concurrency = 1

    def __init__(self, model_path: str, *, device: str = "auto", dtype: str = "auto", samples_per_batch: int = 16):
        try:
            import torch

            from skyscript_assets.models.hf import import_transformers

            transformers = import_transformers()
        except ImportError as exc:
            raise BackendUnavailable(
                f"the transformers text backend needs torch and transformers ({exc.name} is not installed)"
            ) from None
        self.torch = torch
        self.device = pick_device(device)
        torch_dtype = {
            "auto": torch.bfloat16 if self.device.startswith("cuda") else torch.float32,
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
        }[dtype]
        self.tokenizer = load_pretrained(transformers.AutoTokenizer, model_path)
        self.model = (
            load_pretrained(transformers.AutoModelForCausalLM, model_path, dtype=torch_dtype).to(self.device).eval()
        )
        self.samples_per_batch = samples_per_batch
        self.model_id = f"transformers:{Path(model_path).name}"

    def generate(self, prompt: str, *, n: int, seed: int, temperature: float, max_tokens: int) -> list[str]:
        if self.tokenizer.chat_template:
            prompt = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
        encoded = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=not self.tokenizer.chat_template)
        encoded = {k: v.to(self.device) for k, v in encoded.items()}

        def decode(indices: list[int], sampled: bool) -> list[str]:
            self.torch.manual_seed(seed + indices[0])  # each batch from its own seed: reproducible per sample range
            options = (
                {"do_sample": True, "temperature": sampling_temperature(temperature)}
                if sampled
                else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            )
            with self.torch.inference_mode():
                output = self.model.generate(
                    **encoded,
                    **options,
                    num_return_sequences=len(indices),
                    max_new_tokens=max_tokens,
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                )
            return self.tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)

        plan = decodings(n, temperature)
        greedy = [i for i, how in enumerate(plan) if how == GREEDY]  # at most the first: one sequence, never n
        sampled = [i for i, how in enumerate(plan) if how == SAMPLED]
        try:
            texts = decode(greedy, sampled=False) if greedy else []
            return texts + run_in_batches(sampled, self.samples_per_batch, lambda batch: decode(batch, sampled=True))
        except (RuntimeError, ValueError) as exc:
            raise GenerationFailed(one_line(f"generate failed: {exc}")) from None

    def close(self) -> None:
        del self.model
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()


class LmdeployTextGenerator:
    """lmdeploy's pipeline on turbomind. The n copies of a prompt go in one call with prefix
    caching on, so the engine computes the shared prompt once and samples n continuations."""

    max_concurrency = 1

    def __init__(
        self,
        model_path: str,
        *,
        tp: int = 1,
        session_len: int = 8192,
        cache_max_entry_count: float = 0.8,
        max_batch_size: int = 128,
        chat_template: str = "",
    ):
        from skyscript_assets.models.mllm.lmdeploy_backend import LmdeploySettings

        # checked before lmdeploy is imported; chat_template as for the MLLM ("" = lmdeploy's pick)
        settings = LmdeploySettings(
            tp=tp,
            session_len=session_len,
            cache_max_entry_count=cache_max_entry_count,
            max_batch_size=max_batch_size,
            chat_template=chat_template,
        )
        try:
            import lmdeploy
        except ImportError:
            raise BackendUnavailable(
                "the lmdeploy text backend needs the lmdeploy package on a CUDA machine: "
                "pip install 'skyscript-assets[gpu]' (or use backend openai against an lmdeploy api_server)"
            ) from None
        if not _cuda_available():
            raise BackendUnavailable(
                "the lmdeploy text backend needs a CUDA GPU; none is visible here "
                "(use backend openai against an lmdeploy api_server)"
            )
        self.lmdeploy = lmdeploy
        options = {
            "backend_config": lmdeploy.TurbomindEngineConfig(**settings.engine_options(), enable_prefix_caching=True)
        }
        if settings.chat_template:  # a builtin template name or a JSON file, as for the MLLM
            options["chat_template_config"] = settings.pipeline_options(lmdeploy)["chat_template_config"]
        self.pipeline = lmdeploy.pipeline(model_path, **options)
        self.model_id = f"lmdeploy:{Path(model_path).name}"

    def generate(self, prompt: str, *, n: int, seed: int, temperature: float, max_tokens: int) -> list[str]:
        configs = [
            self.lmdeploy.GenerationConfig(
                max_new_tokens=max_tokens,
                do_sample=True,
                temperature=sampling_temperature(temperature),
                random_seed=seed + i,
            )
            if how == SAMPLED
            else self.lmdeploy.GenerationConfig(
                max_new_tokens=max_tokens, do_sample=False, top_k=1, random_seed=seed + i
            )
            for i, how in enumerate(decodings(n, temperature))
        ]
        try:
            responses = self.pipeline([prompt] * n, gen_config=configs)
        except RuntimeError as exc:
            if is_out_of_memory(exc):
                raise
            raise GenerationFailed(one_line(f"lmdeploy failed: {exc}")) from None
        return [response.text for response in responses]

    def close(self) -> None:
        close = getattr(self.pipeline, "close", None)
        if close is not None:
            close()


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()
