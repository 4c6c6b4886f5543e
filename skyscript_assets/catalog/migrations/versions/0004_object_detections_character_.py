"""object detections, character observations, released keyframes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 19:30:35.828715
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "character_observations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("item", sa.String(length=256), nullable=False),
        sa.Column("person_index", sa.Integer(), nullable=False),
        sa.Column("refinement", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("character_observations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_character_observations_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_character_observations_drama_id"), ["drama_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_character_observations_partition"), ["partition"], unique=False)

    op.create_table(
        "object_detections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("item", sa.String(length=256), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("box", sa.JSON(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("phantom", sa.Boolean(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("object_detections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_object_detections_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_object_detections_drama_id"), ["drama_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_object_detections_partition"), ["partition"], unique=False)

    op.create_table(
        "released_keyframes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("item", sa.String(length=256), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("faces_left", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("released_keyframes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_released_keyframes_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_released_keyframes_drama_id"), ["drama_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_released_keyframes_partition"), ["partition"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("released_keyframes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_released_keyframes_partition"))
        batch_op.drop_index(batch_op.f("ix_released_keyframes_drama_id"))
        batch_op.drop_index(batch_op.f("ix_released_keyframes_asset_key"))

    op.drop_table("released_keyframes")
    with op.batch_alter_table("object_detections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_object_detections_partition"))
        batch_op.drop_index(batch_op.f("ix_object_detections_drama_id"))
        batch_op.drop_index(batch_op.f("ix_object_detections_asset_key"))

    op.drop_table("object_detections")
    with op.batch_alter_table("character_observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_character_observations_partition"))
        batch_op.drop_index(batch_op.f("ix_character_observations_drama_id"))
        batch_op.drop_index(batch_op.f("ix_character_observations_asset_key"))

    op.drop_table("character_observations")
