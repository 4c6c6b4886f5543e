"""The catalog's read API: every question the assets, checks, reports and the CLI ask of it.

Each function reads in one transaction through `Catalog.read` (retried after a dropped
connection, like a write) and returns rows or plain values; nothing here writes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select

from skyscript_assets.catalog.store import Catalog
from skyscript_assets.catalog.tables import (
    Base,
    CharacterObservation,
    Drama,
    Episode,
    EpisodeProgress,
    Flag,
    FrameAnnotationRow,
    Keyframe,
    Loss,
    ObjectDetection,
    RawMllmOutput,
    ReleasedKeyframe,
    ReleaseShard,
    ShootingScriptRow,
    Shot,
)

# --- dramas and episodes ---------------------------------------------------------------------


def drama_ids(db: Catalog) -> list[str]:
    return db.read(lambda session: list(session.scalars(select(Drama.drama_id).order_by(Drama.drama_id))))


def drama(db: Catalog, drama_id: str) -> Drama | None:
    return db.read(lambda session: session.scalar(select(Drama).where(Drama.drama_id == drama_id)))


def landing_fingerprints(db: Catalog) -> dict[str, str]:
    """Each known drama's landing-folder fingerprint when its manifest was last built."""
    return db.read(lambda session: dict(session.execute(select(Drama.drama_id, Drama.landing_fingerprint)).all()))


def drama_language(db: Catalog, drama_id: str) -> str | None:
    return db.read(lambda session: session.scalar(select(Drama.language).where(Drama.drama_id == drama_id)))


def episodes(db: Catalog, drama_id: str) -> list[Episode]:
    """The drama's episodes in their order."""
    return db.read(
        lambda session: list(
            session.scalars(select(Episode).where(Episode.drama_id == drama_id).order_by(Episode.position))
        )
    )


# --- shots and keyframes ---------------------------------------------------------------------


def shots(db: Catalog, drama_id: str) -> list[Shot]:
    return db.read(
        lambda session: list(
            session.scalars(select(Shot).where(Shot.drama_id == drama_id).order_by(Shot.episode_id, Shot.shot_index))
        )
    )


def keyframes(db: Catalog, drama_id: str) -> list[Keyframe]:
    """Every keyframe of the drama, valid or not."""
    return db.read(
        lambda session: list(
            session.scalars(
                select(Keyframe)
                .where(Keyframe.drama_id == drama_id)
                .order_by(Keyframe.episode_id, Keyframe.keyframe_index)
            )
        )
    )


def valid_keyframes(db: Catalog, drama_id: str) -> dict[str, list[Keyframe]]:
    """Valid keyframes per episode, in episode then keyframe order (every episode listed)."""
    order = [e.episode_id for e in episodes(db, drama_id)]
    frames = db.read(
        lambda session: list(
            session.scalars(
                select(Keyframe)
                .where(Keyframe.drama_id == drama_id, Keyframe.valid.is_(True))
                .order_by(Keyframe.episode_id, Keyframe.keyframe_index)
            )
        )
    )
    by_episode: dict[str, list[Keyframe]] = {e: [] for e in order}
    for frame in frames:
        by_episode.setdefault(frame.episode_id, []).append(frame)
    return by_episode


# --- annotations -----------------------------------------------------------------------------


def raw_outputs(db: Catalog, drama_id: str) -> dict[str, list[RawMllmOutput]]:
    """The MLLM's raw replies per episode, in request order."""
    rows = db.read(
        lambda session: list(
            session.scalars(
                select(RawMllmOutput)
                .where(RawMllmOutput.partition == drama_id)
                .order_by(RawMllmOutput.episode_id, RawMllmOutput.request_index)
            )
        )
    )
    by_episode: dict[str, list[RawMllmOutput]] = {}
    for row in rows:
        by_episode.setdefault(row.episode_id, []).append(row)
    return by_episode


def annotations(db: Catalog, drama_id: str) -> list[FrameAnnotationRow]:
    return db.read(
        lambda session: list(
            session.scalars(
                select(FrameAnnotationRow)
                .where(FrameAnnotationRow.drama_id == drama_id)
                .order_by(FrameAnnotationRow.episode_id, FrameAnnotationRow.keyframe_index)
            )
        )
    )


def annotated_frames(db: Catalog, drama_id: str) -> dict[str, list[tuple[FrameAnnotationRow, Keyframe]]]:
    """Cleaned annotations with their keyframes, per episode, in keyframe order."""
    rows = db.read(
        lambda session: session.execute(
            select(FrameAnnotationRow, Keyframe)
            .join(
                Keyframe,
                (Keyframe.drama_id == FrameAnnotationRow.drama_id)
                & (Keyframe.episode_id == FrameAnnotationRow.episode_id)
                & (Keyframe.keyframe_index == FrameAnnotationRow.keyframe_index),
            )
            .where(FrameAnnotationRow.drama_id == drama_id)
            .order_by(FrameAnnotationRow.episode_id, FrameAnnotationRow.keyframe_index)
        ).all()
    )
    grouped: dict[str, list[tuple[FrameAnnotationRow, Keyframe]]] = {}
    for annotation, keyframe in rows:
        grouped.setdefault(annotation.episode_id, []).append((annotation, keyframe))
    return grouped


