"""What a run leaves behind, in a form two runs can be compared by: catalog rows without their
run-specific columns, and the sha256 of every artifact."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import create_engine, select

from skyscript_assets.catalog import Base

# Columns that legitimately differ between two runs of the same inputs (the counts inside
# episode_progress.summary are checked through the shots and keyframes tables themselves).
RUN_SPECIFIC = {"id", "run_id", "created_at", "summary", "seconds"}  # timings differ run to run


def catalog_snapshot(home: Path, *, ignore: frozenset[str] = frozenset()) -> dict[str, list[tuple]]:
    """Every catalog row as text, with `home` written as `<home>` so two homes compare equal."""
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    snapshot = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in RUN_SPECIFIC | ignore]
            rows = conn.execute(select(*columns)).all()
            snapshot[table.name] = sorted(tuple(str(v).replace(str(home), "<home>") for v in row) for row in rows)
    engine.dispose()
    return snapshot


# The dataset's manifest and card record when each version was written and from which runs'
# shards (its release history): they differ between two runs by design. Its data files do not.
RUN_SPECIFIC_ARTIFACTS = frozenset({"_datasets/skyscript/manifest.json", "_datasets/skyscript/README.md"})


def artifact_snapshot(home: Path) -> dict[str, str]:
    """sha256 of every artifact, with `home` in its bytes written as `<home>` (manifests hold paths)."""
    root = home / "artifacts"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes().replace(str(home).encode(), b"<home>")).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".tmp") and str(p.relative_to(root)) not in RUN_SPECIFIC_ARTIFACTS
    }
