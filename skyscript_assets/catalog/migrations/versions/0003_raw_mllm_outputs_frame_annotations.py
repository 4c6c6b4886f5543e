"""raw mllm outputs, frame annotations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 19:15:45.057137
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "frame_annotations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("item", sa.String(length=256), nullable=False),
        sa.Column("keyframe_index", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("annotation", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("frame_annotations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_frame_annotations_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index("ix_frame_annotations_item", ["drama_id", "item"], unique=True)
        batch_op.create_index(batch_op.f("ix_frame_annotations_partition"), ["partition"], unique=False)

    op.create_table(
        "raw_mllm_outputs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("request_index", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("prompt_version", sa.String(length=64), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("raw_mllm_outputs", schema=None) as batch_op:
        batch_op.create_index("ix_raw_mllm_episode", ["drama_id", "episode_id", "request_index"], unique=True)
        batch_op.create_index(batch_op.f("ix_raw_mllm_outputs_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_raw_mllm_outputs_partition"), ["partition"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("raw_mllm_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_raw_mllm_outputs_partition"))
        batch_op.drop_index(batch_op.f("ix_raw_mllm_outputs_asset_key"))
        batch_op.drop_index("ix_raw_mllm_episode")

    op.drop_table("raw_mllm_outputs")
    with op.batch_alter_table("frame_annotations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_frame_annotations_partition"))
        batch_op.drop_index("ix_frame_annotations_item")
        batch_op.drop_index(batch_op.f("ix_frame_annotations_asset_key"))

    op.drop_table("frame_annotations")
