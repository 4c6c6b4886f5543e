"""The catalog's tables (SQLAlchemy 2, declarative).

Every row carries its provenance (`Provenance`): which run, asset, partition,
stage version and model produced it. Later stages add their tables here, each
with the same mixin, and an Alembic migration beside them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Provenance:
    """Columns that say who produced a row; `partition` + `asset_key` scope replacement."""

    run_id: Mapped[str] = mapped_column(String(64), default="")
    asset_key: Mapped[str] = mapped_column(String(128), index=True)
    partition: Mapped[str] = mapped_column(String(64), index=True)
    stage_version: Mapped[str] = mapped_column(String(32))
    model_id: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class Drama(Provenance, Base):
    __tablename__ = "dramas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    landing_uri: Mapped[str] = mapped_column(Text)
    landing_fingerprint: Mapped[str] = mapped_column(String(32), default="")  # re-scan compares it
    episode_count: Mapped[int] = mapped_column(Integer, default=0)


class Episode(Provenance, Base):
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


class Loss(Provenance, Base):
    """One thing a stage could not use, and why (the reason is one line)."""

    __tablename__ = "losses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drama_id: Mapped[str] = mapped_column(String(64), index=True)
    stage: Mapped[str] = mapped_column(String(64), index=True)
    item: Mapped[str] = mapped_column(Text)  # what was lost: a file name, a keyframe id, ...
    reason: Mapped[str] = mapped_column(String(64))  # short machine-readable kind
    detail: Mapped[str] = mapped_column(Text, default="")  # the one-line human message
