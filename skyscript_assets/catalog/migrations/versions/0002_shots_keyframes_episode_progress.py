"""shots, keyframes, episode progress

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 19:02:11.492575
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "episode_progress",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("input_hash", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("episode_progress", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_episode_progress_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_episode_progress_partition"), ["partition"], unique=False)
        batch_op.create_index("ix_progress_lookup", ["asset_key", "partition", "episode_id"], unique=True)

    op.create_table(
        "keyframes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("shot_index", sa.Integer(), nullable=False),
        sa.Column("keyframe_index", sa.Integer(), nullable=False),
        sa.Column("time_s", sa.Float(), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("invalid_reason", sa.String(length=32), nullable=True),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sharpness", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("keyframes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_keyframes_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index("ix_keyframes_episode", ["drama_id", "episode_id", "keyframe_index"], unique=True)
        batch_op.create_index(batch_op.f("ix_keyframes_partition"), ["partition"], unique=False)
        batch_op.create_index(batch_op.f("ix_keyframes_valid"), ["valid"], unique=False)

    op.create_table(
        "shots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("shot_index", sa.Integer(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("start_frame", sa.Integer(), nullable=False),
        sa.Column("end_frame", sa.Integer(), nullable=False),
        sa.Column("transition_in", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shots_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index("ix_shots_episode", ["drama_id", "episode_id", "shot_index"], unique=True)
        batch_op.create_index(batch_op.f("ix_shots_partition"), ["partition"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("shots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shots_partition"))
        batch_op.drop_index("ix_shots_episode")
        batch_op.drop_index(batch_op.f("ix_shots_asset_key"))

    op.drop_table("shots")
    with op.batch_alter_table("keyframes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_keyframes_valid"))
        batch_op.drop_index(batch_op.f("ix_keyframes_partition"))
        batch_op.drop_index("ix_keyframes_episode")
        batch_op.drop_index(batch_op.f("ix_keyframes_asset_key"))

    op.drop_table("keyframes")
    with op.batch_alter_table("episode_progress", schema=None) as batch_op:
        batch_op.drop_index("ix_progress_lookup")
        batch_op.drop_index(batch_op.f("ix_episode_progress_partition"))
        batch_op.drop_index(batch_op.f("ix_episode_progress_asset_key"))

    op.drop_table("episode_progress")
