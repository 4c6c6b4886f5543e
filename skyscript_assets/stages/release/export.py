"""`skyscript export`: a released drama written out as Parquet, JSON Lines or Fountain files.

The export never mixes with what was in the destination and never follows a link planted
there: it is written into a fresh temporary folder beside `out` (created here, empty, private)
and renamed into place. A non-empty `out` is refused unless `overwrite`; then the old folder
(or the link standing at `out`, never its target) is moved aside and removed only after the
new one is in place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from skyscript_assets.catalog import Catalog, queries
from skyscript_assets.ids import UnsafeIdError, validate_drama_id
from skyscript_assets.stages.release.shards import export_fountain, export_jsonl, export_parquet, pair_shards
from skyscript_assets.storage import ArtifactStore

EXPORT_FORMATS = ("parquet", "jsonl", "fountain")
RELEASE_ASSET = "script_pairs"


class ExportError(Exception):
    """Why an export cannot be made, in one line the user can act on."""


@dataclass(frozen=True)
class Exported:
    count: int
    what: str  # "files", "pairs" or "screenplays"
    out: Path


def export_release(
    catalog: Catalog,
    artifacts: ArtifactStore,
    drama_id: str,
    fmt: str,
    out: Path,
    *,
    overwrite: bool = False,
    catalog_label: str = "the catalog",
) -> Exported:
    """Write the released drama `drama_id` as `fmt` into the folder `out` (see the module's doc)."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})")
    try:
        validate_drama_id(drama_id)
    except UnsafeIdError as exc:
        raise ExportError(str(exc)) from None
    out = Path(os.path.abspath(Path(out).expanduser()))  # absolute, links in it left as they are
    existing = _check_destination(out, overwrite)

    if queries.drama(catalog, drama_id) is None:
        raise ExportError(f"unknown drama {drama_id!r}: not in {catalog_label}")
    shards = pair_shards(queries.shard_uris(catalog, drama_id, RELEASE_ASSET))
    if not shards:
        raise ExportError(
            f"drama {drama_id!r} is not released: {RELEASE_ASSET} has written no pairs "
            f"(a drama is released once its calibration passes; materialize {RELEASE_ASSET})"
        )

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name[:100]}.export-"))
    except OSError as exc:
        raise ExportError(f"cannot write beside --out {out}: {_why(exc)}") from None
    try:
        if fmt == "parquet":
            count, what = export_parquet(artifacts.fs, artifacts.path(drama_id, RELEASE_ASSET), staging), "files"
        elif fmt == "jsonl":
            count, what = export_jsonl(artifacts.fs, shards, staging / "pairs.jsonl"), "pairs"
        else:
            count, what = export_fountain(artifacts.fs, shards, staging), "screenplays"
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the export is an ordinary folder
        _move_into_place(staging, out, existing)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ExportError(f"cannot write the export to {out}: {_why(exc)}") from None
        raise
    return Exported(count, what, out)


def _check_destination(out: Path, overwrite: bool) -> str | None:
    """What stands at `out` now: None, "empty", "folder" or "link"; refuses what may not be replaced."""
    if os.path.islink(out):
        if not overwrite:
            raise ExportError(
                f"--out {out} is a symlink; give a real folder (or --overwrite to replace the link, never its target)"
            )
        return "link"
    if not os.path.lexists(out):
        return None
    if not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder")
    try:
        with os.scandir(out) as entries:
            count = sum(1 for _ in entries)
    except OSError as exc:
        raise ExportError(f"cannot read --out {out}: {_why(exc)}") from None
    if count == 0:
        return "empty"
    if not overwrite:
        raise ExportError(f"--out {out} is not empty ({count} entries); pass --overwrite to replace it")
    return "folder"


def _move_into_place(staging: Path, out: Path, existing: str | None) -> None:
    if existing is None or existing == "empty":
        os.rename(staging, out)  # onto nothing, or onto an empty folder (which rename replaces)
        return
    if existing == "link":
        os.unlink(out)  # the link itself; what it points at is never touched
        os.rename(staging, out)
        return
    aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name[:100]}.old-"))
    os.rename(out, aside / "old")
    try:
        os.rename(staging, out)
    except OSError:
        os.rename(aside / "old", out)  # put the old export back
        os.rmdir(aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)  # rmtree removes links, never what they point at


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
