"""Ids and paths never escape the artifact root; database passwords never reach the output."""

import os
import subprocess
import sys

import pytest

from skyscript_assets.storage import ArtifactStore
from skyscript_assets.ids import UnsafeIdError


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
    proc = subprocess.run([sys.executable, "-m", "skyscript_assets.cli", "db", "upgrade"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "upgraded to head" in proc.stdout
    assert secret not in proc.stdout + proc.stderr
