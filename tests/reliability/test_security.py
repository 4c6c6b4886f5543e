"""Ids and paths never escape the artifact root; database passwords never reach the output."""

import os
import subprocess
import sys

import pytest

from skyscript_assets.ids import UnsafeIdError
from skyscript_assets.storage import ArtifactStore


@pytest.mark.parametrize("parts", [("..", "x"), ("a/b",), ("/etc",), ("x\x00y",)])
def test_artifact_paths_refuse_segments_that_escape_the_root(tmp_path, parts):
    store = ArtifactStore(str(tmp_path))
    with pytest.raises(ValueError):
        store.path("drama-a", "keyframes", *parts)


@pytest.mark.parametrize("drama_id", ["../etc", "..", "a/../../b"])
def test_artifact_paths_refuse_unsafe_drama_ids(tmp_path, drama_id):
    with pytest.raises(UnsafeIdError):
        ArtifactStore(str(tmp_path)).write_json({}, drama_id, "drama_manifest", "x.json")
    assert not any(tmp_path.parent.glob("etc*"))


@pytest.mark.postgres
def test_database_password_is_never_printed(postgres_url, tmp_path):
    secret = "s3cr3t-Pa55word"
    url = postgres_url.replace("postgres@", f"postgres:{secret}@")  # trust auth ignores the password
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSCRIPT_", "DAGSTER_"))}
    env.update(SKYSCRIPT_HOME=str(tmp_path), SKYSCRIPT_DATABASE_URL=url)
    proc = subprocess.run(
        [sys.executable, "-m", "skyscript_assets.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "upgraded to head" in proc.stdout
    assert secret not in proc.stdout + proc.stderr


def test_a_server_that_echoes_the_api_key_leaks_it_nowhere(skyscript_home, monkeypatch, capfd):
    """A hostile MLLM server answers 401 with the request's headers, Authorization included:
    the key reaches neither the catalog, nor the Dagster event log, nor any artifact, nor the output."""
    import http.server
    import json
    import threading

    import dagster as dg
    import skimage.data

    from skyscript_assets.catalog import Catalog
    from skyscript_assets.definitions import DRAMA_ASSETS
    from skyscript_assets.defs.platform.resources import MllmResource, local_resources
    from skyscript_assets.demo.synthetic import ShotSpec, render_video
    from skyscript_assets.settings import database_url

    key = "sk-planted-Zq8v3LkP0aWm5TnR"

    class EchoHeaders(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps(
                {
                    "error": f"invalid credentials: Authorization: {self.headers.get('Authorization')}",
                    "headers": dict(self.headers),
                }
            ).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHeaders)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    render_video(
        skyscript_home / "landing" / "leaky" / "ep1.mp4", [ShotSpec(skimage.data.astronaut(), 1.0)], size=(160, 96)
    )
    monkeypatch.setenv("LEAKY_KEY", key)
    mllm = MllmResource(
        backend="openai",
        base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
        model="m",
        api_key_env="LEAKY_KEY",
    )
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("dramas", ["leaky"])
            result = dg.materialize(
                DRAMA_ASSETS[:4],
                partition_key="leaky",
                instance=instance,
                resources={**local_resources(), "mllm": mllm},
                raise_on_error=False,
                run_config={"ops": {"keyframes": {"config": {"workers": 1}}}},
            )
            events = json.dumps([str(e) for e in instance.all_logs(result.run_id)])
    finally:
        server.shutdown()
    losses = Catalog(database_url()).losses(partition="leaky")
    assert losses and {loss.reason for loss in losses} >= {"mllm_request_failed"}  # the request did fail
    assert "401" in " ".join(loss.detail for loss in losses)  # and says why
    assert key not in events
    stored = [p for p in skyscript_home.rglob("*") if p.is_file()]  # the SQLite catalog, artifacts, everything
    assert stored and not [p for p in stored if key.encode() in p.read_bytes()]
    out, err = capfd.readouterr()
    assert key not in out + err
