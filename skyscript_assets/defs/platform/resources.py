"""Typed resources. An empty setting means "the embedded default from settings.py",
resolved when the resource is used, so nothing reads the environment at import time.
In production the values come from `dg.EnvVar` (see defs/profiles in the k8s profile)."""

import dagster as dg

from skyscript_assets import settings
from skyscript_assets.catalog import Catalog
from skyscript_assets.storage import ArtifactStore

_catalogs: dict[str, Catalog] = {}


class CatalogResource(dg.ConfigurableResource):
    """The catalog database (SQLite under SKYSCRIPT_HOME by default, Postgres in production)."""

    database_url: str = ""

    def resolved_url(self) -> str:
        return self.database_url or settings.database_url()

    def get(self) -> Catalog:
        url = self.resolved_url()
        if url not in _catalogs:  # one engine (and one migration check) per process
            _catalogs[url] = Catalog(url)
        return _catalogs[url]


class LandingZone(dg.ConfigurableResource):
    """Where scraped dramas arrive: one folder per drama under an fsspec URL."""

    url: str = ""

    def resolved_url(self) -> str:
        return self.url or settings.landing_url()


class ArtifactsResource(dg.ConfigurableResource):
    """Artifacts under an fsspec URL root (storage.ArtifactStore), laid out `<drama>/<asset>/<episode>/...`."""

    root_url: str = ""

    def resolved_root(self) -> str:
        return (self.root_url or settings.artifacts_url()).rstrip("/")

    def get(self) -> ArtifactStore:
        return ArtifactStore(self.resolved_root())


def local_resources() -> dict[str, dg.ConfigurableResource]:
    """Embedded defaults: SQLite catalog, local folders, all under SKYSCRIPT_HOME."""
    return {
        "catalog": CatalogResource(),
        "landing": LandingZone(),
        "artifacts": ArtifactsResource(),
        "mllm": MllmResource(),
        "vision": VisionModelsResource(),
        "restoration_llm": RestorationLlmResource(),
    }


class MllmResource(dg.ConfigurableResource):
    """The multimodal LLM that annotates keyframes, and the optional LLM that repairs JSON.

    backend: "baseline" (offline CPU annotator, the default), "openai" (any OpenAI-compatible
    server: lmdeploy api_server, vLLM, a hosted API), "lmdeploy" (in-process, GPU pods) or
    "transformers" (a local Hugging Face model). API keys are read from the environment
    variable named by `api_key_env`; the key itself never enters the config.

    The in-process lmdeploy engine: `tp` (GPUs one model is split over; InternVL2-76B: 4),
    `session_len` (prompt + reply tokens), `cache_max_entry_count` (share of free GPU memory for
    the KV cache) and `chat_template` ("" = lmdeploy's pick, a builtin name, or a JSON file)."""

    backend: str = "baseline"
    base_url: str = ""
    model: str = ""
    model_path: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 16
    max_images_per_request: int = 4
    repair_base_url: str = ""
    repair_model: str = ""
    tp: int = 1  # lmdeploy
    session_len: int = 16384  # lmdeploy
    cache_max_entry_count: float = 0.8  # lmdeploy
    chat_template: str = ""  # lmdeploy

    def load(self):
        from skyscript_assets.models.mllm import load_backend

        if self.backend == "openai":
            return load_backend(
                "openai",
                base_url=self.base_url,
                model=self.model,
                max_concurrency=self.max_concurrency,
                api_key_env=self.api_key_env,
            )
        if self.backend == "lmdeploy":
            return load_backend(
                "lmdeploy",
                model_path=self.model_path,
                tp=self.tp,
                session_len=self.session_len,
                cache_max_entry_count=self.cache_max_entry_count,
                chat_template=self.chat_template,
            )
        if self.backend == "transformers":
            return load_backend("transformers", model_path=self.model_path)
        return load_backend(self.backend)

    def repairer(self):
        if not self.repair_base_url:
            return None
        from skyscript_assets.models.llm import LlmJsonRepairer

        return LlmJsonRepairer.from_server(self.repair_base_url, self.repair_model, api_key_env=self.api_key_env)


class RestorationLlmResource(dg.ConfigurableResource):
    """The text LLM that restores scripts from shooting scripts (n samples per request) and
    labels relationships. An empty `backend` means offline: the deterministic renderer gives
    one faithful restoration per shooting script and relationships go unlabelled.

    backend: "openai" (any OpenAI-compatible server: lmdeploy api_server, vLLM, a hosted API;
    `base_url`, `model`), "transformers" (a local causal LM folder, `model_path`) or "lmdeploy"
    (in-process turbomind with prefix caching, GPU pods; `model_path`, and the engine's `tp`,
    `session_len`, `cache_max_entry_count` and `chat_template` as on MllmResource). The API key
    is read from the variable named by `api_key_env`."""

    backend: str = ""
    base_url: str = ""
    model: str = ""
    model_path: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8  # requests in flight to a server
    max_retries: int = 4  # per request, with backoff; then its samples are lost (llm_failed)
    device: str = "auto"  # transformers
    tp: int = 1  # lmdeploy
    session_len: int = 8192  # lmdeploy
    cache_max_entry_count: float = 0.8  # lmdeploy
    chat_template: str = ""  # lmdeploy

    def is_configured(self) -> bool:
        return bool(self.backend)

    def load(self):
        """The text generator; raises models.mllm.BackendUnavailable or models.base.WeightsMissing
        when it cannot run here, ValueError for an unknown backend or a missing setting."""
        from skyscript_assets.models.text_generation import load_text_generator

        if self.backend == "openai":
            if not (self.base_url and self.model):
                raise ValueError("the openai restoration backend needs base_url and model")
            return load_text_generator(
                "openai",
                base_url=self.base_url,
                model=self.model,
                api_key_env=self.api_key_env,
                max_concurrency=self.max_concurrency,
                max_retries=self.max_retries,
            )
        if self.backend == "transformers":
            return load_text_generator("transformers", model_path=self.model_path, device=self.device)
        if self.backend == "lmdeploy":
            return load_text_generator(
                "lmdeploy",
                model_path=self.model_path,
                tp=self.tp,
                session_len=self.session_len,
                cache_max_entry_count=self.cache_max_entry_count,
                chat_template=self.chat_template,
            )
        return load_text_generator(self.backend, model_path=self.model_path)


class VisionModelsResource(dg.ConfigurableResource):
    """Local weights of the refinement models; an empty path means "not configured", and that
    step is recorded as not run (nothing is downloaded, nothing faked)."""

    detector_path: str = ""  # Grounding DINO (a folder or an HF-cache name)
    depth_path: str = ""  # Depth Anything V2
    pose_path: str = ""  # ViTPose
    deepface_home: str = ""  # holds .deepface/weights/...
    device: str = "cpu"
    box_threshold: float = 0.35
    text_threshold: float = 0.25

    def load_detector(self):
        """(the open-vocabulary detector, None) or (None, why it does not run): weights never downloaded."""
        if not self.detector_path:
            return None, "not run: no detector weights configured (VisionModelsResource.detector_path)"
        from skyscript_assets.models.base import WeightsMissing
        from skyscript_assets.models.detector import OpenVocabularyDetector

        try:
            return OpenVocabularyDetector.load(
                self.detector_path, self.device, box_threshold=self.box_threshold, text_threshold=self.text_threshold
            ), None
        except WeightsMissing as exc:
            return None, str(exc)
