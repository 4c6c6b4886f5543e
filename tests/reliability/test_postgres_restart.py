"""A PostgreSQL restart in the middle of a stage's writes is survived: the catalog retries
the whole transaction, nothing is lost and nothing is written twice."""

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from skyscript_assets.catalog import Catalog, Loss

pytestmark = pytest.mark.postgres


def _cluster_version() -> str | None:
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    return versions[-1] if versions and shutil.which("pg_ctlcluster") else None


def test_catalog_writes_survive_a_postgres_restart(postgres_url):
    version = _cluster_version()
    if version is None:
        pytest.skip("pg_ctlcluster is not available to restart the server")
    catalog = Catalog(postgres_url)
    prov = dict(run_id="r", asset_key="keyframes", stage_version="1")
    restarted = threading.Event()

    def restart() -> None:
        time.sleep(0.3)
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "--", "-m", "fast"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        restarted.set()

    thread = threading.Thread(target=restart)
    thread.start()
    written = 0
    deadline = time.monotonic() + 60
    while (not restarted.is_set() or written < 30) and time.monotonic() < deadline:
        partition = f"d{written % 5}"
        rows = [
            Loss(
                drama_id=partition,
                stage="s",
                item=f"i{n}",
                reason="r",
                detail=str(written),
                partition=partition,
                **prov,
            )
            for n in range(50)
        ]
        catalog.replace_partition_rows(asset_key="keyframes", partition=partition, rows=rows, tables=[Loss])
        written += 1
    thread.join()
    assert restarted.is_set() and written >= 30
    for n in range(5):  # each partition holds exactly its last write: no loss, no duplicate
        losses = catalog.losses(partition=f"d{n}")
        assert len(losses) == 50 and len({loss.detail for loss in losses}) == 1
    catalog.dispose()
