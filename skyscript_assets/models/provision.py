"""Weights in, models checked: what `skyscript models pull` and `skyscript models check` do.

    plan = plan_pull(["detector", "depth"], hub=HuggingFaceHub())      # resolves revisions (network)
    manifest = pull(plan, Path("/models"), hub)                         # downloads, verifies, records
    for result in check_models(resources, device="auto"):     # no network; resources: the profile's
        print(result.line())

Pull (a machine with network): each model of the registry (models/registry.py) is one Hugging
Face repository; its revision is resolved to a commit first, the files to fetch are chosen from
that commit's listing, downloaded into `<dest>/<folder>` (huggingface_hub.snapshot_download at
that commit, only those files), and checked against the listing: size, and sha256 where the Hub
knows it (every LFS file: the weights). The manifest `<dest>/skyscript-models.json` then records
per model the repo id, the revision asked for, the commit pulled, the folder, the variable that
points the pipeline at it, and every file with its size and sha256. It is rewritten after each
model, so a pull that stops halfway records what it finished.

Check (no network beyond the configured servers): every model the current profile's resources
configure is loaded on the chosen device and given one tiny input, and reported in one line:
"ok: ...", "not configured (...)", "not run: no weights at PATH" (or another reason it cannot
run here: no CUDA, no lmdeploy) or "error: <one line>".
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Protocol

from skyscript_assets.models.registry import DEFAULT_KEYS, MODELS, ModelSource

MANIFEST_NAME = "skyscript-models.json"
MANIFEST_FORMAT = 1
WEIGHTS_DIR_VARIABLE = "SKYSCRIPT_WEIGHTS_DIR"
# weight formats dropped when the same commit also has safetensors
DUPLICATE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack")


class PullError(RuntimeError):
    """A model could not be resolved, downloaded or verified; the message is one line."""


def default_weights_dir() -> Path:
    """$SKYSCRIPT_WEIGHTS_DIR, else $SKYSCRIPT_HOME/models (the cluster's volume is /models)."""
    from skyscript_assets import settings

    value = os.environ.get(WEIGHTS_DIR_VARIABLE)
    return Path(value).expanduser() if value else settings.skyscript_home() / "models"


# --- the Hub ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative, POSIX
    size: int | None
    sha256: str | None  # the Hub's LFS sha256; None for small files kept in git


@dataclass(frozen=True)
class RepoListing:
    commit: str
    files: tuple[RemoteFile, ...]


class Hub(Protocol):
    """Where weights come from (HuggingFaceHub; tests pass a fake)."""

    def listing(self, repo_id: str, revision: str) -> RepoListing: ...

    def download(self, repo_id: str, commit: str, paths: Sequence[str], local_dir: Path) -> None: ...


class HuggingFaceHub:
    """huggingface_hub against `endpoint` (default: $HF_ENDPOINT or huggingface.co); the token
    (gated or private repositories) from $HF_TOKEN or `hf auth login`, never from us."""

    def __init__(self, endpoint: str | None = None, max_workers: int = 8) -> None:
        # read now, not when huggingface_hub was first imported (its constants are fixed then)
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None
        self.max_workers = max_workers

    def listing(self, repo_id: str, revision: str) -> RepoListing:
        from huggingface_hub import HfApi

        try:
            info = HfApi(endpoint=self.endpoint).model_info(repo_id, revision=revision, files_metadata=True)
        except Exception as exc:  # noqa: BLE001 - every Hub failure becomes one line
            raise PullError(_hub_error(repo_id, revision, exc, self.endpoint)) from None
        files = tuple(RemoteFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None) for s in info.siblings or ())
        return RepoListing(info.sha, files)

    def download(self, repo_id: str, commit: str, paths: Sequence[str], local_dir: Path) -> None:
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(
                repo_id,
                revision=commit,
                allow_patterns=list(paths),
                local_dir=str(local_dir),
                endpoint=self.endpoint,
                max_workers=self.max_workers,
            )
        except Exception as exc:  # noqa: BLE001
            raise PullError(_hub_error(repo_id, commit, exc, self.endpoint)) from None


