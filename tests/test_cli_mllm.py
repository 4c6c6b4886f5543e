"""`skyscript annotate` and `skyscript clean-json`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import skimage.data
from fake_chat_server import FakeChatServer

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "skyscript_sample_en.json"


def skyscript(*args, home: Path, stdin: str | None = None, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSCRIPT_", "DAGSTER_", "OPENAI_"))}
    environ.update({"SKYSCRIPT_HOME": str(home), **env})
    return subprocess.run(
        [sys.executable, "-m", "skyscript_assets.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
    )


@pytest.fixture
def astronaut_png(tmp_path) -> Path:
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_clean_json_turns_the_sample_mapping_into_a_list(tmp_path):
    if not SAMPLE.is_file():
        pytest.skip("../shared/reference/skyscript_sample_en.json is absent")
    proc = skyscript("clean-json", str(SAMPLE), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    frames = json.loads(proc.stdout)
    assert isinstance(frames, list) and len(frames) == 20
    assert frames[0]["people"][0]["vad"] == {"valence": 8.0, "arousal": 6.0, "dominance": 7.0}
    assert frames[0]["people"][0]["shot_type"] == "medium"


def test_clean_json_from_stdin_keeps_a_single_frame_an_object(tmp_path):
    raw = "Here you go:\n```json\n{'Scene': ['2', 'Rooftop'], 'people': [{'Shot Type': 'CU', 'Line': None,},]}\n```"
    proc = skyscript("clean-json", "-", home=tmp_path, stdin=raw)
    assert proc.returncode == 0, proc.stderr
    frame = json.loads(proc.stdout)
    assert frame["scene"] == {"number": 2, "name": "Rooftop"} and frame["people"][0]["shot_type"] == "close_up"


def test_clean_json_of_unrecoverable_text_exits_1_with_one_line(tmp_path):
    proc = skyscript("clean-json", "-", home=tmp_path, stdin="I cannot help with that image.")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no_json" in proc.stderr


def test_annotate_with_the_baseline_prints_its_raw_output(tmp_path, astronaut_png):
    proc = skyscript("annotate", str(astronaut_png), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [frame] = json.loads(proc.stdout)["frames"]
    assert frame["people"][0]["shot_type"] == "medium"


def test_annotate_against_an_openai_compatible_server(tmp_path, astronaut_png):
    with FakeChatServer() as server:
        proc = skyscript(
            "annotate",
            str(astronaut_png),
            str(astronaut_png),
            "--backend",
            "openai",
            "--server",
            server.base_url,
            "--model",
            "internvl2",
            home=tmp_path,
        )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["frames"]) == 2
    assert server.bodies[0]["model"] == "internvl2"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--backend", "openai"], "needs --server URL and --model NAME"),
        (["--backend", "gpt5"], "unknown MLLM backend 'gpt5'"),
        (["--backend", "transformers", "--model-path", "/nonexistent/model"], "loads from a local folder"),
    ],
)
def test_annotate_usage_errors_are_one_line(tmp_path, astronaut_png, args, words):
    proc = skyscript("annotate", str(astronaut_png), *args, home=tmp_path)
    assert proc.returncode == 2 and words in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
