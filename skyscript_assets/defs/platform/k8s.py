"""Where steps run on Kubernetes: every step in its own restricted pod, GPU steps on GPU nodes.

Every step pod that `k8s_job_executor` builds for us (`step_k8s_config`) meets the Kubernetes
"restricted" Pod Security Standard: it runs as the non-root user of deployments/Dockerfile*
(uid/gid `RUN_AS_USER`), with a read-only root filesystem (emptyDir volumes for /tmp,
DAGSTER_HOME and HOME), no capabilities, no privilege escalation, the runtime's default
seccomp profile and no Kubernetes API token; and it requests CPU and memory
(`GpuPlacement.step_cpu` / `step_memory`), so the scheduler places CPU steps by what they use.
helm/dagster/values.yaml and deployments/dagster.yaml give run pods the same contexts and
volumes (tests/platform/test_k8s_security.py keeps them equal; dagster-k8s merges identical entries).

GPU steps, in two halves, so that an asset never reads the environment at import time:

* what a GPU step *needs* (how many GPUs, memory) is declared on the asset with
  `pool="gpu", op_tags=gpu_op_tags(...)`; an asset with only `pool="gpu"` gets
  `GpuPlacement.gpus_per_step` GPUs;
* where GPU pods *go* (the GPU image, node selector, tolerations) differs per cluster and
  comes from the environment when the Definitions are built (`GpuPlacement.from_environment`),
  handed to `k8s_job_executor` as `per_step_k8s_config` of the `gpu_pipeline` job.

Both end up in the step's `dagster-k8s/config`, merged by dagster-k8s itself.
"""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg
from dagster_k8s import k8s_job_executor
from dagster_k8s.job import get_user_defined_k8s_config

GPU_POOL = "gpu"
GPU_RESOURCE = "nvidia.com/gpu"
K8S_CONFIG_TAG = "dagster-k8s/config"

# NVIDIA's GPU feature discovery labels GPU nodes with this; GPU node pools are usually
# tainted with the resource name so that CPU pods stay off them.
DEFAULT_GPU_NODE_SELECTOR = "nvidia.com/gpu.present=true"
DEFAULT_GPU_TOLERATION = "nvidia.com/gpu:NoSchedule"

# The user of deployments/Dockerfile and Dockerfile.gpu (and of every pod in helm/).
RUN_AS_USER = RUN_AS_GROUP = 10001
DAGSTER_HOME = "/opt/dagster/dagster_home"  # the images' and the official chart's
HOME = "/home/skyscript"  # the user's home in the images: caches (torch, CUDA, matplotlib)

POD_SECURITY_CONTEXT = {
    "run_as_non_root": True,
    "run_as_user": RUN_AS_USER,
    "run_as_group": RUN_AS_GROUP,
    "fs_group": RUN_AS_GROUP,
    "fs_group_change_policy": "OnRootMismatch",  # never a recursive chown of a large volume
    "seccomp_profile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT = {
    "run_as_non_root": True,
    "allow_privilege_escalation": False,
    "read_only_root_filesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccomp_profile": {"type": "RuntimeDefault"},
}
# The only writable paths of a pod whose root filesystem is read-only (volume name: mount path).
WRITABLE_PATHS = {"tmp": "/tmp", "dagster-home": DAGSTER_HOME, "home": HOME}
WRITABLE_VOLUMES = [{"name": name, "empty_dir": {}} for name in WRITABLE_PATHS]
WRITABLE_VOLUME_MOUNTS = [{"name": name, "mount_path": path} for name, path in WRITABLE_PATHS.items()]

DEFAULT_STEP_CPU = "2"
DEFAULT_STEP_MEMORY = "8Gi"


def gpu_op_tags(gpus: int = 1, memory: str | None = None) -> dict[str, dict]:
    """`op_tags` of a GPU asset: its GPU (and optionally memory) demand per step pod."""
    if gpus < 1:
        raise ValueError(f"a GPU step needs at least one GPU, got {gpus}")
    limits: dict[str, str] = {GPU_RESOURCE: str(gpus)}
    requests: dict[str, str] = {}
    if memory:
        limits["memory"] = requests["memory"] = memory
    resources = {"limits": limits, **({"requests": requests} if requests else {})}
    return {K8S_CONFIG_TAG: {"container_config": {"resources": resources}}}


def _parse_labels(text: str) -> dict[str, str]:
    labels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"node selector entries are key=value, got {item!r}")
        labels[key.strip()] = value.strip()
    return labels


def _parse_tolerations(text: str) -> list[dict[str, str]]:
    """`key[=value]:Effect` entries, comma-separated (the `kubectl taint` spelling)."""
    tolerations = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        taint, sep, effect = item.rpartition(":")
        if not sep or not taint:
            raise ValueError(f"tolerations are key[=value]:Effect, got {item!r}")
        key, has_value, value = taint.partition("=")
        toleration = {"key": key, "operator": "Equal" if has_value else "Exists", "effect": effect}
        if has_value:
            toleration["value"] = value
        tolerations.append(toleration)
    return tolerations


