"""dramas, episodes, losses

Revision ID: 0001
Revises:
Create Date: 2026-11-24 18:31:03.743920
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dramas",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=32), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("landing_uri", sa.Text(), nullable=False),
        sa.Column("landing_fingerprint", sa.String(length=32), nullable=False),
        sa.Column("episode_count", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("drama_id"),
    )
    with op.batch_alter_table("dramas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dramas_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_dramas_partition"), ["partition"], unique=False)

    op.create_table(
        "episodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("episode_number", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("container", sa.String(length=64), nullable=False),
        sa.Column("codec", sa.String(length=64), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("frame_count", sa.Integer(), nullable=True),
        sa.Column("avg_fps", sa.Float(), nullable=False),
        sa.Column("is_vfr", sa.Boolean(), nullable=False),
        sa.Column("coded_width", sa.Integer(), nullable=False),
        sa.Column("coded_height", sa.Integer(), nullable=False),
        sa.Column("display_width", sa.Integer(), nullable=False),
        sa.Column("display_height", sa.Integer(), nullable=False),
        sa.Column("rotation", sa.Integer(), nullable=False),
        sa.Column("sample_aspect_ratio", sa.String(length=32), nullable=False),
        sa.Column("has_audio", sa.Boolean(), nullable=False),
        sa.Column("audio_codec", sa.String(length=64), nullable=True),
        sa.Column("audio_sample_rate", sa.Integer(), nullable=True),
        sa.Column("subtitle_streams", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_episodes_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index("ix_episodes_drama_episode", ["drama_id", "episode_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_episodes_partition"), ["partition"], unique=False)

    op.create_table(
        "losses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=True),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("losses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_losses_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_losses_drama_id"), ["drama_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_losses_partition"), ["partition"], unique=False)
        batch_op.create_index(batch_op.f("ix_losses_stage"), ["stage"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("losses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_losses_stage"))
        batch_op.drop_index(batch_op.f("ix_losses_partition"))
        batch_op.drop_index(batch_op.f("ix_losses_drama_id"))
        batch_op.drop_index(batch_op.f("ix_losses_asset_key"))

    op.drop_table("losses")
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_episodes_partition"))
        batch_op.drop_index("ix_episodes_drama_episode")
        batch_op.drop_index(batch_op.f("ix_episodes_asset_key"))

    op.drop_table("episodes")
    with op.batch_alter_table("dramas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dramas_partition"))
        batch_op.drop_index(batch_op.f("ix_dramas_asset_key"))

    op.drop_table("dramas")
