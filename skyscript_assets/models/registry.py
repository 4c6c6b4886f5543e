"""Where the pipeline's model weights come from: one Hugging Face repository per model, the
revision to pull, which of its files, and the folder (under a weights folder, `/models` in the
cluster) and environment variable that point the pipeline at it.

    skyscript models pull [KEY...] [--dest DIR] [--repo KEY=OWNER/NAME[@REVISION]]

reads this table (models/provision.py). A revision is a branch, tag or commit; `pull` resolves it
to a commit and records that commit, every file's size and sha256 in the manifest beside the
weights (`skyscript-models.json`), so a pulled folder says exactly what it holds.

The defaults, and why:

    mllm         OpenGVLab/InternVL2-8B: InternVL2, the paper's model family, at a size one GPU
                 serves; the original checkpoint (remote code) that lmdeploy serves. The paper's
                 OpenGVLab/InternVL2-Llama3-76B is key `mllm-76b` (folder InternVL2-76B, the
                 path helm/lmdeploy serves, tp=4). The transformers backend loads HF-native
                 folders: `--repo mllm=OpenGVLab/InternVL3-8B-hf` (or another "-hf" conversion).
    restoration  Qwen/Qwen2-7B-Instruct: the text LLM docs/scripts.md serves for script
                 restoration and relationship labels.
    detector     IDEA-Research/grounding-dino-base: Grounding DINO (transformers' own port).
    depth        depth-anything/Depth-Anything-V2-Small-hf: Depth Anything V2, transformers format.
    pose         usyd-community/vitpose-base-simple: ViTPose-B, COCO 17 keypoints, transformers format.
    deepface     serengil/deepface: DeepFace's ONNX weights (age, gender, emotion, race, ArcFace)
                 as DeepFace itself downloads them (the same files as its GitHub releases), placed
                 where models/faces.py looks: $SKYSCRIPT_DEEPFACE_HOME/.deepface/weights/.

Revisions are "main" until pinned: pass `--repo KEY=REPO@COMMIT` (or edit the table) to pin one;
the manifest records the commit that was pulled either way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# What a transformers / lmdeploy model folder needs: configs, tokenizer files, weights in
# safetensors, and the Python files of remote-code checkpoints (InternVL2). Weight formats a
# repository offers twice (pytorch_model.bin beside model.safetensors) are dropped at planning
# time: only the safetensors are pulled when both exist (provision.select_files).
HF_MODEL_FILES = (
    "*.json",
    "*.safetensors",
    "*.bin",
    "*.model",
    "*.tiktoken",
    "*.txt",
    "*.py",
    "*.jinja",
    "*.md",
    "LICENSE*",
)

# DeepFace's ONNX weights (its default engine here, see models/faces.py): the attribute models
# and the ArcFace recognition graph script assembly clusters faces with.
DEEPFACE_FILES = (
    "age_model_weights.onnx",
    "gender_model_weights.onnx",
    "facial_expression_model_weights.onnx",
    "race_model_single_batch.onnx",
    "arcface_weights.onnx",
)


@dataclass(frozen=True)
class ModelSource:
    key: str  # the name on the command line and in the manifest
    what: str
    repo_id: str  # a Hugging Face model repository
    revision: str  # branch, tag or commit; resolved to a commit when pulled
    folder: str  # under the weights folder
    patterns: tuple[str, ...]  # which of the repository's files (fnmatch patterns or exact names)
    env: str  # the variable that points the k8s profile at it (to the folder, or for deepface its home)
    subfolder: str = ""  # inside `folder`, where the files go (DeepFace: .deepface/weights)

    def pointer(self, dest: str) -> str:
        """The value of `env` for weights pulled into `dest`."""
        return f"{dest.rstrip('/')}/{self.folder}"

    def with_repo(self, spec: str) -> ModelSource:
        """`OWNER/NAME[@REVISION]`: another repository (its folder named after it) or revision."""
        repo_id, _, revision = spec.partition("@")
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise ValueError(f"{self.key}: {spec!r} is not OWNER/NAME[@REVISION]")
        folder = self.folder if repo_id == self.repo_id else repo_id.split("/")[1]
        return replace(self, repo_id=repo_id, revision=revision or "main", folder=folder)


MODELS: dict[str, ModelSource] = {
    m.key: m
    for m in (
        ModelSource(
            "mllm",
            "the keyframe annotator (InternVL2)",
            "OpenGVLab/InternVL2-8B",
            "main",
            "InternVL2-8B",
            HF_MODEL_FILES,
            "SKYSCRIPT_MLLM_MODEL_PATH",
        ),
        ModelSource(
            "restoration",
            "the restoration LLM",
            "Qwen/Qwen2-7B-Instruct",
            "main",
            "Qwen2-7B-Instruct",
            HF_MODEL_FILES,
            "SKYSCRIPT_RESTORE_MODEL_PATH",
        ),
        ModelSource(
            "detector",
            "Grounding DINO",
            "IDEA-Research/grounding-dino-base",
            "main",
            "grounding-dino-base",
            HF_MODEL_FILES,
            "SKYSCRIPT_DETECTOR_PATH",
        ),
        ModelSource(
            "depth",
            "Depth Anything V2",
            "depth-anything/Depth-Anything-V2-Small-hf",
            "main",
            "depth-anything-v2-small",
            HF_MODEL_FILES,
            "SKYSCRIPT_DEPTH_PATH",
        ),
        ModelSource(
            "pose",
            "ViTPose",
            "usyd-community/vitpose-base-simple",
            "main",
            "vitpose-base-simple",
            HF_MODEL_FILES,
            "SKYSCRIPT_POSE_PATH",
        ),
        ModelSource(
            "deepface",
            "DeepFace age/gender/emotion/race and ArcFace",
            "serengil/deepface",
            "main",
            "deepface",
            DEEPFACE_FILES,
            "SKYSCRIPT_DEEPFACE_HOME",
            subfolder=".deepface/weights",
        ),
        # not pulled unless named: the paper's 76B MLLM, in the folder helm/lmdeploy serves
        ModelSource(
            "mllm-76b",
            "the paper's InternVL2-76B (tp=4)",
            "OpenGVLab/InternVL2-Llama3-76B",
            "main",
            "InternVL2-76B",
            HF_MODEL_FILES,
            "SKYSCRIPT_MLLM_MODEL_PATH",
        ),
    )
}

# `skyscript models pull` without keys
DEFAULT_KEYS = ("mllm", "restoration", "detector", "depth", "pose", "deepface")
