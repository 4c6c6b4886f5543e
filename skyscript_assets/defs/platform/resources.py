"""Typed resources. An empty setting means "the embedded default from settings.py",
resolved when the resource is used, so nothing reads the environment at import time.
In production the values come from `dg.EnvVar` (see defs/profiles in the k8s profile)."""


import json
from functools import cached_property

import dagster as dg
import fsspec

from skyscript_assets import settings
from skyscript_assets.catalog import Catalog
from skyscript_assets.ids import is_safe_segment, validate_drama_id

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


class ArtifactStore(dg.ConfigurableResource):
    """Artifacts under an fsspec URL root, laid out `<drama>/<asset>/<episode>/...`."""

    root_url: str = ""

    def resolved_root(self) -> str:
        return (self.root_url or settings.artifacts_url()).rstrip("/")

    @cached_property
    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = fsspec.core.url_to_fs(self.resolved_root())
        return fs, root.rstrip("/")

    def path(self, drama_id: str, asset: str, *parts: str) -> str:
        """Path (inside the store's filesystem) of an artifact; no part may escape the root."""
        validate_drama_id(drama_id)
        for part in (asset, *parts):
            if not is_safe_segment(part):
                raise ValueError(f"unsafe artifact path segment {part!r}")
        _, root = self._fs
        return "/".join([root, drama_id, asset, *parts])

    def uri(self, drama_id: str, asset: str, *parts: str) -> str:
        fs, _ = self._fs
        path = self.path(drama_id, asset, *parts)
        return path if fs.protocol in ("file", ("file", "local")) else fs.unstrip_protocol(path)

    def write_bytes(self, data: bytes, drama_id: str, asset: str, *parts: str) -> str:
        """Write atomically where the filesystem allows (tmp + move), return the URI."""
        fs, _ = self._fs
        path = self.path(drama_id, asset, *parts)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.tmp"
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)
        return self.uri(drama_id, asset, *parts)

    def write_json(self, value, drama_id: str, asset: str, *parts: str) -> str:
        return self.write_bytes(json.dumps(value, indent=2, ensure_ascii=False, default=str).encode(), drama_id, asset, *parts)

    def read_json(self, drama_id: str, asset: str, *parts: str):
        fs, _ = self._fs
        with fs.open(self.path(drama_id, asset, *parts), "rb") as f:
            return json.loads(f.read())

    def remove(self, drama_id: str, asset: str, *parts: str) -> None:
        fs, _ = self._fs
        path = self.path(drama_id, asset, *parts)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def local_resources() -> dict[str, dg.ConfigurableResource]:
    """Embedded defaults: SQLite catalog, local folders, all under SKYSCRIPT_HOME."""
    return {"catalog": CatalogResource(), "landing": LandingZone(), "artifacts": ArtifactStore(), "mllm": MllmResource(),
            "vision": VisionModelsResource(), "restoration_llm": RestorationLlmResource()}


class MllmResource(dg.ConfigurableResource):
    """The multimodal LLM that annotates keyframes, and the optional LLM that repairs JSON.

    backend: "baseline" (offline CPU annotator, the default), "openai" (any OpenAI-compatible
    server: lmdeploy api_server, vLLM, a hosted API), "lmdeploy" (in-process, GPU pods) or
    "transformers" (a local Hugging Face model). API keys are read from the environment
    variable named by `api_key_env`; the key itself never enters the config."""

    backend: str = "baseline"
    base_url: str = ""
    model: str = ""
    model_path: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 16
    max_images_per_request: int = 4
    repair_base_url: str = ""
    repair_model: str = ""

    def load(self):
        from skyscript_assets.models.mllm import load_backend

        if self.backend == "openai":
            return load_backend("openai", base_url=self.base_url, model=self.model,
                                max_concurrency=self.max_concurrency, api_key_env=self.api_key_env)
        if self.backend in ("lmdeploy", "transformers"):
            return load_backend(self.backend, model_path=self.model_path)
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
    (in-process turbomind with prefix caching, GPU pods; `model_path`). The API key is read
    from the variable named by `api_key_env`."""

    backend: str = ""
    base_url: str = ""
    model: str = ""
    model_path: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8  # requests in flight to a server
    max_retries: int = 4  # per request, with backoff; then its samples are lost (llm_failed)
    device: str = "auto"  # transformers

    def is_configured(self) -> bool:
        return bool(self.backend)

    def load(self):
        """The text generator; raises models.mllm.BackendUnavailable or models.base.WeightsMissing
        when it cannot run here, ValueError for an unknown backend or a missing setting."""
        from skyscript_assets.models.text_generation import load_text_generator

        if self.backend == "openai":
            if not (self.base_url and self.model):
                raise ValueError("the openai restoration backend needs base_url and model")
            return load_text_generator("openai", base_url=self.base_url, model=self.model, api_key_env=self.api_key_env,
                                       max_concurrency=self.max_concurrency, max_retries=self.max_retries)
        if self.backend == "transformers":
            return load_text_generator("transformers", model_path=self.model_path, device=self.device)
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


def report_path(artifacts: ArtifactStore, name: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Where cross-drama reports go: `<root>/_reports/<name>` (no drama id starts with "_")."""
    if not is_safe_segment(name):
        raise ValueError(f"unsafe report name {name!r}")
    fs, root = fsspec.core.url_to_fs(artifacts.resolved_root())
    return fs, f"{root.rstrip('/')}/_reports/{name}"