@dataclass(frozen=True)
class GpuPlacement:
    """Where GPU step pods go in this cluster, and what every step pod requests.

    From the environment (see `from_environment`):
        SKYSCRIPT_STEP_CPU            CPU request of every step pod (default 2)
        SKYSCRIPT_STEP_MEMORY         memory request and limit of a step that declares none (default 8Gi;
                                      GPU steps: SKYSCRIPT_GPU_STEP_MEMORY)
        SKYSCRIPT_GPU_IMAGE           image of GPU steps (deployments/Dockerfile.gpu); empty = the run's image
        SKYSCRIPT_GPU_NODE_SELECTOR   key=value[,key=value]  (default nvidia.com/gpu.present=true)
        SKYSCRIPT_GPU_TOLERATIONS     key[=value]:Effect[,...] (default nvidia.com/gpu:NoSchedule)
        SKYSCRIPT_GPUS_PER_STEP       GPUs of a GPU step that declares none (default 1)
        SKYSCRIPT_GPU_STEP_MEMORY     memory of a GPU step that declares none (default 32Gi)
        SKYSCRIPT_MAX_STEP_PODS       step pods at once within one run (default 4)
    """

    image: str = ""
    node_selector: Mapping[str, str] = field(default_factory=lambda: _parse_labels(DEFAULT_GPU_NODE_SELECTOR))
    tolerations: Sequence[Mapping[str, str]] = field(
        default_factory=lambda: _parse_tolerations(DEFAULT_GPU_TOLERATION)
    )
    gpus_per_step: int = 1
    memory_per_step: str = "32Gi"
    max_step_pods_per_run: int = 4
    step_cpu: str = DEFAULT_STEP_CPU
    step_memory: str = DEFAULT_STEP_MEMORY

    @classmethod
    def from_environment(cls) -> "GpuPlacement":
        env = os.environ
        return cls(
            image=env.get("SKYSCRIPT_GPU_IMAGE", ""),
            node_selector=_parse_labels(env.get("SKYSCRIPT_GPU_NODE_SELECTOR", DEFAULT_GPU_NODE_SELECTOR)),
            tolerations=_parse_tolerations(env.get("SKYSCRIPT_GPU_TOLERATIONS", DEFAULT_GPU_TOLERATION)),
            gpus_per_step=int(env.get("SKYSCRIPT_GPUS_PER_STEP", "1")),
            memory_per_step=env.get("SKYSCRIPT_GPU_STEP_MEMORY", "32Gi"),
            max_step_pods_per_run=int(env.get("SKYSCRIPT_MAX_STEP_PODS", "4")),
            step_cpu=env.get("SKYSCRIPT_STEP_CPU", DEFAULT_STEP_CPU),
            step_memory=env.get("SKYSCRIPT_STEP_MEMORY", DEFAULT_STEP_MEMORY),
        )


def is_gpu_asset(asset: dg.AssetsDefinition) -> bool:
    return getattr(asset.node_def, "pool", None) == GPU_POOL  # graph-backed assets have no pool


def _declared_limits(asset: dg.AssetsDefinition) -> dict:
    declared = get_user_defined_k8s_config(asset.op.tags)  # dagster-k8s's own parser of the tag
    return declared.container_config.get("resources", {}).get("limits", {})


def gpu_step_k8s_config(asset: dg.AssetsDefinition, placement: GpuPlacement) -> dict:
    """Placement of a GPU step's pod, plus the default GPU count and memory where the asset
    declares none (without them a step would inherit the run pod's small memory limit)."""
    config: dict = {
        "pod_spec_config": {
            "node_selector": dict(placement.node_selector),
            "tolerations": [dict(t) for t in placement.tolerations],
        },
        "container_config": {},
    }
    if placement.image:
        config["container_config"]["image"] = placement.image
    declared = _declared_limits(asset)
    limits, requests = {}, {}
    if GPU_RESOURCE not in declared:
        limits[GPU_RESOURCE] = str(placement.gpus_per_step)
    if "memory" not in declared:
        limits["memory"] = requests["memory"] = placement.memory_per_step
    if limits:
        config["container_config"]["resources"] = {"limits": limits, **({"requests": requests} if requests else {})}
    return config


def step_k8s_config(placement: GpuPlacement) -> dict:
    """What every step pod gets (`step_k8s_config` of `k8s_job_executor`): the restricted security
    contexts, writable emptyDirs beside a read-only root filesystem, no API token, and CPU and
    memory requests. An asset's own `dagster-k8s/config` tag and a GPU step's placement are merged
    over it by dagster-k8s (GPU steps keep their `nvidia.com/gpu` limit and their memory)."""
    return {
        "pod_spec_config": {
            "security_context": dict(POD_SECURITY_CONTEXT),
            "volumes": [dict(v) for v in WRITABLE_VOLUMES],
            "automount_service_account_token": False,  # steps never call the Kubernetes API
        },
        "container_config": {
            "security_context": dict(CONTAINER_SECURITY_CONTEXT),
            "volume_mounts": [dict(m) for m in WRITABLE_VOLUME_MOUNTS],
            "resources": {
                "requests": {"cpu": placement.step_cpu, "memory": placement.step_memory},
                "limits": {"memory": placement.step_memory},
            },
        },
    }


def gpu_executor_config(assets: Sequence[dg.AssetsDefinition], placement: GpuPlacement) -> dict:
    """`k8s_job_executor` config: one restricted pod per step, GPU placement for every GPU asset's op."""
    return {
        "max_concurrent": placement.max_step_pods_per_run,
        "step_k8s_config": step_k8s_config(placement),
        "per_step_k8s_config": {a.op.name: gpu_step_k8s_config(a, placement) for a in assets if is_gpu_asset(a)},
    }


def build_gpu_pipeline(assets: Sequence[dg.AssetsDefinition], placement: GpuPlacement):
    """`gpu_pipeline`: the GPU assets of one drama, each step in its own pod on a GPU node."""
    gpu_keys = [key for a in assets if is_gpu_asset(a) for key in a.keys]
    return dg.define_asset_job(
        name="gpu_pipeline",
        selection=dg.AssetSelection.assets(*gpu_keys),
        executor_def=k8s_job_executor.configured(gpu_executor_config(assets, placement), name="gpu_k8s_job_executor"),
        description="The GPU assets of one `dramas` partition, one Kubernetes pod per step on GPU nodes "
        "(pool `gpu` caps how many run at once across the deployment).",
    )