def _hub_error(repo_id: str, revision: str, exc: BaseException, endpoint: str | None = None) -> str:
    from skyscript_assets.models.mllm import one_line

    kind = type(exc).__name__
    where = f"{repo_id}@{revision}"
    if kind == "GatedRepoError":
        return f"{where}: gated; accept its terms on the Hub and set HF_TOKEN"
    if kind == "RepositoryNotFoundError":
        return f"{where}: no such repository (or a private one: set HF_TOKEN)"
    if kind == "RevisionNotFoundError":
        return f"{where}: no revision {revision!r} in this repository"
    if kind == "OfflineModeIsEnabled" or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return f"{where}: HF_HUB_OFFLINE is set; pull needs the network (run it where the Hub is reachable)"
    text = str(exc).split("\n")[0]
    if kind in ("ConnectError", "ConnectTimeout", "ReadTimeout", "ConnectionError", "ProxyError", "SSLError"):
        from huggingface_hub import constants

        return one_line(f"{where}: cannot reach {endpoint or constants.ENDPOINT}: {kind}: {text}")
    return one_line(f"{where}: {kind}: {text}")


# --- planning -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullItem:
    source: ModelSource
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)


def sources(keys: Iterable[str] = (), repos: Mapping[str, str] | None = None) -> list[ModelSource]:
    """The registry entries named (all defaults when none), with `repos` overrides
    (key -> "OWNER/NAME[@REVISION]")."""
    keys = list(dict.fromkeys(keys or DEFAULT_KEYS))
    unknown = [k for k in [*keys, *(repos or {})] if k not in MODELS]
    if unknown:
        raise PullError(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    chosen = []
    for key in keys:
        source = MODELS[key]
        if repos and key in repos:
            try:
                source = source.with_repo(repos[key])
            except ValueError as exc:
                raise PullError(str(exc)) from None
        chosen.append(source)
    folders = [s.folder for s in chosen]
    if len(set(folders)) != len(folders):
        raise PullError(f"two models would share a folder: {', '.join(folders)}")
    return chosen


def select_files(files: Iterable[RemoteFile], patterns: Sequence[str]) -> tuple[RemoteFile, ...]:
    """The files matching `patterns` (on the whole path or its name), without a second copy of
    the weights: when safetensors are among them, .bin/.pt/... weight files are dropped."""

    def matches(path: str, globs: Sequence[str]) -> bool:
        name = PurePosixPath(path).name
        return any(fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(name, g) for g in globs)

    chosen = [f for f in files if matches(f.path, patterns)]
    if any(f.path.endswith(".safetensors") for f in chosen):
        chosen = [f for f in chosen if not matches(f.path, DUPLICATE_WEIGHTS)]
    return tuple(sorted(chosen, key=lambda f: f.path))


def plan_pull(keys: Iterable[str] = (), *, hub: Hub, repos: Mapping[str, str] | None = None) -> list[PullItem]:
    """Resolve each model's revision to a commit and choose its files (one listing per model)."""
    plan = []
    for source in sources(keys, repos):
        listing = hub.listing(source.repo_id, source.revision)
        files = select_files(listing.files, source.patterns)
        if not files:
            raise PullError(
                f"{source.key}: {source.repo_id}@{source.revision} has no file matching {', '.join(source.patterns)}"
            )
        missing = [
            p
            for p in source.patterns
            if not any(ch in p for ch in "*?[")
            and not any(f.path == p or PurePosixPath(f.path).name == p for f in files)
        ]
        if missing:
            raise PullError(f"{source.key}: {source.repo_id}@{listing.commit[:12]} lacks {', '.join(missing)}")
        plan.append(PullItem(source, listing.commit, files))
    return plan


# --- pulling ------------------------------------------------------------------------------------


def pull(plan: Sequence[PullItem], dest: Path, hub: Hub, *, log: Callable[[str], None] = lambda line: None) -> dict:
    """Download every item of `plan` under `dest`, verify it, record it in the manifest; the manifest."""
    dest = Path(dest).expanduser().absolute()
    dest.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(dest)
    for item in plan:
        source = item.source
        target = dest / source.folder / source.subfolder if source.subfolder else dest / source.folder
        target.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        hub.download(source.repo_id, item.commit, [f.path for f in item.files], target)
        files = [_verified(target, remote, source) for remote in item.files]
        manifest["models"][source.key] = {
            "repo_id": source.repo_id,
            "revision": source.revision,
            "commit": item.commit,
            "folder": source.folder,
            "subfolder": source.subfolder,
            "env": source.env,
            "path": source.pointer(str(dest)),
            "what": source.what,
            "files": files,
            "bytes": sum(f["size"] for f in files),
            "pulled_at": _now(),
        }
        write_manifest(dest, manifest)
        log(
            f"{source.key:<12} {source.repo_id}@{item.commit[:12]} -> {dest / source.folder} "
            f"({len(files)} files, {human_size(sum(f['size'] for f in files))}, {time.monotonic() - started:.0f} s)"
        )
    return manifest


def _verified(target: Path, remote: RemoteFile, source: ModelSource) -> dict:
    path = target / remote.path
    if not path.is_file():
        raise PullError(f"{source.key}: {remote.path} was not downloaded into {target}")
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise PullError(f"{source.key}: {remote.path} has {size} bytes, the Hub lists {remote.size}")
    digest = sha256_file(path)
    if remote.sha256 and digest != remote.sha256:
        raise PullError(
            f"{source.key}: {remote.path} sha256 {digest[:12]}... differs from the Hub's {remote.sha256[:12]}..."
        )
    return {
        "path": str(PurePosixPath(source.subfolder) / remote.path) if source.subfolder else remote.path,
        "size": size,
        "sha256": digest,
    }


def sha256_file(path: Path, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(dest: Path) -> dict:
    path = Path(dest) / MANIFEST_NAME
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "tool": "skyscript models pull", "models": {}}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PullError(f"{path}: not a readable manifest ({exc})") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(manifest.get("models"), dict)
    ):
        raise PullError(f"{path}: not a manifest of format {MANIFEST_FORMAT}")
    return manifest


