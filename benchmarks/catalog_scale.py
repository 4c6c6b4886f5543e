"""Catalog at the paper's scale: 10 M keyframe rows in Postgres.

Loads generated keyframe rows into a throw-away Postgres database migrated to the catalog's
schema (every index the migrations create is in place while loading, as in production),
with COPY in chunks, and compares the rate with the ORM's batched INSERT on a sample. Then it
runs the queries the assets run per drama (keyframes summary, valid keyframes of a drama for
the MLLM, the partition replacement delete) with EXPLAIN ANALYZE, and prints the plans' index
use and timings.

    python benchmarks/catalog_scale.py                    # 10 M rows on 127.0.0.1:5432
    python benchmarks/catalog_scale.py --rows 1000000     # a quicker look

Needs the keyframes table of the catalog (migration 0002, the keyframes stage).

Shape of the generated data: dramas of 50 episodes with 25 keyframes each (1,250 rows per
drama: 8,000 dramas for 10 M rows), ~8 % invalid keyframes, as the keyframes stage writes them.
"""

import argparse
import io
import os
import random
import time
import uuid
from datetime import UTC, datetime

import psycopg2
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from skyscript_assets.catalog import Catalog, Keyframe

ADMIN_URL = os.environ.get("SKYSCRIPT_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
EPISODES_PER_DRAMA, KEYFRAMES_PER_EPISODE = 50, 25
ROWS_PER_DRAMA = EPISODES_PER_DRAMA * KEYFRAMES_PER_EPISODE
INVALID_REASONS = ["black", "blurred", "occluded", "near_duplicate"]
COLUMNS = [c.name for c in Keyframe.__table__.columns if c.name != "id"]


def keyframe_rows(first_drama: int, dramas: int, seed: int):
    """Rows as the keyframes asset writes them, in COPY's text format, one drama at a time."""
    rng = random.Random(seed)
    created = datetime.now(UTC).isoformat()
    for d in range(first_drama, first_drama + dramas):
        drama_id = f"drama-{d:06d}"
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        for e in range(EPISODES_PER_DRAMA):
            episode_id = f"ep{e + 1:03d}"
            for k in range(KEYFRAMES_PER_EPISODE):
                invalid = rng.random() < 0.08
                values = {
                    "run_id": run_id,
                    "asset_key": "keyframes",
                    "partition": drama_id,
                    "stage_version": "1",
                    "model_id": "",
                    "created_at": created,
                    "drama_id": drama_id,
                    "episode_id": episode_id,
                    "shot_index": k,
                    "keyframe_index": k,
                    "time_s": f"{k * 2.4:.3f}",
                    "frame": k * 60,
                    "valid": "f" if invalid else "t",
                    "invalid_reason": rng.choice(INVALID_REASONS) if invalid else "\\N",
                    "uri": f"s3://skyscript-artifacts/v1/{drama_id}/keyframes/{episode_id}/{k:05d}.jpg",
                    "width": 720,
                    "height": 1280,
                    "sharpness": f"{rng.uniform(20, 900):.2f}",
                }
                yield "\t".join(str(values[c]) for c in COLUMNS) + "\n"


class RowStream(io.RawIOBase):
    """A file-like view of a row generator, so COPY streams without building the whole text."""

    def __init__(self, rows):
        self._rows, self._buffer = rows, b""

    def readable(self):
        return True

    def readinto(self, target):
        while len(self._buffer) < len(target):
            chunk = "".join(row for _, row in zip(range(5000), self._rows))
            if not chunk:
                break
            self._buffer += chunk.encode()
        n = min(len(target), len(self._buffer))
        target[:n], self._buffer = self._buffer[:n], self._buffer[n:]
        return n


def copy_rows(engine, first_drama: int, dramas: int, attempts: int = 5) -> None:
    """One COPY per chunk, one transaction: a dropped connection (a server restart) loses
    nothing committed, so the chunk is simply sent again."""
    for attempt in range(1, attempts + 1):
        try:
            raw = engine.raw_connection()
            try:
                with raw.cursor() as cursor:
                    cursor.copy_expert(
                        f"COPY keyframes ({', '.join(COLUMNS)}) FROM STDIN",
                        io.BufferedReader(RowStream(keyframe_rows(first_drama, dramas, seed=first_drama))),
                    )
                raw.commit()
                return
            finally:
                raw.close()
        except (OperationalError, psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            if attempt == attempts:
                raise
            print(f"  connection lost ({str(exc).splitlines()[0]}); chunk at drama {first_drama} again")
            engine.dispose()
            time.sleep(3)


def orm_insert_rate(catalog: Catalog, rows: int) -> float:
    """Baseline: the ORM's batched INSERT (SQLAlchemy 2 insertmanyvalues) on a sample."""
    dramas = max(1, rows // ROWS_PER_DRAMA)
    objects = []
    for line in keyframe_rows(10_000_000, dramas, seed=1):
        values = dict(zip(COLUMNS, line.rstrip("\n").split("\t")))
        objects.append(
            Keyframe(
                **{
                    **values,
                    "created_at": datetime.fromisoformat(values["created_at"]),
                    "valid": values["valid"] == "t",
                    "invalid_reason": None if values["invalid_reason"] == "\\N" else values["invalid_reason"],
                }
            )
        )
    started = time.perf_counter()
    with catalog.session() as session:
        session.add_all(objects)
    return len(objects) / (time.perf_counter() - started)


QUERIES = {
    # defs/video.py: the keyframes summary of one drama
    "keyframes summary of a drama": (
        "SELECT episode_id, valid, invalid_reason FROM keyframes WHERE partition = :drama AND asset_key = 'keyframes'"
    ),
    # defs/annotation.py: valid keyframes of a drama, in order, for the MLLM
    "valid keyframes of a drama (MLLM input)": (
        "SELECT * FROM keyframes WHERE drama_id = :drama AND valid IS true ORDER BY episode_id, keyframe_index"
    ),
    # catalog.replace_partition_rows: re-materializing a drama replaces its rows
    "replace a drama's rows (delete)": "DELETE FROM keyframes WHERE asset_key = 'keyframes' AND partition = :drama",
    "count a drama's rows": "SELECT count(*) FROM keyframes WHERE partition = :drama",
}


def explain(engine, sql: str, drama: str) -> tuple[float, str]:
    with engine.connect() as conn:
        transaction = conn.begin()
        plan = conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"), {"drama": drama}).scalar()[0]
        transaction.rollback()  # the DELETE is measured, not kept
    nodes, stack = [], [plan["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node["Node Type"] + (f" {node['Index Name']}" if "Index Name" in node else ""))
        stack.extend(node.get("Plans", []))
    return plan["Execution Time"], "; ".join(nodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--chunk-dramas", type=int, default=800, help="dramas per COPY (1 M rows at the default shape)"
    )
    parser.add_argument("--orm-sample", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"skyscript_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        catalog = Catalog(url)  # migrated: the keyframes table with every index of the schema
        engine = catalog.engine
        dramas = args.rows // ROWS_PER_DRAMA
        print(f"loading {dramas * ROWS_PER_DRAMA:,} keyframe rows ({dramas:,} dramas) into {name} with COPY")
        started = time.perf_counter()
        for first in range(0, dramas, args.chunk_dramas):
            count = min(args.chunk_dramas, dramas - first)
            chunk_started = time.perf_counter()
            copy_rows(engine, first, count)
            elapsed = time.perf_counter() - started
            print(
                f"  {(first + count) * ROWS_PER_DRAMA:>12,} rows  "
                f"{count * ROWS_PER_DRAMA / (time.perf_counter() - chunk_started):>9,.0f} rows/s "
                f"this chunk  {elapsed:7.1f} s total"
            )
        load_s = time.perf_counter() - started
        copy_rate = dramas * ROWS_PER_DRAMA / load_s
        with engine.connect() as conn:
            conn.execute(text("ANALYZE keyframes"))
            conn.commit()
            size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('keyframes'))")).scalar()
        orm_rate = orm_insert_rate(catalog, args.orm_sample)

        print("\n| ingest | rows/s | ratio |\n|---|---|---|")
        print(
            f"| COPY (chunks of {args.chunk_dramas * ROWS_PER_DRAMA:,} rows, indexes in place) "
            f"| {copy_rate:,.0f} | {copy_rate / orm_rate:.1f}x |"
        )
        print(f"| ORM batched INSERT ({args.orm_sample:,} rows) | {orm_rate:,.0f} | 1.0x |")
        print(f"\n{dramas * ROWS_PER_DRAMA:,} rows in {load_s:.0f} s; keyframes table with indexes: {size}\n")
        print("| query (one drama of 1,250 rows) | ms | plan |\n|---|---|---|")
        probe = f"drama-{dramas // 2:06d}"
        for label, sql in QUERIES.items():
            ms, plan = explain(engine, sql, probe)
            print(f"| {label} | {ms:.2f} | {plan} |")
        catalog.dispose()
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
