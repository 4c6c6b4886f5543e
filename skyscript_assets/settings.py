"""Where the pipeline keeps its state, resolved from the environment at call time.

Nothing here is read at import time, so tests and the CLI can point SKYSCRIPT_HOME
somewhere else before anything runs.

    SKYSCRIPT_HOME           root of the embedded defaults (default ~/.skyscript)
    SKYSCRIPT_DATABASE_URL   catalog URL (default sqlite:///$SKYSCRIPT_HOME/catalog.db)
    SKYSCRIPT_ARTIFACTS_URL  fsspec URL root of artifacts (default $SKYSCRIPT_HOME/artifacts)
    SKYSCRIPT_LANDING_URL    fsspec URL of the landing zone (default $SKYSCRIPT_HOME/landing)
    DAGSTER_HOME             Dagster instance (default $SKYSCRIPT_HOME/dagster)
"""

from __future__ import annotations

import os
from pathlib import Path


def skyscript_home() -> Path:
    return Path(os.environ.get("SKYSCRIPT_HOME") or Path.home() / ".skyscript").expanduser()


def database_url() -> str:
    return os.environ.get("SKYSCRIPT_DATABASE_URL") or f"sqlite:///{skyscript_home() / 'catalog.db'}"


def artifacts_url() -> str:
    return os.environ.get("SKYSCRIPT_ARTIFACTS_URL") or str(skyscript_home() / "artifacts")


def landing_url() -> str:
    return os.environ.get("SKYSCRIPT_LANDING_URL") or str(skyscript_home() / "landing")


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or skyscript_home() / "dagster").expanduser()


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at the shared instance and create it, so the CLI, `dagster dev`
    and `dagster asset materialize` all see the same runs and partitions."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():  # SQLite storage in this folder, no telemetry; the daemon of `skyscript ui`
        # marks runs whose process died as failed (the CLI does it too for the runs it starts)
        config.write_text(
            "telemetry:\n  enabled: false\nrun_monitoring:\n  enabled: true\n"
            "  start_timeout_seconds: 180\n  poll_interval_seconds: 60\n"
        )
    os.environ["DAGSTER_HOME"] = str(home)
    return home