def write_manifest(dest: Path, manifest: dict) -> Path:
    path = Path(dest) / MANIFEST_NAME
    manifest["updated_at"] = _now()
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    partial.replace(path)  # never a half-written manifest
    return path


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# --- checking -----------------------------------------------------------------------------------

CHECK_ORDER = ("mllm", "restoration", "detector", "depth", "pose", "faces", "face-embedder", "ocr")


@dataclass(frozen=True)
class CheckResult:
    key: str
    status: str  # "ok" | "not configured" | "not run" | "error"
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("not run", "error")

    def line(self) -> str:
        if self.status == "not configured":
            return f"{self.key:<14}not configured" + (f" ({self.detail})" if self.detail else "")
        return f"{self.key:<14}{self.status}" + (f": {self.detail}" if self.detail else "")


@dataclass
class CheckContext:
    device: str  # "cpu", "cuda" or "auto" as asked
    torch_device: str = ""  # what "auto" became; "" before torch was asked
    cuda_missing: str = ""  # set when --device cuda was asked and no CUDA device is visible
    extra: dict = field(default_factory=dict)


def with_pulled_weights(resources: dict, weights_dir: Path) -> dict:
    """`resources` with what a pulled folder holds filling in what they leave unset: vision paths,
    DeepFace's home, the restoration LLM (transformers) and the MLLM in place of the offline baseline
    (transformers). What is configured already stays as it is."""
    manifest = read_manifest(weights_dir)
    if not manifest["models"]:
        raise PullError(
            f"{Path(weights_dir) / MANIFEST_NAME}: no pulled models (skyscript models pull --dest {weights_dir})"
        )
    root = str(Path(weights_dir).expanduser().absolute())
    pulled = {key: f"{root}/{entry['folder']}" for key, entry in manifest["models"].items()}
    updated = dict(resources)
    vision = resources["vision"]
    fills = {
        "detector_path": pulled.get("detector"),
        "depth_path": pulled.get("depth"),
        "pose_path": pulled.get("pose"),
        "deepface_home": pulled.get("deepface"),
    }
    changes = {name: value for name, value in fills.items() if value and not getattr(vision, name)}
    if changes:
        updated["vision"] = vision.model_copy(update=changes)
    restoration = resources["restoration_llm"]
    if not restoration.backend and pulled.get("restoration"):
        updated["restoration_llm"] = restoration.model_copy(
            update={"backend": "transformers", "model_path": pulled["restoration"]}
        )
    mllm = resources["mllm"]
    mllm_folder = pulled.get("mllm") or pulled.get("mllm-76b")
    if mllm.backend == "baseline" and mllm_folder:
        updated["mllm"] = mllm.model_copy(update={"backend": "transformers", "model_path": mllm_folder})
    return updated