def annotation_outcomes(db: Catalog, drama_id: str) -> Counter:
    """How each kept annotation was recovered (parsed as is, fixed locally, fixed by the LLM)."""
    return db.read(
        lambda session: Counter(
            session.scalars(select(FrameAnnotationRow.outcome).where(FrameAnnotationRow.partition == drama_id))
        )
    )


# --- refinements -----------------------------------------------------------------------------


def people_by_item(db: Catalog, drama_id: str) -> dict[str, list[dict]]:
    """Each keyframe's refined people (CharacterObservation.refinement), in person order."""
    people: dict[str, list[dict]] = defaultdict(list)
    for row in db.read(
        lambda session: list(
            session.scalars(
                select(CharacterObservation)
                .where(CharacterObservation.drama_id == drama_id)
                .order_by(CharacterObservation.person_index)
            )
        )
    ):
        people[row.item].append(row.refinement)
    return dict(people)


def objects_by_item(db: Catalog, drama_id: str) -> dict[str, list[dict]]:
    """Each keyframe's grounded objects: name, box (or None), phantom (None: not checked)."""
    objects: dict[str, list[dict]] = defaultdict(list)
    for row in db.read(
        lambda session: list(session.scalars(select(ObjectDetection).where(ObjectDetection.drama_id == drama_id)))
    ):
        objects[row.item].append({"name": row.name, "box": row.box, "phantom": row.phantom})
    return dict(objects)


def released_keyframes(db: Catalog, drama_id: str, *, faces_left: bool = False) -> dict[str, list[str]]:
    """URIs of the pixelated keyframes per episode; those with a face left only when asked."""
    released: dict[str, list[str]] = defaultdict(list)
    stmt = select(ReleasedKeyframe).where(ReleasedKeyframe.drama_id == drama_id)
    if not faces_left:
        stmt = stmt.where(ReleasedKeyframe.faces_left == 0)
    for row in db.read(lambda session: list(session.scalars(stmt))):
        released[row.episode_id].append(row.uri)
    return dict(released)


# --- scripts and release ---------------------------------------------------------------------


def shooting_scripts(db: Catalog, drama_id: str) -> list[ShootingScriptRow]:
    return db.read(
        lambda session: list(
            session.scalars(
                select(ShootingScriptRow)
                .where(ShootingScriptRow.drama_id == drama_id)
                .order_by(ShootingScriptRow.episode_id, ShootingScriptRow.scene_number)
            )
        )
    )


def shard_uris(db: Catalog, drama_id: str, asset_key: str) -> list[str]:
    return db.read(
        lambda session: list(
            session.scalars(
                select(ReleaseShard.uri)
                .where(ReleaseShard.partition == drama_id, ReleaseShard.asset_key == asset_key)
                .order_by(ReleaseShard.id)
            )
        )
    )


def release_shards(db: Catalog, drama_id: str, *, asset_key: str | None = None) -> list[ReleaseShard]:
    """The drama's release files (restoration shards, pair shards, relationship tables), in write order."""
    stmt = select(ReleaseShard).where(ReleaseShard.partition == drama_id).order_by(ReleaseShard.id)
    if asset_key is not None:
        stmt = stmt.where(ReleaseShard.asset_key == asset_key)
    return db.read(lambda session: list(session.scalars(stmt)))


def release_shards_by_drama(db: Catalog, asset_key: str) -> dict[str, list[ReleaseShard]]:
    """Every drama's files of one release asset, in write order, in one query (the dataset release)."""
    stmt = select(ReleaseShard).where(ReleaseShard.asset_key == asset_key).order_by(ReleaseShard.id)
    grouped: dict[str, list[ReleaseShard]] = defaultdict(list)
    for row in db.read(lambda session: list(session.scalars(stmt))):
        grouped[row.partition].append(row)
    return dict(grouped)


def calibration_statuses(db: Catalog) -> dict[str, set[str]]:
    """Each drama's calibration statuses over its shooting scripts; a drama without any is absent."""
    stmt = select(ShootingScriptRow.drama_id, ShootingScriptRow.calibration_status).distinct()
    statuses: dict[str, set[str]] = defaultdict(set)
    for drama_id, status in db.read(lambda session: session.execute(stmt).all()):
        statuses[drama_id].add(status)
    return dict(statuses)


# --- progress, losses, flags -----------------------------------------------------------------


