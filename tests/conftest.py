"""Shared fixtures: an isolated SKYSCRIPT_HOME, small rendered videos, the shared clips,
and a throw-away database on the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from skyscript_assets.demo.synthetic import ShotSpec, render_video

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
POSTGRES_ADMIN_URL = os.environ.get(
    "SKYSCRIPT_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def skyscript_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "skyscript_home"
    monkeypatch.setenv("SKYSCRIPT_HOME", str(home))
    for name in ("SKYSCRIPT_DATABASE_URL", "SKYSCRIPT_ARTIFACTS_URL", "SKYSCRIPT_LANDING_URL", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


def solid(rgb: tuple[int, int, int], size=(96, 64)) -> np.ndarray:
    """A flat colour with a little texture, so encoders and detectors see real content."""
    rng = np.random.default_rng(sum(rgb))
    image = np.zeros((size[1], size[0], 3), np.uint8) + np.array(rgb, np.uint8)
    noise = rng.integers(0, 40, size=(size[1], size[0], 1), dtype=np.uint8)
    return np.clip(image.astype(int) + noise - 20, 0, 255).astype(np.uint8)


@pytest.fixture
def make_video():
    """Render a tiny video with known shots; returns (path, ground truth)."""

    def _make(path: Path, shots: list[tuple[tuple[int, int, int], float, str]] | None = None, **kwargs):
        specs = [
            ShotSpec(solid(c), seconds, transition_in=t)
            for c, seconds, t in (shots or [((200, 40, 40), 0.5, "start"), ((40, 200, 40), 0.5, "cut")])
        ]
        kwargs.setdefault("size", (96, 64))
        truth = render_video(path, specs, **kwargs)
        return path, truth

    return _make


@pytest.fixture
def shared_videos() -> Path:
    folder = SHARED_DATA / "videos"
    if not folder.is_dir():
        pytest.skip("../shared/data/videos is absent")
    return folder


@pytest.fixture
def postgres_url():
    """A fresh database on 127.0.0.1:5432 for one test, dropped afterwards.

    Under CI=true an unreachable server fails the test instead of skipping it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"skyscript_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required under CI: {exc}")
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 not reachable: {exc}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from skyscript_assets.defs.platform import resources

        for key in [k for k in resources._catalogs if k == url]:
            resources._catalogs.pop(key).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _no_dangling_defs_state_storage():
    """Dagster keeps the entered instance's definitions-state storage in a context variable; a test
    whose instance is gone can leave it behind, and the next Definitions built in this worker then
    fails on the dead instance ("undefined DagsterInstance weakref"). Clear it when it is dangling."""
    yield
    from dagster._core.errors import DagsterInvariantViolationError
    from dagster._core.storage.defs_state.base import DefsStateStorage, _current_storage

    storage = DefsStateStorage.get()
    if storage is not None:
        try:
            storage.get_latest_defs_state_info()
        except DagsterInvariantViolationError:
            _current_storage.set(None)
        except Exception:  # a storage whose database is gone
            _current_storage.set(None)
