"""The catalog scale benchmark, small: COPY beats the row-by-row ORM by a wide margin and
the catalog's queries use their indexes (the 10 M-row figures are in docs/scale.md)."""

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres


def test_bulk_copy_load_and_indexed_queries(postgres_url):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "catalog_scale.py"
    spec = importlib.util.spec_from_file_location("catalog_scale", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    result = bench.run(rows=60_000, orm_rows=600, chunk=25_000, admin_url=admin)
    assert result["rows"] == 60_000 and result["copy_vs_orm"] > 5
    assert all(q["index"] for q in result["queries"].values()), result["queries"]