def step_summaries(db: Catalog, drama_id: str, asset_key: str) -> dict[str, dict]:
    """The summary each finished episode of a per-episode asset recorded, by episode id."""
    return db.read(
        lambda session: {
            p.episode_id: p.summary or {}
            for p in session.scalars(
                select(EpisodeProgress).where(
                    EpisodeProgress.partition == drama_id, EpisodeProgress.asset_key == asset_key
                )
            )
        }
    )


def step_summaries_by_asset(db: Catalog, drama_id: str, asset_keys: Sequence[str]) -> dict[str, list[dict]]:
    """The episodes' summaries of several per-episode assets at once (every key listed, [] when none)."""
    grouped: dict[str, list[dict]] = {key: [] for key in asset_keys}
    for progress in db.read(
        lambda session: list(
            session.scalars(
                select(EpisodeProgress)
                .where(EpisodeProgress.partition == drama_id, EpisodeProgress.asset_key.in_(list(asset_keys)))
                .order_by(EpisodeProgress.asset_key, EpisodeProgress.episode_id)
            )
        )
    ):
        grouped[progress.asset_key].append(progress.summary or {})
    return grouped


def losses(
    db: Catalog, drama_id: str | None = None, *, asset_key: str | None = None, stage: str | None = None
) -> list[Loss]:
    return _records(db, Loss, drama_id, asset_key, stage)


def flags(
    db: Catalog, drama_id: str | None = None, *, asset_key: str | None = None, stage: str | None = None
) -> list[Flag]:
    return _records(db, Flag, drama_id, asset_key, stage)


def _records(db: Catalog, table: type[Loss] | type[Flag], drama_id, asset_key, stage) -> list:
    stmt = select(table).order_by(table.id)
    if drama_id is not None:
        stmt = stmt.where(table.partition == drama_id)
    if asset_key is not None:
        stmt = stmt.where(table.asset_key == asset_key)
    if stage is not None:
        stmt = stmt.where(table.stage == stage)
    return db.read(lambda session: list(session.scalars(stmt)))


def count_by_stage(db: Catalog, table: type[Loss] | type[Flag], drama_id: str) -> Counter:
    return db.read(
        lambda session: Counter(
            dict(
                session.execute(
                    select(table.stage, func.count()).where(table.drama_id == drama_id).group_by(table.stage)
                ).all()
            )
        )
    )


def count_by_reason(db: Catalog, table: type[Loss] | type[Flag]) -> Counter:
    """(stage, reason) -> rows, over all dramas."""
    return db.read(
        lambda session: Counter(
            {
                (stage, reason): count
                for stage, reason, count in session.execute(
                    select(table.stage, table.reason, func.count()).group_by(table.stage, table.reason)
                ).all()
            }
        )
    )


def loss_counts(db: Catalog, drama_id: str, step_assets: Sequence[str]) -> dict:
    """What the loss report needs of one drama (the fields of stages.release.loss_report.DramaCounts):
    losses and flags by stage, episodes, keyframes (all, invalid), shooting scripts, rows of the
    restoration shards and relationship edges with the edges' labelling model, and the episode
    summaries of the per-episode assets."""
    shards = release_shards(db, drama_id)
    edges = [s for s in shards if s.uri.endswith("/relationship_edges.parquet")]
    return {
        "drama_id": drama_id,
        "losses": count_by_stage(db, Loss, drama_id),
        "flags": count_by_stage(db, Flag, drama_id),
        "episodes": count_rows(db, Episode, drama_id),
        "keyframes": count_rows(db, Keyframe, drama_id),
        "invalid_keyframes": count_rows(db, Keyframe, drama_id, valid=False),
        "shooting_scripts": count_rows(db, ShootingScriptRow, drama_id),
        "restorations": sum(s.rows for s in shards if s.asset_key == "restored_scripts"),
        "relationship_edges": sum(s.rows for s in edges),
        "relationship_labeller": edges[0].model_id if edges else "",
        "step_summaries": step_summaries_by_asset(db, drama_id, step_assets),
    }


def count_rows(db: Catalog, table: type[Base], drama_id: str, **equal) -> int:
    """Rows of `table` for the drama (its partition), optionally where columns equal values."""
    stmt = select(func.count()).select_from(table).where(table.partition == drama_id)
    for column, value in equal.items():
        stmt = stmt.where(getattr(table, column) == value)
    return db.read(lambda session: int(session.scalar(stmt) or 0))


def shard_rows(db: Catalog, drama_id: str, *, asset_key: str | None = None, uri_suffix: str | None = None) -> int:
    """Rows written to the drama's release shards (of one asset, or one file name)."""
    stmt = select(func.sum(ReleaseShard.rows)).where(ReleaseShard.partition == drama_id)
    if asset_key is not None:
        stmt = stmt.where(ReleaseShard.asset_key == asset_key)
    if uri_suffix is not None:
        stmt = stmt.where(ReleaseShard.uri.like(f"%{uri_suffix}"))
    return db.read(lambda session: int(session.scalar(stmt) or 0))
