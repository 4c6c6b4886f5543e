"""The one switch between a laptop and a cluster: SKYSCRIPT_PROFILE=local|k8s.

Read once, when the Definitions are built (the code server's start), so the same image
and the same code run in both places:

* local (default): embedded resources (SQLite, folders under SKYSCRIPT_HOME), every step
  in the run's process pool.
* k8s: resources from environment variables resolved at run time (`dg.EnvVar`: the catalog
  on Postgres, landing zone and artifacts on S3-compatible storage through s3fs);
  `k8s_job_executor` runs each step in its own pod (GPU steps on GPU nodes, see defs/k8s.py),
  and the `gpu_pipeline` job re-runs the GPU stages alone.
"""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg
from dagster_k8s import k8s_job_executor

from skyscript_assets.defs.platform.k8s import GpuPlacement, build_gpu_pipeline, gpu_executor_config, is_gpu_asset
from skyscript_assets.defs.platform.resources import (
    ArtifactsResource,
    CatalogResource,
    LandingZone,
    MllmResource,
    RestorationLlmResource,
    VisionModelsResource,
    local_resources,
)

PROFILES = ("local", "k8s")


def current_profile() -> str:
    profile = os.environ.get("SKYSCRIPT_PROFILE", "local").strip().lower() or "local"
    if profile not in PROFILES:
        raise ValueError(f"SKYSCRIPT_PROFILE must be one of {', '.join(PROFILES)}, got {profile!r}")
    return profile


def k8s_resources() -> dict[str, dg.ConfigurableResource]:
    """Cluster resources: every location from an environment variable of the code server's
    pods (set by the Helm values from a Secret), resolved when a run starts."""
    return {
        **local_resources(),  # resources without a cluster setting keep their defaults
        "catalog": CatalogResource(database_url=dg.EnvVar("SKYSCRIPT_DATABASE_URL")),
        "landing": LandingZone(url=dg.EnvVar("SKYSCRIPT_LANDING_URL")),
        "artifacts": ArtifactsResource(root_url=dg.EnvVar("SKYSCRIPT_ARTIFACTS_URL")),
        # by default the lmdeploy api_server of helm/lmdeploy, spoken to as any OpenAI-compatible
        # server; SKYSCRIPT_MLLM_BACKEND=lmdeploy|transformers loads the model in the step's pod
        "mllm": _mllm(),
        # weights on the read-only volume the Helm values mount (docs/deploy.md); a path left
        # unset is a step recorded as not run, so these are optional, unlike the locations above
        "vision": VisionModelsResource(
            detector_path=os.environ.get("SKYSCRIPT_DETECTOR_PATH", ""),
            depth_path=os.environ.get("SKYSCRIPT_DEPTH_PATH", ""),
            pose_path=os.environ.get("SKYSCRIPT_POSE_PATH", ""),
            deepface_home=os.environ.get("SKYSCRIPT_DEEPFACE_HOME", ""),
            device="auto",
        ),
        # the restoration LLM: an OpenAI-compatible server (lmdeploy or vLLM) when its URL is set;
        # unset, restored_scripts falls back to the faithful renderer and says so in its metadata
        "restoration_llm": _restoration_llm(),
    }


# The in-process lmdeploy engine of an LLM, from <PREFIX>_TP, _SESSION_LEN, _CACHE_MAX_ENTRY_COUNT and
# _CHAT_TEMPLATE (PREFIX: SKYSCRIPT_MLLM or SKYSCRIPT_RESTORE); an unset variable keeps the
# resource's default. Read when the Definitions are built, as the pools are (placement.py reads
# the same _TP for the step's GPU count), so a step pod's engine and its GPUs agree.
ENGINE_VARIABLES = {
    "tp": ("_TP", int),
    "session_len": ("_SESSION_LEN", int),
    "cache_max_entry_count": ("_CACHE_MAX_ENTRY_COUNT", float),
    "chat_template": ("_CHAT_TEMPLATE", str),
}