def check_models(resources: Mapping[str, object], device: str = "auto", only: Iterable[str] = ()) -> list[CheckResult]:
    """One result per model the resources configure (or leave unconfigured), each loaded on
    `device` and given one tiny input. Nothing is downloaded."""
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device {device!r}: choose cpu, cuda or auto")
    context = CheckContext(device)
    checks: dict[str, Callable[[], CheckResult]] = {
        "mllm": lambda: _check_mllm(resources["mllm"], context),
        "restoration": lambda: _check_restoration(resources["restoration_llm"], context),
        "detector": lambda: _check_vision("detector", resources["vision"], context),
        "depth": lambda: _check_vision("depth", resources["vision"], context),
        "pose": lambda: _check_vision("pose", resources["vision"], context),
        "faces": lambda: _check_faces(resources["vision"], context),
        "face-embedder": lambda: _check_face_embedder(resources["vision"], context),
        "ocr": lambda: _check_ocr(),
    }
    wanted = list(only) or list(CHECK_ORDER)
    unknown = [k for k in wanted if k not in checks]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; choose from {', '.join(CHECK_ORDER)}")
    return [_guarded(key, checks[key]) for key in wanted]


def _guarded(key: str, check: Callable[[], CheckResult]) -> CheckResult:
    from skyscript_assets.models.base import WeightsMissing
    from skyscript_assets.models.mllm import BackendUnavailable, one_line

    try:
        return check()
    except WeightsMissing as exc:
        return CheckResult(key, "not run", one_line(str(exc).removeprefix("not run: ")))
    except BackendUnavailable as exc:
        return CheckResult(key, "not run", one_line(exc))
    except Exception as exc:  # noqa: BLE001 - one line per model, the others still run
        text = str(exc).split("\n")[0] or type(exc).__name__
        return CheckResult(key, "error", one_line(f"{type(exc).__name__}: {text}"))


def _is_env_var(value) -> bool:
    """A setting that names an environment variable (Dagster's EnvVar), read by duck type: no Dagster down here."""
    return hasattr(value, "env_var_name") and hasattr(value, "get_value")


def _value(value) -> str:
    """A resource field's value: an environment variable resolved now ("" when it is unset)."""
    if _is_env_var(value):
        return value.get_value() or ""
    return value if isinstance(value, str) else str(value)


def _unset_variables(resource, *names: str) -> list[str]:
    return [
        getattr(resource, n).env_var_name
        for n in names
        if _is_env_var(getattr(resource, n)) and not getattr(resource, n).get_value()
    ]


