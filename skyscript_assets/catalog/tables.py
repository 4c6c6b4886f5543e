"""The catalog's tables (SQLAlchemy 2, declarative).

Every row carries its provenance (the `ProvenanceColumns` mixin, filled from a
`catalog.provenance.Provenance`): which run, asset, partition,
stage version and model produced it. Later stages add their tables here, each
with the same mixin, and an Alembic migration beside them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ProvenanceColumns:
    """Columns that say who produced a row; `partition` + `asset_key` scope replacement."""

    run_id: Mapped[str] = mapped_column(String(64), default="")
    asset_key: Mapped[str] = mapped_column(String(128), index=True)
    partition: Mapped[str] = mapped_column(String(64), index=True)
    stage_version: Mapped[str] = mapped_column(String(32))
    model_id: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class Drama(ProvenanceColumns, Base):
    __tablename__ = "dramas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    landing_uri: Mapped[str] = mapped_column(Text)
    landing_fingerprint: Mapped[str] = mapped_column(String(32), default="")  # re-scan compares it
    episode_count: Mapped[int] = mapped_column(Integer, default=0)


class Episode(ProvenanceColumns, Base):
    __tablename__ = "episodes"
    __table_args__ = (Index("ix_episodes_drama_episode", "drama_id", "episode_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64))
    episode_id: Mapped[str] = mapped_column(String(200))  # file stem, safe as a path segment
    episode_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based order within the drama
    file_name: Mapped[str] = mapped_column(Text)
    uri: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    container: Mapped[str] = mapped_column(String(64))
    codec: Mapped[str] = mapped_column(String(64))
    duration_s: Mapped[float] = mapped_column(Float)
    frame_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    avg_fps: Mapped[float] = mapped_column(Float)
    is_vfr: Mapped[bool] = mapped_column(Boolean)
    coded_width: Mapped[int] = mapped_column(Integer)
    coded_height: Mapped[int] = mapped_column(Integer)
    display_width: Mapped[int] = mapped_column(Integer)
    display_height: Mapped[int] = mapped_column(Integer)
    rotation: Mapped[int] = mapped_column(Integer)
    sample_aspect_ratio: Mapped[str] = mapped_column(String(32))
    has_audio: Mapped[bool] = mapped_column(Boolean)
    audio_codec: Mapped[str | None] = mapped_column(String(64), nullable=True)
    audio_sample_rate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    subtitle_streams: Mapped[list] = mapped_column(JSON, default=list)


class Loss(ProvenanceColumns, Base):
    """One thing a stage could not use, and why (the reason is one line)."""

    __tablename__ = "losses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64), index=True)
    episode_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # set by per-episode stages
    stage: Mapped[str] = mapped_column(String(64), index=True)
    item: Mapped[str] = mapped_column(Text)  # what was lost: a file name, a keyframe id, ...
    reason: Mapped[str] = mapped_column(String(64))  # short machine-readable kind
    detail: Mapped[str] = mapped_column(Text, default="")  # the one-line human message


class Flag(ProvenanceColumns, Base):
    """A quality signal on data that was kept (a phantom object, a face-count or shot-size
    disagreement): counted beside the losses, never as one."""

    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64), index=True)
    episode_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    stage: Mapped[str] = mapped_column(String(64), index=True)
    item: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")


class EpisodeProgress(ProvenanceColumns, Base):
    """One episode finished by one asset at one stage version, for one input: what lets a
    re-run skip work already done (a crash at episode 73 never redoes the first 72)."""

    __tablename__ = "episode_progress"
    __table_args__ = (Index("ix_progress_lookup", "asset_key", "partition", "episode_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64))
    episode_id: Mapped[str] = mapped_column(String(200))
    input_hash: Mapped[str] = mapped_column(String(64))  # e.g. the episode file's sha256
    summary: Mapped[dict] = mapped_column(JSON, default=dict)  # counts for the asset's metadata


class Shot(ProvenanceColumns, Base):
    __tablename__ = "shots"
    __table_args__ = (Index("ix_shots_episode", "drama_id", "episode_id", "shot_index", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64))
    episode_id: Mapped[str] = mapped_column(String(200))
    shot_index: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    start_frame: Mapped[int] = mapped_column(Integer)
    end_frame: Mapped[int] = mapped_column(Integer)
    transition_in: Mapped[str] = mapped_column(String(16))


class Keyframe(ProvenanceColumns, Base):
    __tablename__ = "keyframes"
    __table_args__ = (Index("ix_keyframes_episode", "drama_id", "episode_id", "keyframe_index", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64))
    episode_id: Mapped[str] = mapped_column(String(200))
    shot_index: Mapped[int] = mapped_column(Integer)
    keyframe_index: Mapped[int] = mapped_column(Integer)
    time_s: Mapped[float] = mapped_column(Float)
    frame: Mapped[int] = mapped_column(Integer)
    valid: Mapped[bool] = mapped_column(Boolean, index=True)
    invalid_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    uri: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sharpness: Mapped[float] = mapped_column(Float)


class RawMllmOutput(ProvenanceColumns, Base):
    """One request to the multimodal LLM: which keyframes it covered and its reply, verbatim."""

    __tablename__ = "raw_mllm_outputs"
    __table_args__ = (Index("ix_raw_mllm_episode", "drama_id", "episode_id", "request_index", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64))
    episode_id: Mapped[str] = mapped_column(String(200))
    request_index: Mapped[int] = mapped_column(Integer)
    items: Mapped[list] = mapped_column(JSON)  # keyframe ids, in image order
    text: Mapped[str] = mapped_column(Text)
    prompt_version: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float)


class FrameAnnotationRow(ProvenanceColumns, Base):
    """A keyframe's cleaned, validated annotation (schema.FrameAnnotation as JSON)."""

    __tablename__ = "frame_annotations"
    __table_args__ = (Index("ix_frame_annotations_item", "drama_id", "item", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64))
    episode_id: Mapped[str] = mapped_column(String(200))
    item: Mapped[str] = mapped_column(String(256))  # the keyframe id
    keyframe_index: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))  # parsed_as_is, fixed_locally, fixed_by_llm
    annotation: Mapped[dict] = mapped_column(JSON)


