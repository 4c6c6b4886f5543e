"""Model output and OCR text are data: never executed, never used as a path. A server whose
replies carry path traversals, Python and shell code goes through the whole drama pipeline;
the strings end in the catalog verbatim, nothing runs, nothing is written outside the home."""

import json
import os

import dagster as dg
import fake_chat_server
import skimage.data
from fake_chat_server import FakeChatServer
from sqlalchemy import select

from skyscript_assets.catalog import Catalog, FrameAnnotationRow, ShootingScriptRow
from skyscript_assets.definitions import DRAMA_ASSETS
from skyscript_assets.defs.platform.resources import MllmResource, local_resources
from skyscript_assets.demo.synthetic import ShotSpec, render_video
from skyscript_assets.settings import database_url
from skyscript_assets.stages.annotation.clean_json import clean_raw_output


def _hostile_frame(marker) -> dict:
    touch = f"__import__('os').system('touch {marker}')"
    return {
        "scene": {"number": 1, "name": "../../../../tmp/escaped-scene"},
        "scene_description": f"$(touch {marker}) `touch {marker}` {{{{7*7}}}}",
        "people": [{"type": "person", "line": touch, "looks": "../../etc/passwd", "shot_type": "Close-up"}],
        "objects": [
            {"name": "../../../escaped-object", "description": touch},
            {"name": "/etc/passwd", "shot_type": "Background"},
        ],
    }


def test_a_python_literal_reply_is_parsed_never_evaluated(tmp_path):
    marker = tmp_path / "evaluated"
    reply = "{'frames': [{'scene': {'number': 1, 'name': __import__('os').system('touch MARKER')}}]}".replace(
        "MARKER", str(marker)
    )
    cleaned = clean_raw_output(reply, ["ep1/kf0000"])
    assert not marker.exists()
    # local repair may keep the call as text; it never becomes a value computed by Python
    assert cleaned.frames and isinstance(cleaned.frames[0].scene.name, str)
    assert "system(" in cleaned.frames[0].scene.name


def test_hostile_model_output_stays_data_through_the_pipeline(skyscript_home, tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    monkeypatch.setattr(fake_chat_server, "GOOD_FRAME", _hostile_frame(marker))
    folder = skyscript_home / "landing" / "hostile-drama"
    render_video(
        folder / "ep1.mp4",
        [
            ShotSpec(skimage.data.astronaut(), 1.0, subtitle="../../../etc/shadow"),
            ShotSpec(skimage.data.coffee(), 1.0, "static", "cut"),
        ],
        size=(320, 180),
    )
    before = {p for p in tmp_path.parent.rglob("*")}

    with FakeChatServer() as server, dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", ["hostile-drama"])
        resources = {**local_resources(), "mllm": MllmResource(backend="openai", base_url=server.base_url, model="m")}
        result = dg.materialize(
            DRAMA_ASSETS,
            partition_key="hostile-drama",
            instance=instance,
            resources=resources,
            run_config={"ops": {"script_pairs": {"config": {"include_uncalibrated": True}}}},
            raise_on_error=False,
        )
        assert result.success, [e.message for e in result.all_events if e.is_failure]

    assert not marker.exists(), "model output was executed"
    created = {p for p in tmp_path.parent.rglob("*")} - before
    outside = [p for p in created if not p.is_relative_to(skyscript_home)]
    assert not outside, f"written outside SKYSCRIPT_HOME: {outside[:5]}"
    assert not any("escaped" in p.name for p in created)

    catalog = Catalog(database_url())
    with catalog.session() as session:
        annotations = [row.annotation for row in session.scalars(select(FrameAnnotationRow))]
        scripts = [row.script for row in session.scalars(select(ShootingScriptRow))]
    assert annotations and all(a["scene"]["name"] == "../../../../tmp/escaped-scene" for a in annotations)
    assert any(o["name"] == "../../../escaped-object" for a in annotations for o in a["objects"])
    assert scripts and "escaped-object" in json.dumps(scripts)  # carried as text into the shooting scripts
    assert os.path.exists(skyscript_home / "artifacts" / "hostile-drama")