def _engine_settings(prefix: str, env: Mapping[str, str]) -> dict:
    settings = {}
    for name, (suffix, kind) in ENGINE_VARIABLES.items():
        raw = env.get(prefix + suffix, "").strip()
        if not raw:
            continue
        try:
            settings[name] = kind(raw)
        except ValueError:
            raise ValueError(
                f"{prefix + suffix}={raw!r}: expected a {'whole ' if kind is int else ''}number"
            ) from None
    if settings.get("tp", 1) < 1 or settings.get("session_len", 1) < 1:
        raise ValueError(f"{prefix}_TP and {prefix}_SESSION_LEN must be at least 1")
    if not 0 < settings.get("cache_max_entry_count", 0.8) <= 1:
        raise ValueError(
            f"{prefix}_CACHE_MAX_ENTRY_COUNT is a share of GPU memory in (0, 1], "
            f"not {settings['cache_max_entry_count']}"
        )
    return settings


def _mllm(env: Mapping[str, str] = os.environ) -> MllmResource:
    """SKYSCRIPT_MLLM_BACKEND: openai (default: the api_server at SKYSCRIPT_MLLM_BASE_URL serving
    SKYSCRIPT_MLLM_MODEL), lmdeploy or transformers (in-process from SKYSCRIPT_MLLM_MODEL_PATH,
    lmdeploy with the engine settings above) or baseline."""
    from skyscript_assets.models.mllm import BACKENDS

    backend = env.get("SKYSCRIPT_MLLM_BACKEND", "").strip().lower() or "openai"
    if backend not in BACKENDS:
        raise ValueError(f"SKYSCRIPT_MLLM_BACKEND={backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "openai":
        return MllmResource(
            backend="openai", base_url=dg.EnvVar("SKYSCRIPT_MLLM_BASE_URL"), model=dg.EnvVar("SKYSCRIPT_MLLM_MODEL")
        )
    return MllmResource(
        backend=backend, model_path=env.get("SKYSCRIPT_MLLM_MODEL_PATH", ""), **_engine_settings("SKYSCRIPT_MLLM", env)
    )


def _restoration_llm(env: Mapping[str, str] = os.environ) -> RestorationLlmResource:
    from skyscript_assets.models.text_generation import TEXT_BACKENDS

    base_url = env.get("SKYSCRIPT_RESTORE_BASE_URL", "")
    model_path = env.get("SKYSCRIPT_RESTORE_MODEL_PATH", "")
    backend = env.get("SKYSCRIPT_RESTORE_BACKEND", "").strip().lower() or (
        "openai" if base_url else "lmdeploy" if model_path else ""
    )
    if backend and backend not in TEXT_BACKENDS:
        raise ValueError(f"SKYSCRIPT_RESTORE_BACKEND={backend!r}: choose one of {', '.join(TEXT_BACKENDS)}")
    if backend == "openai":
        return RestorationLlmResource(
            backend="openai",
            base_url=dg.EnvVar("SKYSCRIPT_RESTORE_BASE_URL"),
            model=dg.EnvVar("SKYSCRIPT_RESTORE_MODEL"),
            api_key_env=env.get("SKYSCRIPT_RESTORE_API_KEY_ENV", "OPENAI_API_KEY"),
        )
    return RestorationLlmResource(backend=backend, model_path=model_path, **_engine_settings("SKYSCRIPT_RESTORE", env))


@dataclass
class Profile:
    name: str
    resources: dict[str, dg.ConfigurableResource]
    executor: dg.ExecutorDefinition | None = None  # None: Dagster's default (multiprocess)
    jobs: list = field(default_factory=list)  # jobs that exist only in this profile


def build_profile(assets: Sequence[dg.AssetsDefinition], profile: str | None = None) -> Profile:
    name = profile or current_profile()
    if name == "local":
        return Profile(name, local_resources())
    placement = GpuPlacement.from_environment()
    executor = k8s_job_executor.configured(gpu_executor_config(assets, placement), name="skyscript_k8s_job_executor")
    jobs = [build_gpu_pipeline(assets, placement)] if any(is_gpu_asset(a) for a in assets) else []
    return Profile(name, k8s_resources(), executor, jobs)


def profile_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources the pipeline would use here: the current profile's (SKYSCRIPT_PROFILE)."""
    return k8s_resources() if current_profile() == "k8s" else local_resources()