def _torch_device(context: CheckContext) -> str:
    """The torch device of this check run; raises BackendUnavailable for cuda without CUDA."""
    from skyscript_assets.models.mllm import BackendUnavailable

    if not context.torch_device:
        try:
            import torch
        except ImportError:
            raise BackendUnavailable("torch is not installed") from None
        available = torch.cuda.is_available()
        if context.device == "cuda" and not available:
            context.cuda_missing = "--device cuda: no CUDA device is visible here"
        context.torch_device = (
            "cuda" if context.device == "cuda" or (context.device == "auto" and available) else "cpu"
        )
    if context.cuda_missing:
        raise BackendUnavailable(context.cuda_missing)
    return context.torch_device


def _missing_weights(path: str) -> None:
    """WeightsMissing for a configured local path that is not there (an HF cache name passes)."""
    from skyscript_assets.models.base import WeightsMissing

    local = Path(path).expanduser()
    if (local.is_absolute() or path.startswith((".", "~"))) and not local.exists():
        raise WeightsMissing(local)


def _timed(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"


def _tiny_image(width: int = 64, height: int = 48):
    import numpy as np

    rng = np.random.default_rng(0)
    image = np.zeros((height, width, 3), np.uint8) + np.array([90, 140, 200], np.uint8)
    image[height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = (220, 190, 160)
    noise = rng.integers(0, 20, size=(height, width, 1))
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def _jpeg(image) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", image[:, :, ::-1])
    if not ok:
        raise RuntimeError("could not encode the check image")
    return data.tobytes()


CHECK_PROMPT = "What colour is the background of this image? Answer in one word."
CHECK_TEXT_PROMPT = "Reply with the single word OK."


def _check_mllm(mllm, context: CheckContext) -> CheckResult:
    from skyscript_assets.models.mllm import MllmRequest, load_backend

    backend_name = mllm.backend
    if backend_name == "openai":
        missing = _unset_variables(mllm, "base_url", "model")
        base_url, model = _value(mllm.base_url), _value(mllm.model)
        if missing or not (base_url and model):
            return CheckResult(
                "mllm", "not configured", f"openai backend without {' and '.join(missing) or 'base_url and model'}"
            )
        config = {
            "base_url": base_url,
            "model": model,
            "api_key_env": mllm.api_key_env,
            "max_tokens": 16,
            "json_schema": False,
            "max_retries": 1,
            "deadline_s": 120.0,
            "max_concurrency": 1,
        }
        where = base_url
    elif backend_name in ("transformers", "lmdeploy"):
        model_path = _value(mllm.model_path)
        if not model_path:
            return CheckResult("mllm", "not configured", f"{backend_name} backend without model_path")
        _missing_weights(model_path)
        if backend_name == "transformers":
            config = {"model_path": model_path, "device": _torch_device(context), "batch_size": 1, "max_new_tokens": 8}
        else:
            _needs_cuda(context, "the lmdeploy backend")
            config = {
                "model_path": model_path,
                "tp": mllm.tp,
                "session_len": mllm.session_len,
                "cache_max_entry_count": mllm.cache_max_entry_count,
                "chat_template": mllm.chat_template,
                "max_new_tokens": 8,
            }
        where = ""
    else:
        config, where = {}, ""
    started = time.monotonic()
    backend = load_backend(backend_name, **config)
    try:
        [reply] = backend.generate([MllmRequest((_jpeg(_tiny_image()),), CHECK_PROMPT)])
    finally:
        backend.close()
    if reply.text is None:
        return CheckResult("mllm", "error", f"{backend.model_id}: {reply.error}")
    on = (
        f" at {where}"
        if where
        else f" on {getattr(backend, 'device', 'cpu')}"
        if backend_name == "transformers"
        else ""
    )
    return CheckResult(
        "mllm", "ok", f"{backend.model_id}{on} answered {len(reply.text)} characters in {_timed(started)}"
    )


def _needs_cuda(context: CheckContext, what: str) -> None:
    from skyscript_assets.models.mllm import BackendUnavailable

    if context.device == "cpu":
        raise BackendUnavailable(f"{what} runs on CUDA only, and --device cpu was asked")
    _torch_device(context)


def _check_restoration(restoration, context: CheckContext) -> CheckResult:
    from skyscript_assets.models.text_generation import load_text_generator

    backend_name = restoration.backend
    if not backend_name:
        return CheckResult(
            "restoration",
            "not configured",
            "the deterministic renderer; set SKYSCRIPT_RESTORE_BASE_URL or SKYSCRIPT_RESTORE_MODEL_PATH",
        )
    if backend_name == "openai":
        missing = _unset_variables(restoration, "base_url", "model")
        base_url, model = _value(restoration.base_url), _value(restoration.model)
        if missing or not (base_url and model):
            return CheckResult(
                "restoration",
                "not configured",
                f"openai backend without {' and '.join(missing) or 'base_url and model'}",
            )
        config = {
            "base_url": base_url,
            "model": model,
            "api_key_env": restoration.api_key_env,
            "max_retries": 1,
            "deadline_s": 120.0,
        }
        where = f" at {base_url}"
    else:
        model_path = _value(restoration.model_path)
        if not model_path:
            return CheckResult("restoration", "not configured", f"{backend_name} backend without model_path")
        _missing_weights(model_path)
        if backend_name == "transformers":
            config = {"model_path": model_path, "device": _torch_device(context)}
            where = f" on {context.torch_device}"
        else:
            _needs_cuda(context, f"the {backend_name} text backend")
            config = {"model_path": model_path, **_lmdeploy_options(restoration)}
            where = ""
    started = time.monotonic()
    generator = load_text_generator(backend_name, **config)
    try:
        texts = generator.generate(CHECK_TEXT_PROMPT, n=1, seed=0, temperature=0.0, max_tokens=8)
    finally:
        generator.close()
    if not texts:
        return CheckResult("restoration", "error", f"{generator.model_id}: no text came back")
    return CheckResult(
        "restoration", "ok", f"{generator.model_id}{where} answered {len(texts[0])} characters in {_timed(started)}"
    )


def _lmdeploy_options(restoration) -> dict:
    """The engine settings of the resource the lmdeploy text generator takes (those it has)."""
    names = ("tp", "session_len", "cache_max_entry_count", "chat_template")
    return {n: getattr(restoration, n) for n in names if hasattr(restoration, n)}


VISION_FIELDS = {
    "detector": ("detector_path", "SKYSCRIPT_DETECTOR_PATH"),
    "depth": ("depth_path", "SKYSCRIPT_DEPTH_PATH"),
    "pose": ("pose_path", "SKYSCRIPT_POSE_PATH"),
}


def _check_vision(key: str, vision, context: CheckContext) -> CheckResult:
    name, variable = VISION_FIELDS[key]
    path = _value(getattr(vision, name))
    if not path:
        return CheckResult(key, "not configured", f"VisionModelsResource.{name}; {variable} in the k8s profile")
    _missing_weights(path)
    device = _torch_device(context)
    started = time.monotonic()
    image = _tiny_image()
    if key == "detector":
        from skyscript_assets.models.detector import OpenVocabularyDetector

        model = OpenVocabularyDetector.load(
            path, device, box_threshold=vision.box_threshold, text_threshold=vision.text_threshold
        )
        [found] = model.detect([image], [["person", "cup"]])
        answer = f"{len(found)} boxes"
    elif key == "depth":
        from skyscript_assets.models.depth import DepthEstimator

        model = DepthEstimator.load(path, device)
        [depth] = model.estimate([image])
        if depth.shape != image.shape[:2]:
            raise RuntimeError(f"a depth map of shape {depth.shape} for a {image.shape[:2]} image")
        answer = f"a {depth.shape[1]}x{depth.shape[0]} depth map"
    else:
        from skyscript_assets.models.pose import PoseEstimator

        model = PoseEstimator.load(path, device)
        [[pose]] = model.estimate([image], [[(16.0, 4.0, 48.0, 44.0)]])
        answer = f"{len(pose.keypoints)} keypoints"
    return CheckResult(key, "ok", f"{Path(path).name} on {device}: {answer} in {_timed(started)}")


def _deepface_home(vision) -> str | None:
    return _value(vision.deepface_home) or None  # None: $DEEPFACE_HOME, else ~ (as the pipeline)


def _check_faces(vision, context: CheckContext) -> CheckResult:
    from skyscript_assets.models.faces import FaceAttributeModel

    started = time.monotonic()
    model = FaceAttributeModel.load(_deepface_home(vision))
    [found] = model.analyze([_tiny_image(32, 32)])
    answered = [a for a in model.models if getattr(found, a) is not None]
    note = "; ".join(f"{a}: {why}" for a, why in model.not_run.items())
    return CheckResult(
        "faces",
        "ok",
        f"DeepFace {', '.join(answered)} on {model.device} in {_timed(started)}" + (f" ({note})" if note else ""),
    )


def _check_face_embedder(vision, context: CheckContext) -> CheckResult:
    from skyscript_assets.models.faces import FaceEmbedder

    started = time.monotonic()
    model = FaceEmbedder.load(_deepface_home(vision))
    vectors = model.embed([_tiny_image(32, 32)])
    return CheckResult("face-embedder", "ok", f"{model.model_id}: a {vectors.shape[1]}-d vector in {_timed(started)}")


def _check_ocr() -> CheckResult:
    from skyscript_assets.models.ocr import TextReader

    started = time.monotonic()
    reader = TextReader.load(threads=1)
    [boxes] = reader.read([_tiny_image()])
    return CheckResult(
        "ocr", "ok", f"RapidOCR (its wheel's graphs) on cpu: {len(boxes)} text boxes in {_timed(started)}"
    )


# --- the commands (cli.py stays thin) -----------------------------------------------------------


def parse_repos(specs: Iterable[str]) -> dict[str, str]:
    """["mllm=OpenGVLab/InternVL2-Llama3-76B@main", ...] -> {"mllm": "OpenGVLab/...@main"}."""
    repos = {}
    for spec in specs:
        key, sep, repo = spec.partition("=")
        if not sep or not key or not repo:
            raise PullError(f"--repo {spec!r}: expected MODEL=OWNER/NAME[@REVISION]")
        repos[key.strip()] = repo.strip()
    return repos


def pull_command(
    keys: Sequence[str],
    *,
    dest: str | None,
    repos: Sequence[str] = (),
    dry_run: bool = False,
    hub: Hub | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """`skyscript models pull`: plan, print the plan, download (unless `dry_run`), print where
    the pipeline's variables should point. Raises PullError (one line)."""
    folder = Path(dest).expanduser().absolute() if dest else default_weights_dir().absolute()
    hub = hub or HuggingFaceHub()
    plan = plan_pull(keys, hub=hub, repos=parse_repos(repos))
    out(
        f"{'would pull' if dry_run else 'pulling'} {len(plan)} models, {human_size(sum(i.size for i in plan))}, "
        f"into {folder}"
    )
    for item in plan:
        out(
            f"  {item.source.key:<12} {item.source.repo_id}@{item.commit[:12]}  {len(item.files)} files  "
            f"{human_size(item.size)}  -> {folder / item.source.folder}"
        )
    if dry_run:
        return 0
    pull(plan, folder, hub, log=lambda line: out(f"pulled {line}"))
    out(f"manifest: {folder / MANIFEST_NAME}")
    out("point the pipeline at them (helm/dagster/values.yaml, docs/deploy.md):")
    for item in plan:
        out(f"  {item.source.env}={item.source.pointer(str(folder))}")
    return 0


def check_command(
    keys: Sequence[str],
    *,
    device: str = "auto",
    weights: str | None = None,
    resources: dict,
    out: Callable[[str], None] = print,
) -> int:
    """`skyscript models check`: one line per model; 1 when a configured model did not answer."""
    if weights:
        resources = with_pulled_weights(resources, Path(weights).expanduser())
    results = check_models(resources, device=device, only=keys)
    for result in results:
        out(result.line())
    return 1 if any(r.failed for r in results) else 0