class ObjectDetection(ProvenanceColumns, Base):
    """An object the MLLM named in a keyframe and what open-vocabulary detection made of it."""

    __tablename__ = "object_detections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64), index=True)
    episode_id: Mapped[str] = mapped_column(String(200))
    item: Mapped[str] = mapped_column(String(256))  # the keyframe id
    name: Mapped[str] = mapped_column(Text)
    box: Mapped[list | None] = mapped_column(JSON, nullable=True)  # x0, y0, x1, y1 pixels
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    phantom: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: detector not run
    status: Mapped[str] = mapped_column(Text)  # "ok" or "not run: ..."


class CharacterObservation(ProvenanceColumns, Base):
    """One person of a keyframe after refinement: face box, DeepFace attributes, adopted
    age and gender, depth, posture, line (JSON), and the released keyframe it belongs to."""

    __tablename__ = "character_observations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64), index=True)
    episode_id: Mapped[str] = mapped_column(String(200))
    item: Mapped[str] = mapped_column(String(256))
    person_index: Mapped[int] = mapped_column(Integer)
    refinement: Mapped[dict] = mapped_column(JSON)


class ReleasedKeyframe(ProvenanceColumns, Base):
    """The pixelated copy of a keyframe, the only one that may leave the building."""

    __tablename__ = "released_keyframes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64), index=True)
    episode_id: Mapped[str] = mapped_column(String(200))
    item: Mapped[str] = mapped_column(String(256))
    uri: Mapped[str] = mapped_column(Text)
    faces_left: Mapped[int] = mapped_column(Integer)  # faces the check still found (must be 0)


class ShootingScriptRow(ProvenanceColumns, Base):
    """One scene of one episode as a shooting script (schema.ShootingScript) and its Table 1 text."""

    __tablename__ = "shooting_scripts"
    __table_args__ = (Index("ix_shooting_scripts_scene", "drama_id", "episode_id", "scene_number", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64))
    episode_id: Mapped[str] = mapped_column(String(200))
    scene_number: Mapped[int] = mapped_column(Integer)
    shots: Mapped[int] = mapped_column(Integer)
    script: Mapped[dict] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text)
    calibration_status: Mapped[str] = mapped_column(String(32))  # pending, passed, needs_repair


class CharacterRow(ProvenanceColumns, Base):
    """The drama's character library: one row per character identity across its episodes."""

    __tablename__ = "characters"
    __table_args__ = (Index("ix_characters_character", "drama_id", "character_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64))
    character_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    named_from: Mapped[str] = mapped_column(String(16))  # caption, dialogue or default
    observations: Mapped[int] = mapped_column(Integer)  # faces clustered into this character
    first_episode_id: Mapped[str] = mapped_column(String(200))
    first_time_s: Mapped[float] = mapped_column(Float)
    face_uri: Mapped[str] = mapped_column(Text)  # a face crop of its first appearance
    embedding_kind: Mapped[str] = mapped_column(String(16))  # deepface or hog


class ReleaseShard(ProvenanceColumns, Base):
    """A Parquet shard an asset wrote (restorations, release pairs): the catalog indexes
    shards, the rows themselves live in the files."""

    __tablename__ = "release_shards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64), index=True)
    uri: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
