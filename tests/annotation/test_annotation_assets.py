"""raw_mllm_json and cleaned_json as assets: verbatim replies, validated frames, losses,
resumability; against a real local OpenAI-compatible server and the offline baseline."""

import json

import dagster as dg
import pytest
import skimage.data
from fake_chat_server import FakeChatServer
from sqlalchemy import select

from skyscript_assets.catalog import Catalog, FrameAnnotationRow, RawMllmOutput
from skyscript_assets.defs.annotation.assets import cleaned_json, raw_mllm_json
from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.platform.resources import MllmResource, local_resources
from skyscript_assets.defs.video.assets import keyframes
from skyscript_assets.demo.synthetic import ShotSpec, render_video
from skyscript_assets.schema import FrameAnnotation
from skyscript_assets.settings import database_url

ASSETS = [drama_manifest, keyframes, raw_mllm_json, cleaned_json]
ONE_WORKER = {"ops": {"keyframes": {"config": {"workers": 1}}}}


def _drama(home, size=(320, 180)):
    folder = home / "landing" / "mllm-drama"
    render_video(
        folder / "ep1.mp4",
        [
            ShotSpec(skimage.data.astronaut(), 1.0, subtitle="I never left."),
            ShotSpec(skimage.data.coffee(), 1.0, "static", "cut"),
        ],
        size=size,
    )
    render_video(folder / "ep2.mp4", [ShotSpec(skimage.data.rocket(), 1.0)], size=(320, 180))


def _materialize(instance, resources, assets=ASSETS):
    if not instance.has_dynamic_partition("dramas", "mllm-drama"):
        instance.add_dynamic_partitions("dramas", ["mllm-drama"])
    return dg.materialize(
        assets,
        partition_key="mllm-drama",
        instance=instance,
        resources=resources,
        run_config=ONE_WORKER if keyframes in assets else None,
        raise_on_error=False,
    )


def _meta(result, key):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_openai_backend_replies_are_kept_verbatim_and_cleaned(skyscript_home, monkeypatch):
    _drama(skyscript_home)
    monkeypatch.setenv("TEST_MLLM_KEY", "sk-test-secret")
    with FakeChatServer() as server, dg.instance_for_test() as instance:
        resources = {
            **local_resources(),
            "mllm": MllmResource(
                backend="openai", base_url=server.base_url, model="tiny-vlm", api_key_env="TEST_MLLM_KEY"
            ),
        }
        result = _materialize(instance, resources)
        assert result.success
        assert _meta(result, "raw_mllm_json")["requests"] == 3  # one per shot
        assert _meta(result, "cleaned_json")["frames_kept"] == 3
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["frame_loss_rate"] and checks["unparseable_rate"]
        # The API key travelled in the header only, never into metadata or config.
        assert all(h.get("Authorization") == "Bearer sk-test-secret" for h in server.headers)
        logs = json.dumps([str(e) for e in instance.all_logs(result.run_id)])
        assert "sk-test-secret" not in logs

        catalog = Catalog(database_url())
        with catalog.session() as session:
            raws = list(session.scalars(select(RawMllmOutput)))
            frames = list(session.scalars(select(FrameAnnotationRow).order_by(FrameAnnotationRow.item)))
        assert all(json.loads(r.text)["frames"] for r in raws) and raws[0].model_id == "openai:tiny-vlm"
        assert [f.item for f in frames] == ["ep1/kf0000", "ep1/kf0001", "ep2/kf0000"]
        annotation = FrameAnnotation.model_validate(frames[0].annotation)
        assert annotation.people[0].vad.valence == 6.0 and annotation.people[0].shot_type.value == "medium"
        assert annotation.timestamp_s is not None  # the keyframe's decoded time, not the model's

        # A second run has nothing to do: no request reaches the server.
        before = len(server.bodies)
        again = _materialize(instance, resources, [raw_mllm_json, cleaned_json])
        assert again.success and len(server.bodies) == before
        assert _meta(again, "raw_mllm_json")["episodes_skipped"] == 2


