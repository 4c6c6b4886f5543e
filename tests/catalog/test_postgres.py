"""Integration tests against the real PostgreSQL server on 127.0.0.1:5432 (never skipped under CI)."""

import shutil
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pytest
from sqlalchemy import inspect, text

from skyscript_assets.catalog import Catalog, Drama, Episode, Loss
from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource, LandingZone

pytestmark = pytest.mark.postgres
DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"


def test_catalog_migrates_and_replaces_partition_rows_on_postgres(postgres_url):
    catalog = Catalog(postgres_url)
    tables = set(inspect(catalog.engine).get_table_names())
    assert {"dramas", "episodes", "losses", "skyscript_alembic_version"} <= tables

    prov = dict(run_id="r1", asset_key="drama_manifest", partition="d1", stage_version="1")

    def rows(n):
        return [Loss(drama_id="d1", stage="s", item=f"f{i}", reason="x", detail="d", **prov) for i in range(n)]

    catalog.replace_partition_rows(asset_key="drama_manifest", partition="d1", rows=rows(3), tables=[Loss])
    catalog.replace_partition_rows(asset_key="drama_manifest", partition="d1", rows=rows(2), tables=[Loss])
    assert catalog.count(Loss, partition="d1") == 2

    # A failure inside the replacement leaves the previous rows untouched (one transaction).
    bad = rows(1) + [Loss(drama_id="d1", stage="s", item="x", reason="r" * 500, detail="", **prov)]
    with pytest.raises(Exception):
        catalog.replace_partition_rows(asset_key="drama_manifest", partition="d1", rows=bad, tables=[Loss])
    assert catalog.count(Loss, partition="d1") == 2
    catalog.dispose()


def test_dagster_instance_on_postgres_materializes_a_drama(postgres_url, tmp_path, monkeypatch, make_video):
    url = urlparse(postgres_url.replace("postgresql+psycopg2", "postgresql"))
    for name, value in {
        "DAGSTER_PG_HOST": url.hostname,
        "DAGSTER_PG_PORT": str(url.port),
        "DAGSTER_PG_USERNAME": url.username,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": url.path.lstrip("/"),
    }.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOYMENTS / "dagster.yaml", home / "dagster.yaml")
    make_video(tmp_path / "landing" / "pg-drama" / "ep1.mp4")
    resources = {
        "catalog": CatalogResource(database_url=postgres_url),
        "landing": LandingZone(url=str(tmp_path / "landing")),
        "artifacts": ArtifactsResource(root_url=str(tmp_path / "artifacts")),
    }

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions("dramas", ["pg-drama"])
        result = dg.materialize([drama_manifest], partition_key="pg-drama", instance=instance, resources=resources)
        assert result.success
        latest = instance.get_latest_materialization_event(dg.AssetKey("drama_manifest"))
        assert latest.run_id == result.run_id and latest.dagster_event.partition == "pg-drama"

    catalog = Catalog(postgres_url)
    assert catalog.count(Drama) == 1 and catalog.count(Episode) == 1
    with catalog.engine.connect() as conn:  # Dagster's event log lives in the same server
        stored = conn.execute(text("select count(*) from event_logs where asset_key like '%drama_manifest%'")).scalar()
    assert stored >= 1
    catalog.dispose()
