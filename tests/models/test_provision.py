"""`skyscript models pull` and `skyscript models check` (models/provision.py), without the network:

* pull runs the real huggingface_hub client (model_info, snapshot_download) against a local
  stand-in of the Hub's HTTP API (127.0.0.1, a random port), serving tiny repositories, some of
  them real tiny model folders the tests build; the manifest records commit, sizes and sha256;
* a download that does not match the Hub's listing is refused (an in-process fake Hub);
* check loads the tiny models (transformers VLM and LM, Grounding DINO, Depth Anything,
  ViTPose, DeepFace stand-ins) on CPU and prints one line per model; unconfigured models and
  missing weights get their own lines; a pulled folder checks end to end.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
import pytest
import yaml

from skyscript_assets.cli import main
from skyscript_assets.defs.platform.resources import (
    MllmResource,
    RestorationLlmResource,
    VisionModelsResource,
    local_resources,
)
from skyscript_assets.models import provision
from skyscript_assets.models.provision import (
    MANIFEST_NAME,
    CheckResult,
    HuggingFaceHub,
    PullError,
    RemoteFile,
    RepoListing,
    check_command,
    check_models,
    plan_pull,
    pull,
    read_manifest,
    select_files,
    with_pulled_weights,
)
from skyscript_assets.models.registry import DEEPFACE_FILES, DEFAULT_KEYS, MODELS

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


# --- a local stand-in of the Hub's HTTP API ------------------------------------------------------


class FakeHubServer:
    """The endpoints huggingface_hub's model_info and snapshot_download use: revision info with
    file metadata, the recursive tree, and HEAD/GET of /<repo>/resolve/<revision>/<file>.
    `repos`: repo_id -> {"commit": sha, "files": {path: bytes}}; *.safetensors/*.onnx are LFS."""

    LFS = (".safetensors", ".onnx", ".bin")

    def __init__(self, repos: dict[str, dict]):
        self.repos = repos
        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeHubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def entries(self, repo: dict) -> list[dict]:
        out = []
        for name, data in repo["files"].items():
            entry = {"path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            if name.endswith(self.LFS):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            out.append(entry)
        return out

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _answer(self, body: bool):
                fake.requests.append((self.command, self.path))
                path = unquote(urlparse(self.path).path)
                for repo_id, repo in fake.repos.items():
                    for prefix in (f"/api/models/{repo_id}/revision/", f"/api/models/{repo_id}/tree/"):
                        if path.startswith(prefix):
                            revision = path[len(prefix) :]
                            if revision not in ("main", repo["commit"]):
                                return self._json(
                                    404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"}
                                )
                            entries = fake.entries(repo)
                            if "/tree/" in prefix:
                                return self._json(200, [{"type": "file", **e} for e in entries])
                            siblings = [
                                {
                                    "rfilename": e["path"],
                                    "size": e["size"],
                                    "blobId": e["oid"],
                                    **(
                                        {"lfs": {"sha256": e["lfs"]["oid"], "size": e["size"], "pointerSize": 134}}
                                        if "lfs" in e
                                        else {}
                                    ),
                                }
                                for e in entries
                            ]
                            return self._json(
                                200,
                                {
                                    "id": repo_id,
                                    "modelId": repo_id,
                                    "sha": repo["commit"],
                                    "private": False,
                                    "siblings": siblings,
                                },
                            )
                    resolve = f"/{repo_id}/resolve/"
                    if path.startswith(resolve):
                        _, _, name = path[len(resolve) :].partition("/")
                        if name not in repo["files"]:
                            return self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                        data = repo["files"][name]
                        lfs = name.endswith(fake.LFS)
                        self.send_response(200)
                        self.send_header(
                            "ETag",
                            '"%s"' % (hashlib.sha256(data).hexdigest() if lfs else hashlib.sha1(data).hexdigest()),
                        )
                        self.send_header("X-Repo-Commit", repo["commit"])
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        if body:
                            self.wfile.write(data)
                        return None
                return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})

            def _json(self, status: int, payload, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

        return Handler


def folder_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def small_repo(weights: bytes = b"w" * 3000) -> dict:
    return {
        "commit": COMMIT,
        "files": {
            "config.json": b'{"model_type": "x"}',
            "model.safetensors": weights,
            "pytorch_model.bin": b"b" * 100,
            "README.md": b"# card",
            "images/a.png": b"png",
        },
    }


@pytest.fixture(autouse=True)
def _quiet_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # nothing of ours lands in ~/.cache
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("SKYSCRIPT_WEIGHTS_DIR", raising=False)


@pytest.fixture(scope="module")
def tiny_repos(tmp_path_factory) -> dict[str, dict]:
    """Every default model as a repository of the stand-in Hub: real tiny depth and DeepFace
    weights (checked after the pull), placeholders for the others."""
    from refinement.tiny_models import tiny_depth_anything
    from refinement.tiny_onnx import tiny_classifier, write_deepface_stand_ins

    depth = tiny_depth_anything(tmp_path_factory.mktemp("depth_src"))
    deepface = write_deepface_stand_ins(tmp_path_factory.mktemp("deepface_src"))
    tiny_classifier(deepface / "arcface_weights.onnx", (112, 112, 3), 512, seed=7)
    repos = {MODELS[key].repo_id: small_repo() for key in DEFAULT_KEYS}
    repos[MODELS["depth"].repo_id] = {"commit": COMMIT, "files": folder_files(depth)}
    repos[MODELS["deepface"].repo_id] = {
        "commit": COMMIT,
        "files": {**folder_files(deepface), "README.md": b"x", "vgg_face_weights.onnx": b"not asked for"},
    }
    return repos


# --- the registry --------------------------------------------------------------------------------


def test_the_registry_fills_exactly_the_folders_the_helm_values_point_at():
    env = {
        e["name"]: e["value"]
        for e in yaml.safe_load((ROOT / "helm" / "dagster" / "values.yaml").read_text())["dagster-user-deployments"][
            "deployments"
        ][0]["env"]
    }
    for key in ("detector", "depth", "pose", "deepface"):
        assert MODELS[key].pointer("/models") == env[MODELS[key].env]
    lmdeploy = yaml.safe_load((ROOT / "helm" / "lmdeploy" / "values.yaml").read_text())
    assert MODELS["mllm-76b"].pointer(lmdeploy["model"]["mountPath"]) == lmdeploy["model"]["path"]
    assert set(DEFAULT_KEYS) <= set(MODELS) and "mllm-76b" not in DEFAULT_KEYS
    assert MODELS["deepface"].subfolder == ".deepface/weights"  # where models/faces.py looks under its home


def test_files_are_chosen_without_a_second_copy_of_the_weights():
    files = [
        RemoteFile(p, 1, None)
        for p in (
            "config.json",
            "model.safetensors",
            "pytorch_model.bin",
            "modeling_x.py",
            "tokenizer.model",
            "examples/image1.jpg",
            "onnx/model.onnx",
        )
    ]
    chosen = [f.path for f in select_files(files, MODELS["mllm"].patterns)]
    assert chosen == ["config.json", "model.safetensors", "modeling_x.py", "tokenizer.model"]
    only_bin = [RemoteFile("config.json", 1, None), RemoteFile("pytorch_model.bin", 1, None)]
    assert [f.path for f in select_files(only_bin, MODELS["mllm"].patterns)] == ["config.json", "pytorch_model.bin"]


def test_overrides_and_unknown_models_are_one_line_errors():
    assert provision.sources(["mllm"], {"mllm": "OpenGVLab/InternVL3-8B-hf@v1.0"})[0].folder == "InternVL3-8B-hf"
    with pytest.raises(PullError, match="unknown model 'llama'"):
        provision.sources(["llama"])
    with pytest.raises(PullError, match="OWNER/NAME"):
        provision.sources(["mllm"], {"mllm": "no-slash"})
    with pytest.raises(PullError, match="share a folder"):
        provision.sources(["mllm", "mllm-76b"], {"mllm-76b": "OpenGVLab/InternVL2-8B"})


# --- pull through the real client ---------------------------------------------------------------


def test_pull_writes_the_weights_and_a_manifest_of_commits_sizes_and_hashes(tiny_repos, tmp_path):
    dest = tmp_path / "weights"
    with FakeHubServer(tiny_repos) as hub_server:
        hub = HuggingFaceHub(endpoint=hub_server.endpoint)
        plan = plan_pull([], hub=hub)  # every default model
        lines: list[str] = []
        manifest = pull(plan, dest, hub, log=lines.append)
    assert [item.source.key for item in plan] == list(DEFAULT_KEYS)
    assert len(lines) == len(DEFAULT_KEYS) and lines[0].startswith("mllm ")
    assert read_manifest(dest) == json.loads((dest / MANIFEST_NAME).read_text()) and manifest["models"].keys() == set(
        DEFAULT_KEYS
    )
    detector = manifest["models"]["detector"]
    assert (detector["repo_id"], detector["revision"], detector["commit"]) == (
        "IDEA-Research/grounding-dino-base",
        "main",
        COMMIT,
    )
    assert (
        detector["path"] == f"{dest.absolute()}/grounding-dino-base" and detector["env"] == "SKYSCRIPT_DETECTOR_PATH"
    )
    # only what a model folder needs, one copy of the weights; each file as the Hub listed it
    assert [f["path"] for f in detector["files"]] == ["README.md", "config.json", "model.safetensors"]
    for entry in detector["files"]:
        data = (dest / "grounding-dino-base" / entry["path"]).read_bytes()
        assert entry["size"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert detector["bytes"] == sum(f["size"] for f in detector["files"])
    assert not (dest / "grounding-dino-base" / "pytorch_model.bin").exists()
    assert not (dest / "grounding-dino-base" / "images").exists()
    # DeepFace's files where models/faces.py looks for them, and only those
    deepface = manifest["models"]["deepface"]
    assert sorted(f["path"] for f in deepface["files"]) == sorted(f".deepface/weights/{n}" for n in DEEPFACE_FILES)
    assert all((dest / "deepface" / f["path"]).is_file() for f in deepface["files"])
    assert not (dest / "deepface" / ".deepface" / "weights" / "vgg_face_weights.onnx").exists()


def test_pull_resolves_a_revision_to_its_commit_and_refuses_unknown_ones(tiny_repos, tmp_path):
    with FakeHubServer(tiny_repos) as hub_server:
        hub = HuggingFaceHub(endpoint=hub_server.endpoint)
        [item] = plan_pull(["pose"], hub=hub, repos={"pose": f"usyd-community/vitpose-base-simple@{COMMIT}"})
        assert item.commit == COMMIT and item.source.revision == COMMIT
        with pytest.raises(PullError, match="no revision 'v9'"):
            plan_pull(["pose"], hub=hub, repos={"pose": "usyd-community/vitpose-base-simple@v9"})
        with pytest.raises(PullError, match="no such repository"):
            plan_pull(["pose"], hub=hub, repos={"pose": "nobody/nothing"})


class CorruptingHub:
    """An in-process Hub whose downloads differ from its listing (a truncated or altered file)."""

    def __init__(self, damage: str):
        self.damage = damage
        self.data = b"weights" * 100

    def listing(self, repo_id, revision):
        return RepoListing(
            COMMIT,
            (
                RemoteFile("config.json", 2, None),
                RemoteFile("model.safetensors", len(self.data), hashlib.sha256(self.data).hexdigest()),
            ),
        )

    def download(self, repo_id, commit, paths, local_dir):
        (local_dir / "config.json").write_bytes(b"{}")
        data = self.data[:-1] if self.damage == "size" else self.data[:-1] + b"X"
        (local_dir / "model.safetensors").write_bytes(data)


@pytest.mark.parametrize(("damage", "message"), [("size", "bytes, the Hub lists"), ("content", "sha256")])
def test_a_download_that_differs_from_the_listing_is_refused_and_not_recorded(tmp_path, damage, message):
    hub = CorruptingHub(damage)
    with pytest.raises(PullError, match=message):
        pull(plan_pull(["detector"], hub=hub), tmp_path, hub)
    assert read_manifest(tmp_path)["models"] == {}


def test_a_second_pull_keeps_the_models_pulled_before(tiny_repos, tmp_path):
    with FakeHubServer(tiny_repos) as hub_server:
        hub = HuggingFaceHub(endpoint=hub_server.endpoint)
        pull(plan_pull(["detector"], hub=hub), tmp_path, hub)
        manifest = pull(plan_pull(["pose"], hub=hub), tmp_path, hub)
    assert set(manifest["models"]) == {"detector", "pose"}


def test_cli_pull_plans_downloads_and_says_where_to_point_the_pipeline(tiny_repos, tmp_path, monkeypatch, capsys):
    dest = tmp_path / "models"
    with FakeHubServer(tiny_repos) as hub_server:
        monkeypatch.setenv("HF_ENDPOINT", hub_server.endpoint)
        assert main(["models", "pull", "detector", "depth", "--dest", str(dest), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("would pull 2 models") and "IDEA-Research/grounding-dino-base@0123456789ab" in out
        assert not dest.exists()  # a dry run downloads nothing
        downloads_before = sum(1 for method, path in hub_server.requests if "/resolve/" in path)
        assert downloads_before == 0

        monkeypatch.setenv("SKYSCRIPT_WEIGHTS_DIR", str(dest))  # the default --dest
        assert main(["models", "pull", "detector", "depth"]) == 0
        out = capsys.readouterr().out
        assert f"SKYSCRIPT_DETECTOR_PATH={dest}/grounding-dino-base" in out
        assert f"SKYSCRIPT_DEPTH_PATH={dest}/depth-anything-v2-small" in out
        assert f"manifest: {dest / MANIFEST_NAME}" in out

        assert main(["models", "pull", "llama", "--dest", str(dest)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("skyscript: unknown model 'llama'") and err.count("\n") == 1
        assert main(["models", "pull", "pose", "--repo", "pose=nobody/nothing", "--dest", str(dest)]) == 2
        err = capsys.readouterr().err
        assert "nobody/nothing@main: no such repository" in err and err.count("\n") == 1


def test_cli_pull_without_the_hub_is_one_line(tmp_path, monkeypatch, capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", closed)
    assert main(["models", "pull", "detector", "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"grounding-dino-base@main: cannot reach {closed}: " in err and err.count("\n") == 1
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "pull", "detector", "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE is set; pull needs the network" in err and err.count("\n") == 1


# --- check -----------------------------------------------------------------------------------------


def _lines(results: list[CheckResult]) -> dict[str, str]:
    return {r.key: r.line() for r in results}


def test_check_says_what_is_not_configured_and_where_weights_are_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("SKYSCRIPT_MLLM_BASE_URL", raising=False)
    resources = {
        "mllm": MllmResource(backend="openai", base_url=dg.EnvVar("SKYSCRIPT_MLLM_BASE_URL"), model="internvl2"),
        "restoration_llm": RestorationLlmResource(backend="transformers", model_path=str(tmp_path / "no-llm")),
        "vision": VisionModelsResource(detector_path=str(tmp_path / "no-dino"), deepface_home=str(tmp_path / "empty")),
    }
    results = check_models(
        resources, device="cpu", only=["mllm", "restoration", "detector", "depth", "pose", "faces", "face-embedder"]
    )
    lines = _lines(results)
    assert lines["mllm"] == "mllm          not configured (openai backend without SKYSCRIPT_MLLM_BASE_URL)"
    assert lines["restoration"] == f"restoration   not run: no weights at {tmp_path / 'no-llm'}"
    assert lines["detector"] == f"detector      not run: no weights at {tmp_path / 'no-dino'}"
    assert lines["depth"].startswith("depth         not configured (VisionModelsResource.depth_path")
    assert lines["faces"].startswith(
        f"faces         not run: no weights at {tmp_path / 'empty' / '.deepface' / 'weights'}"
    )
    assert lines["face-embedder"].startswith("face-embedder not run: no weights at ")
    assert [r.failed for r in results] == [False, True, True, False, False, True, True]
    # the offline defaults of the local profile: the renderer is not configured, nothing else fails to load
    local = _lines(check_models(local_resources(), device="cpu", only=["restoration", "detector"]))
    assert local["restoration"].startswith("restoration   not configured (the deterministic renderer")


def test_check_on_cuda_without_a_gpu_is_not_run(monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "dino").mkdir()
    vision = VisionModelsResource(detector_path=str(tmp_path / "dino"))
    lmdeploy = MllmResource(backend="lmdeploy", model_path=str(tmp_path / "dino"), tp=4)
    lines = _lines(
        check_models(
            {"mllm": lmdeploy, "restoration_llm": RestorationLlmResource(), "vision": vision},
            device="cuda",
            only=["detector", "mllm"],
        )
    )
    assert lines["detector"] == "detector      not run: --device cuda: no CUDA device is visible here"
    assert lines["mllm"] == "mllm          not run: --device cuda: no CUDA device is visible here"
    cpu = _lines(
        check_models(
            {"mllm": lmdeploy, "restoration_llm": RestorationLlmResource(), "vision": vision},
            device="cpu",
            only=["mllm"],
        )
    )
    assert cpu["mllm"] == "mllm          not run: the lmdeploy backend runs on CUDA only, and --device cpu was asked"


def test_check_loads_every_tiny_model_on_cpu_and_each_answers(tmp_path, capsys):
    from refinement.tiny_models import tiny_depth_anything, tiny_grounding_dino, tiny_vitpose
    from refinement.tiny_onnx import tiny_classifier, write_deepface_stand_ins
    from tiny_lm import build_tiny_causal_lm
    from tiny_vlm import build_tiny_internvl

    deepface = tmp_path / "deepface"
    weights = write_deepface_stand_ins(deepface, only=("age_model_weights.onnx", "gender_model_weights.onnx"))
    tiny_classifier(weights / "arcface_weights.onnx", (112, 112, 3), 512, seed=7)
    resources = {
        "mllm": MllmResource(backend="transformers", model_path=str(build_tiny_internvl(tmp_path / "internvl"))),
        "restoration_llm": RestorationLlmResource(
            backend="transformers", model_path=str(build_tiny_causal_lm(tmp_path / "lm"))
        ),
        "vision": VisionModelsResource(
            detector_path=str(tiny_grounding_dino(tmp_path / "dino")),
            depth_path=str(tiny_depth_anything(tmp_path / "depth")),
            pose_path=str(tiny_vitpose(tmp_path / "vitpose")),
            deepface_home=str(deepface),
        ),
    }
    assert check_command([], device="cpu", resources=resources) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == list(provision.CHECK_ORDER)
    assert all(line.split()[1] == "ok:" for line in out), out
    lines = dict(zip(provision.CHECK_ORDER, out))
    assert "transformers:internvl on cpu answered" in lines["mllm"]
    assert "transformers:lm on cpu answered" in lines["restoration"]
    assert "dino on cpu:" in lines["detector"] and "a 64x48 depth map" in lines["depth"]
    assert "17 keypoints" in lines["pose"]
    # two attribute models here: the others are named as not run, on the same line
    assert "DeepFace age, gender on cpu" in lines["faces"] and "emotion: not run: no weights at" in lines["faces"]
    assert "a 512-d vector" in lines["face-embedder"]


def test_check_answers_through_a_server_and_reports_its_failure(tmp_path):
    from fake_chat_server import FakeChatServer

    with FakeChatServer() as server:
        good = MllmResource(backend="openai", base_url=server.base_url, model="internvl2", api_key_env="")
        [ok] = check_models(
            {"mllm": good, "restoration_llm": RestorationLlmResource(), "vision": VisionModelsResource()},
            only=["mllm"],
        )
    assert ok.status == "ok" and f"openai:internvl2 at {server.base_url} answered" in ok.detail
    gone = MllmResource(backend="openai", base_url=server.base_url, model="internvl2", api_key_env="")  # server closed
    [failed] = check_models(
        {"mllm": gone, "restoration_llm": RestorationLlmResource(), "vision": VisionModelsResource()}, only=["mllm"]
    )
    assert failed.status == "error" and failed.line().startswith("mllm          error: openai:internvl2: ")
    assert "\n" not in failed.line()


def test_a_pulled_folder_checks_end_to_end_through_the_cli(tiny_repos, tmp_path, monkeypatch, capsys):
    """pull (stand-in Hub) then `check --weights`: the pulled depth model and DeepFace weights
    load and answer; the local profile's MLLM is the pulled folder's (placeholder: an error line)."""
    monkeypatch.delenv("SKYSCRIPT_PROFILE", raising=False)
    dest = tmp_path / "models"
    with FakeHubServer(tiny_repos) as hub_server:
        monkeypatch.setenv("HF_ENDPOINT", hub_server.endpoint)
        assert main(["models", "pull", "depth", "deepface", "--dest", str(dest)]) == 0
    capsys.readouterr()
    resources = with_pulled_weights(local_resources(), dest)
    assert resources["vision"].depth_path == f"{dest}/depth-anything-v2-small"
    assert resources["vision"].detector_path == "" and resources["mllm"].backend == "baseline"  # not pulled here
    assert main(["models", "check", "depth", "faces", "face-embedder", "--device", "cpu", "--weights", str(dest)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out] == [["depth", "ok:"], ["faces", "ok:"], ["face-embedder", "ok:"]]
    assert main(["models", "check", "--weights", str(tmp_path / "nothing")]) == 2
    assert "no pulled models" in capsys.readouterr().err
    assert main(["models", "check", "sonar"]) == 2