class _BrokenServer:
    """An OpenAI-compatible URL that answers every request with HTTP 500, or with an HTML page as the reply."""

    def __init__(self, kind: str):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                if kind == "http500":
                    body, status = b'{"error": "internal"}', 500
                else:  # a proxy's error page wrapped as the model's answer
                    content = "<html><body><h1>502 Bad Gateway</h1></body></html>"
                    body, status = (
                        json.dumps(
                            {
                                "choices": [
                                    {
                                        "index": 0,
                                        "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": content},
                                    }
                                ]
                            }
                        ).encode(),
                        200,
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()


@pytest.mark.parametrize("kind", ["nothing_listens", "http500", "html"])
def test_a_dead_or_garbage_server_fails_the_blocking_check_and_blocks_the_drama(skyscript_home, kind):
    from skyscript_assets.definitions import DRAMA_ASSETS

    _drama(skyscript_home)
    server = _BrokenServer(kind) if kind != "nothing_listens" else None
    base_url = server.base_url if server else "http://127.0.0.1:9/v1"
    try:
        with dg.instance_for_test() as instance:
            resources = {**local_resources(), "mllm": MllmResource(backend="openai", base_url=base_url, model="m")}
            result = _materialize(instance, resources, DRAMA_ASSETS)
    finally:
        if server:
            server.close()
    assert not result.success
    [frame_check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "frame_loss_rate"]
    assert not frame_check.passed and frame_check.severity == dg.AssetCheckSeverity.ERROR
    assert frame_check.metadata["frames"].value == 3 and frame_check.metadata["lost"].value == 3
    why = frame_check.description
    assert why.startswith("3 of 3 keyframes lost (") and "\n" not in why
    expected = "mllm_request_failed" if kind != "html" else "no_json"  # an HTML page holds no JSON to recover
    assert f"{expected} x3" in why
    # nothing downstream of the failed check ran: no detections, no shooting scripts, no release
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"drama_manifest", "keyframes", "raw_mllm_json", "cleaned_json"}
    losses = Catalog(database_url()).losses(partition="mllm-drama")
    assert len([loss for loss in losses if loss.stage in ("raw_mllm_json", "cleaned_json")]) == 3


def test_keyframes_lost_to_an_outage_are_retried_when_the_server_is_back(skyscript_home):
    _drama(skyscript_home)
    with dg.instance_for_test() as instance:
        down = {
            **local_resources(),
            "mllm": MllmResource(backend="openai", base_url="http://127.0.0.1:9/v1", model="m"),
        }
        first = _materialize(instance, down)
        assert _meta(first, "raw_mllm_json")["keyframes_to_retry"] == 3
        with FakeChatServer() as server:
            back = {**local_resources(), "mllm": MllmResource(backend="openai", base_url=server.base_url, model="m")}
            again = _materialize(instance, back, [raw_mllm_json, cleaned_json])
        assert again.success and _meta(again, "raw_mllm_json")["episodes_processed"] == 2
        assert (
            _meta(again, "raw_mllm_json")["keyframes_lost"] == 0 and _meta(again, "cleaned_json")["frames_kept"] == 3
        )
        assert not Catalog(database_url()).losses(stage="raw_mllm_json")


def test_offline_baseline_annotates_the_demo_way(skyscript_home):
    _drama(skyscript_home, size=(360, 640))  # vertical, as short dramas are: the face is in frame
    with dg.instance_for_test() as instance:
        result = _materialize(instance, local_resources())
        assert result.success
        assert _meta(result, "raw_mllm_json")["model_id"].startswith("baseline-cv")
        with Catalog(database_url()).session() as session:
            frames = {
                f.item: FrameAnnotation.model_validate(f.annotation)
                for f in session.scalars(select(FrameAnnotationRow))
            }
        astronaut = frames["ep1/kf0000"]
        assert astronaut.people and astronaut.people[0].line and "left" in astronaut.people[0].line.lower()
        assert not Catalog(database_url()).losses(stage="cleaned_json")
